#!/usr/bin/env bash
# CI, the oldest supported versions: Python 3.12, torch 2.11.0, Triton 3.6.0 (requirements-oldest.txt)
# in a separate virtual environment; the extension built there (CPU + CUDA parts; torch 2.11's wheel is
# built for CUDA 13.0, like our nvcc) and the whole test suite run there, Triton under its interpreter,
# then every Triton launch signature the suite made compiled ahead of time for sm_90 with Triton 3.6
# (tests/ops/aot_compile_kernels.py).
# Measured on 2 cores: the venv ~1 min (downloads ~0.7 GB + CUDA libraries), the build ~1-3 min, the
# suite about as long as the main one; the whole suite fits the 30-minute CI budget, so no subset. The
# sm_90 compile of the suite's ~410 distinct Triton launches: ~200 CPU seconds (Triton 3.8: ~275).
#
#     bash .ci/oldest.sh     (GRAMGAN_OLDEST_PYTHON: a Python 3.12; GRAMGAN_CI_OLDEST_VENV: the venv path)
set -euo pipefail
export PIP_NO_CACHE_DIR=1 # downloads installed, not kept a second time in a cache (.ci/run says why)
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { echo; echo "=== oldest [$(( $(date +%s) - start ))s] $*"; }

# The first candidate that really is a Python 3.12 (a pyenv shim may exist but refuse to run).
python312=""
candidates=("${GRAMGAN_OLDEST_PYTHON:-}" python3.12)
command -v pyenv >/dev/null && candidates+=("$(pyenv root)"/versions/3.12.*/bin/python)
for candidate in "${candidates[@]}"; do
  if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
    python312=$candidate
    break
  fi
done
[ -n "$python312" ] || { echo "no Python 3.12 found: set GRAMGAN_OLDEST_PYTHON"; exit 1; }

step "virtual environment ($python312)"
venv="${GRAMGAN_CI_OLDEST_VENV:-.venv-oldest}"
"$python312" -m venv "$venv"
# shellcheck disable=SC1091
source "$venv/bin/activate"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -r requirements-oldest.txt
python -c "import sys, torch, triton; print('python', sys.version.split()[0], 'torch', torch.__version__, 'triton', triton.__version__)"

step "build the extension (CPU + CUDA)"
# shellcheck disable=SC1091
source .ci/cuda_env.sh
python -m pip install --no-build-isolation --no-deps -e .
python .ci/check_extension.py

step "tests, recording every Triton launch signature"
signatures="$PWD/build/triton-signatures-oldest"
GRAMGAN_TRITON_SIGNATURES="$signatures" python -m pytest -n 2

step "Triton 3.6: every recorded launch compiled for sm_90"
python -m tests.ops.aot_compile_kernels "$signatures"
step "done"
