#!/usr/bin/env bash
# The GPU check, in one call from the repository root:
#
#     bash benchmarks/gpu_check.sh OUTDIR
#
# On a GPU machine with no network it, within about 8 minutes on an H100:
#   1. records the machine (nvidia-smi, versions),
#   2. builds the extension against the machine's own torch (pip install -e ., no build isolation,
#      no dependencies; TORCH_CUDA_ARCH_LIST=9.0 unless set, CUDA_HOME found from nvcc),
#   3. checks that gramgan._C imports with its CUDA part, and which op backends can run,
#   4. runs the GPU tests of tests/ops: the CUDA extension's, then the Triton backend's,
#   5. runs the benchmarks gram_select.py, train_step.py and texture_mask.py on the GPU, then
#      texture_term.py with the cuda and the triton backend and esrgan_compare.py (paper size).
# It uses whatever torch/Triton the machine has, within the supported range (torch 2.11-2.14, Triton
# 3.6-3.8, Python 3.10-3.12), and needs no network: the package is installed with --no-deps,
# --no-build-isolation and --no-index (ninja is optional; without it the build is serial).
# Every step runs under `timeout` (a hang costs only its own step) and inside one overall budget;
# a failing step does not stop the later ones; the exit status is non-zero when any step failed,
# timed out or was not reached.
#
# OUTDIR receives (few files, so that a device tool that fetches only a handful brings all of it):
#   summary.txt                    step statuses, the tests' result lines, the benchmark targets
#   gpu_check.tar.gz               everything, as one folder <gpu>-<date>/ (logs/, JSON, PNG, tables,
#                                  nvidia-smi.txt, versions.txt, summary.txt) that unpacks straight
#                                  into benchmarks/results/:  tar xzf gpu_check.tar.gz -C benchmarks/results
#   gram_select.txt, train_step.txt, texture_mask.txt, gram_select.png   copies for a quick look
#
# Environment knobs (all optional): PYTHON (default python3), GPU_CHECK_BUDGET_S (total seconds,
# default 470), GPU_CHECK_SKIP (space-separated step names to skip, e.g. "build pytest-triton"),
# GPU_CHECK_DEVICE (default cuda; cpu is only for dry runs of this script), GPU_CHECK_BENCH_ARGS (extra
# arguments for every benchmark), TORCH_CUDA_ARCH_LIST, MAX_JOBS, CUDA_HOME.

set -u -o pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: bash benchmarks/gpu_check.sh OUTDIR" >&2
  exit 2
fi
mkdir -p "$1" || exit 2
OUTDIR=$(cd "$1" && pwd)
cd "$(dirname "$0")/.." || exit 2
REPO=$(pwd)

PY=${PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET_S:-470}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
SKIP=" ${GPU_CHECK_SKIP:-} "
BENCH_ARGS=${GPU_CHECK_BENCH_ARGS:-}
PACK_RESERVE=10 # seconds kept for packing the results at the end
START=$(date +%s)
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1

# The results folder is named like the benchmarks' own: <device slug>-<UTC date>.
NAME=$("$PY" - "$DEVICE" 2>/dev/null <<'PY'
import sys, torch
from benchmarks.harness import device_slug, today
device = torch.device(sys.argv[1] if sys.argv[1] == "cpu" or torch.cuda.is_available() else "cpu")
print(f"{device_slug(device)}-{today()}")
PY
) || NAME=""
[ -n "$NAME" ] || NAME="gpu-unknown-$(date -u +%Y-%m-%d)"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
RUN="$WORK/$NAME"
LOGS="$RUN/logs"
mkdir -p "$LOGS"

SUMMARY=()
FAILED=0

elapsed() { echo $(($(date +%s) - START)); }

# run_step NAME CAP_SECONDS COMMAND: runs COMMAND (a bash string) with output in logs/NAME.log, under
# `timeout` of min(CAP, what is left of the budget), and records the outcome.
run_step() {
  local name=$1 cap=$2 command=$3
  local left=$((BUDGET - $(elapsed) - PACK_RESERVE))
  local log="$LOGS/$name.log"
  if [[ "$SKIP" == *" $name "* ]]; then
    SUMMARY+=("$(printf '%-13s %-24s' "$name" "skipped (GPU_CHECK_SKIP)")")
    return 0
  fi
  if [ "$left" -lt 5 ]; then
    SUMMARY+=("$(printf '%-13s %-24s' "$name" "NOT RUN: out of time")")
    FAILED=1
    return 1
  fi
  local limit=$((cap < left ? cap : left))
  echo "=== [$(elapsed)s] $name (limit ${limit}s): $(echo "$command" | sed '/^\s*$/d' | head -n 1 | sed 's/^ *//' | cut -c1-150)"
  local t0 rc status
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" bash -c "$command" >"$log" 2>&1
  rc=$?
  local took=$(($(date +%s) - t0))
  if [ $rc -eq 0 ]; then
    status="ok"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    status="TIMEOUT after ${limit}s"
    FAILED=1
  else
    status="FAILED (exit $rc)"
    FAILED=1
  fi
  tail -n 4 "$log" | cut -c1-200 | sed 's/^/    /'
  SUMMARY+=("$(printf '%-13s %-24s %4ss  logs/%s' "$name" "$status" "$took" "$name.log")")
  return $rc
}

