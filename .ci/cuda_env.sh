# Sourced by the CI scripts: exports CUDA_HOME (when unset) and the settings of a CPU + CUDA build of
# the extension (compiled and linked, not run: CI has no GPU).
if [ -z "${CUDA_HOME:-}" ]; then
  nvcc_path=$(command -v nvcc || true)
  if [ -n "$nvcc_path" ]; then
    # The nvcc on PATH may be a wrapper script; ask the real compiler where it lives.
    real=$(sed -n 's/^exec \([^ ]*nvcc\).*/\1/p' "$nvcc_path" | head -n1)
    [ -n "$real" ] || real=$(readlink -f "$nvcc_path")
    CUDA_HOME=$(dirname "$(dirname "$real")")
    export CUDA_HOME
  elif [ -d /usr/local/cuda ]; then
    export CUDA_HOME=/usr/local/cuda
  fi
fi
echo "CUDA_HOME=${CUDA_HOME:-<none>}"
export FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-8.0;9.0}" MAX_JOBS="${MAX_JOBS:-2}"