left_now() { echo $((BUDGET - $(elapsed) - PACK_RESERVE)); }

# ---- 1. the machine ----------------------------------------------------------------------------------
run_step env 30 "
  (nvidia-smi || echo 'nvidia-smi: not available') > '$RUN/nvidia-smi.txt' 2>&1
  {
    echo \"date_utc: \$(date -u +%Y-%m-%dT%H:%M:%SZ)\"
    echo \"host: \$(uname -a)\"
    echo \"python: \$(command -v $PY)\"
    $PY -c 'import sys, torch; print(\"python\", sys.version.split()[0]); print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda); print(\"gpu\", torch.cuda.get_device_name() if torch.cuda.is_available() else None)'
    $PY -c 'import triton; print(\"triton\", triton.__version__)' || echo 'triton: not importable'
    (command -v nvcc && nvcc --version | tail -n 2) || echo 'nvcc: not on PATH'
    gcc --version | head -n 1
    echo \"git: \$(git rev-parse HEAD 2>/dev/null || echo 'not a git checkout')\"
    $PY -m pip list 2>/dev/null | grep -iE '^(torch|triton|numpy|pytest|pytest-xdist|matplotlib|setuptools|ninja) ' || true
  } > '$RUN/versions.txt' 2>&1
  cat '$RUN/versions.txt'
"

# ---- 2. build ----------------------------------------------------------------------------------------
if [ -z "${CUDA_HOME:-}" ]; then
  nvcc_path=$(command -v nvcc || true)
  if [ -n "$nvcc_path" ]; then
    # The nvcc on PATH may be a wrapper script: prefer the compiler it runs, else its real path.
    real=$(sed -n 's/^exec \([^ ]*nvcc\).*/\1/p' "$nvcc_path" 2>/dev/null | head -n 1)
    [ -n "$real" ] || real=$(readlink -f "$nvcc_path")
    CUDA_HOME=$(dirname "$(dirname "$real")")
  elif [ -d /usr/local/cuda ]; then
    CUDA_HOME=/usr/local/cuda
  fi
fi
export CUDA_HOME=${CUDA_HOME:-}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
[ "$DEVICE" = "cuda" ] && export FORCE_CUDA=${FORCE_CUDA:-1}
run_step build 240 "
  echo CUDA_HOME=\$CUDA_HOME TORCH_CUDA_ARCH_LIST=\$TORCH_CUDA_ARCH_LIST MAX_JOBS=\$MAX_JOBS FORCE_CUDA=\${FORCE_CUDA:-}
  $PY -m pip install --no-deps --no-build-isolation --no-index -e . ||
    { echo '--- pip install failed; trying setup.py build_ext --inplace'; $PY setup.py build_ext --inplace; }
"

run_step extension 30 "
  $PY - '$DEVICE' <<'PY'
import sys
import torch
import gramgan._C as ext
from gramgan.ops import backend_availability
print('extension:', ext.__file__)
probe = getattr(ext, 'built_with_cuda', None) or getattr(ext, 'has_cuda', None)
print('extension holds CUDA code:', bool(probe()) if callable(probe) else 'unknown')
device = torch.device(sys.argv[1])
reasons = {**backend_availability(device), 'cpu': backend_availability('cpu')['cpu']}
for name, reason in reasons.items():
    where = torch.device('cpu') if name == 'cpu' else device
    print(f'backend {name:<9} on {where}:', reason or 'runs')
if device.type == 'cuda':
    assert torch.cuda.is_available(), 'torch sees no CUDA GPU'
    print('gpu:', torch.cuda.get_device_name(), 'capability', torch.cuda.get_device_capability())
    assert reasons['cuda'] is None, f'the cuda backend cannot run: {reasons[\"cuda\"]}'
    assert reasons['triton'] is None, f'the triton backend cannot run: {reasons[\"triton\"]}'
PY
"

# ---- 3. tests ----------------------------------------------------------------------------------------
XDIST=""
"$PY" -c "import xdist" 2>/dev/null && XDIST="-n 4"
# On a GPU, a run where every CUDA test skipped (e.g. kernels missing) is a failure, not a pass.
NEED_PASS=""
[ "$DEVICE" = "cuda" ] && NEED_PASS="grep -qE '[0-9]+ passed' '$RUN/pytest-cuda.out' || { echo 'FAIL: no CUDA test passed'; exit 1; };"
# The CUDA extension's tests first (they compile nothing), then the Triton ones (each new shape is a
# JIT compile; autotuning is off for them, the benchmarks tune), each with its own cap, so a slow
# Triton warm-up cannot hide the extension's results. The CPU tests run in CI; only the GPU-marked ones run here.
run_step pytest-cuda 90 "
  $PY -m pytest -m cuda -k 'not triton' tests/ops -q -rfEs --maxfail=20 -p no:cacheprovider --junitxml='$RUN/pytest-cuda.xml' | tee '$RUN/pytest-cuda.out'
  rc=\${PIPESTATUS[0]}; $NEED_PASS exit \$rc
"
run_step pytest-triton 150 "GRAMGAN_TRITON_AUTOTUNE=0 $PY -m pytest -m cuda -k triton tests/ops -q -rfE --maxfail=20 -p no:cacheprovider $XDIST --junitxml='$RUN/pytest-triton.xml'"

# ---- 4. benchmarks -------------------------------------------------------------------------------------
QUICK=""
[ "$(left_now)" -lt 200 ] && QUICK="--quick" # a short sweep rather than none when time is short
run_step gram_select 150 "$PY -m benchmarks.gram_select --device $DEVICE --out '$RUN' --quiet $QUICK $BENCH_ARGS"
run_step train_step 90 "$PY -m benchmarks.train_step --device $DEVICE --out '$RUN' --quiet $BENCH_ARGS"
MASK_EXTRA=""
[ "$(left_now)" -lt 90 ] && MASK_EXTRA="--quick --no-compile"
run_step texture_mask 70 "$PY -m benchmarks.texture_mask --device $DEVICE --out '$RUN' --quiet $MASK_EXTRA $BENCH_ARGS"
# The texture term's three goals on each GPU backend (separate folders: one texture_term.* per run), and
# the iteration against BasicSR's ESRGAN at the paper's size (it exits 0 with a note when BasicSR is absent).
run_step texture-cuda 60 "$PY -m benchmarks.texture_term --device $DEVICE --backend cuda --out '$RUN/texture_term-cuda' --quiet"
run_step texture-triton 90 "$PY -m benchmarks.texture_term --device $DEVICE --backend triton --out '$RUN/texture_term-triton' --quiet"
run_step esrgan 120 "$PY -m benchmarks.esrgan_compare --device $DEVICE --paper --out '$RUN'"

# ---- 5. summary and packing ----------------------------------------------------------------------------
{
  echo "gpu_check: $NAME, $(elapsed)s of a ${BUDGET}s budget, repo $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
  grep -m1 '^gpu ' "$RUN/versions.txt" 2>/dev/null
  grep -m1 '^torch ' "$RUN/versions.txt" 2>/dev/null
  echo
  printf '%s\n' "${SUMMARY[@]}"
  echo
  for name in pytest-cuda pytest-triton; do
    [ -f "$LOGS/$name.log" ] && echo "$name: $(grep -E '[0-9]+ (passed|failed|skipped|deselected|errors?)|no tests ran' "$LOGS/$name.log" | tail -n 1)"
  done
  grep -h '^TARGET' "$RUN"/gram_select.txt "$RUN"/train_step.txt "$RUN"/texture_term-*/texture_term.txt \
    "$RUN"/esrgan_compare.txt 2>/dev/null
  echo
  if [ $FAILED -eq 0 ]; then echo "RESULT: all steps passed"; else echo "RESULT: some steps FAILED (see above)"; fi
} >"$RUN/summary.txt"

cp "$RUN/summary.txt" "$OUTDIR/summary.txt"
for file in gram_select.txt train_step.txt texture_mask.txt gram_select.png esrgan_compare.txt; do
  [ -f "$RUN/$file" ] && cp "$RUN/$file" "$OUTDIR/$file"
done
tar czf "$OUTDIR/gpu_check.tar.gz" -C "$WORK" "$NAME"
rm -rf "$WORK"

echo
cat "$OUTDIR/summary.txt"
echo "files: $OUTDIR/{summary.txt,gpu_check.tar.gz,...}  (tar xzf gpu_check.tar.gz -C benchmarks/results)"
exit $FAILED
