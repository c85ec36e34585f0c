#!/usr/bin/env bash
# The GPU check, in one call from the repository root:
#
#     bash benchmarks/gpu_check.sh OUTDIR
#
# On a fresh GPU machine with no network it fits one call of 9 minutes (an H200: build ~2 min), and:
#   1. records the machine (nvidia-smi, versions),
#   2. builds the extension against the machine's own torch (pip install -e ., no build isolation,
#      no dependencies; FORCE_CUDA=1, TORCH_CUDA_ARCH_LIST=9.0 unless set, CUDA_HOME found from nvcc),
#      unless gramgan/ already holds one with its CUDA part built for this very torch from these very
#      csrc/ sources (a build made elsewhere and carried along saves the ~2 minutes of compiling on a
#      machine whose time is short:
#      .ci/oldest.sh builds gramgan/_C.cpython-312-*.so and _build_info.json against torch 2.11.0+cu130,
#      what the H200 machines have; an uninstalled checkout then gets gramgan.kernels as a link),
#   3. checks that gramgan._C imports with its CUDA part, and which op backends can run,
#   4. runs every GPU-marked test (pytest -m cuda over tests/): the CUDA ones, then the Triton ones
#      with xdist workers (each new shape is a JIT compile),
#   5. runs the benchmarks the open issues name, most wanted first: esrgan_compare.py (paper size,
#      --quick and --profile when it has them; its compiles take minutes), backend_compare.py --quick
#      (every op, triton against cuda on the same inputs, at the paper's size), texture_term.py with the
#      cuda and the triton backend (the paper's size and the large ones), gram_select.py (--quick) and
#      texture_mask.py (--quick), each within what is left of the budget.
# It uses whatever torch/Triton the machine has, within the supported range (torch 2.11-2.14, Triton
# 3.6-3.8, Python 3.10-3.12), and needs no network: the package is installed with --no-deps,
# --no-build-isolation and --no-index (ninja is optional; without it the build is serial).
# Every step runs under `timeout` (a hang costs only its own step) and inside one overall budget;
# a failing step does not stop the later ones; the exit status is non-zero when any step failed,
# timed out or was not reached. Each step gets one line in summary.txt: status, seconds, and what it
# found (the tests' counts, the build's architectures, the benchmark's targets met / missed).
#
# OUTDIR receives few files (a device tool may fetch only a handful):
#   summary.txt                    one line per step, the tests' result lines, the benchmark targets
#   gpu_check.tar.gz               everything, as one folder <gpu>-<date>/ (logs/, JSON, PNG, tables,
#                                  nvidia-smi.txt, versions.txt, summary.txt) that unpacks straight
#                                  into benchmarks/results/:  tar xzf gpu_check.tar.gz -C benchmarks/results
#   gram_select.txt, texture_term-cuda.txt, texture_term-triton.txt, backend_compare.txt,
#   esrgan_compare.txt             the tables
#
# Dry run without a GPU: GPU_CHECK_DRY_RUN=1 runs every step on the CPU with tiny settings (the build
# step only prints setup.py's decision, the GPU-marked tests are collected and skip, the benchmarks run
# at toy sizes) to check the script itself in a few minutes.
#
# Environment knobs (all optional): PYTHON (default python3), GPU_CHECK_BUDGET_S (total seconds,
# default 525), GPU_CHECK_SKIP (space-separated step names to skip, e.g. "build pytest-triton"),
# GPU_CHECK_DRY_RUN=1, GPU_CHECK_BENCH_ARGS (extra arguments for gram_select and texture_mask),
# GPU_CHECK_ESRGAN_ARGS (extra arguments for esrgan_compare, e.g. "--train-iters 0"),
# GPU_CHECK_ESRGAN_CAP_S (esrgan_compare's own limit, default 300 s; more for a run that skips the rest),
# GPU_CHECK_TEST_WORKERS (xdist workers of the Triton tests, default nproc - 2, at most 14),
# TORCH_CUDA_ARCH_LIST, MAX_JOBS, CUDA_HOME.

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
BUDGET=${GPU_CHECK_BUDGET_S:-525}
DRY=${GPU_CHECK_DRY_RUN:-0}
DEVICE=cuda
[ "$DRY" = "1" ] && DEVICE=cpu
SKIP=" ${GPU_CHECK_SKIP:-} "
BENCH_ARGS=${GPU_CHECK_BENCH_ARGS:-}
PACK_RESERVE=10 # seconds kept for packing the results at the end
START=$(date +%s)
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" # the checkout's package, installed or not

# The results folder is named like the benchmarks' own: <device slug>-<UTC date>.
NAME=$("$PY" - "$DEVICE" 2>/dev/null <<'PY'
import sys, torch
from gramgan.benchmarking import device_slug, today
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
  [ "$DRY" = "1" ] && cap=$((cap * 3)) # a shared CPU is slower than the GPU machine's 16 cores
  local left=$((BUDGET - $(elapsed) - PACK_RESERVE))
  local log="$LOGS/$name.log"
  if [[ "$SKIP" == *" $name "* ]]; then
    SUMMARY+=("$(printf '%-15s %-22s' "$name" "skipped (GPU_CHECK_SKIP)")")
    return 0
  fi
  if [ "$left" -lt 5 ]; then
    SUMMARY+=("$(printf '%-15s %-22s' "$name" "NOT RUN: out of time")")
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
  SUMMARY+=("$(printf '%-15s %-22s %4ss  %s' "$name" "$status" "$took" "$(step_note "$name" "$log" 2>/dev/null)")")
  return $rc
}

left_now() { echo $((BUDGET - $(elapsed) - PACK_RESERVE)); }

# step_note NAME LOG: what a step found, in a few words, for its summary line.
step_note() {
  local name=$1 log=$2
  case $name in
    env) grep -m1 '^gpu ' "$RUN/versions.txt" 2>/dev/null | cut -c1-60 ;;
    build) grep -m1 -o -e 'building the [^(]*([^)]*)' -e 'prebuilt extension used.*' "$log" | cut -c1-70 ;;
    extension) grep -m1 -o 'extension holds CUDA code: .*' "$log" ;;
    pytest-*) grep -E '[0-9]+ (passed|failed|skipped|deselected|errors?)|no tests ran' "$log" | tail -n 1 | tr -d '=' | sed 's/^ *//' | cut -c1-80 ;;
    *)
      local met missed none
      met=$(grep -c '^TARGET.* met$' "$log")
      missed=$(grep -c '^TARGET.* missed$' "$log")
      none=$(grep -c '^TARGET.*\(not measured\|measurement error\)' "$log")
      if [ $((met + missed + none)) -gt 0 ]; then echo "targets: $met met, $missed missed, $none not measured"; else tail -n 1 "$log" | cut -c1-80; fi
      ;;
  esac
}

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
if [ "$DRY" = "1" ]; then
  # Dry run: setup.py's decision and nothing built (the checkout's extension is used as it is).
  run_step build 120 "$PY setup.py --version"
else
  export FORCE_CUDA=${FORCE_CUDA:-1}
  # An extension already in gramgan/ (built elsewhere for this very torch and from these very csrc/
  # sources, e.g. carried to a machine whose time is short) is used when it loads with its CUDA part;
  # otherwise the extension is built here, so a stale build is never timed.
  run_step build 240 "
    # Uninstalled, the package lacks gramgan.kernels (the top-level kernels/ that setup.py maps there):
    # a link stands in for it while the prebuilt extension is used, and goes before a build.
    linked=''
    [ -e gramgan/kernels ] || { ln -s ../kernels gramgan/kernels && linked=1; }
    $PY - <<'PY' && exit 0
import json, torch
import gramgan._C as ext
from gramgan._build_sources import source_digest
from gramgan.info import BUILD_INFO_FILE
info = json.loads(BUILD_INFO_FILE.read_text())
assert ext.built_with_cuda() and info['torch'] == torch.__version__, f'not for this torch: {info}'
assert info.get('sources') == source_digest('.'), f'built from other csrc/ sources: {info}'
print('prebuilt extension used: built for torch', info['torch'], 'archs', info.get('torch_cuda_arch_list'),
      'from csrc/', info['sources'])
PY
    [ -n \"\$linked\" ] && rm gramgan/kernels
    echo '--- no prebuilt extension with CUDA code for this torch: building it'
    echo CUDA_HOME=\$CUDA_HOME TORCH_CUDA_ARCH_LIST=\$TORCH_CUDA_ARCH_LIST MAX_JOBS=\$MAX_JOBS FORCE_CUDA=\${FORCE_CUDA:-}
    $PY -m pip install -v --no-deps --no-build-isolation --no-index -e . ||
      { echo '--- pip install failed; trying setup.py build_ext --inplace'; $PY setup.py build_ext --inplace; }
    $PY -m gramgan.info | sed -n '/^Extension:/,/^GPUs:/p'
  "
fi

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
# Every GPU-marked test: the CUDA ones first (they compile nothing), then the Triton ones with xdist
# workers (each new shape is a JIT compile; autotuning is off for them, the benchmarks tune), each with
# its own cap, so a slow Triton warm-up cannot hide the extension's results. On a GPU, a run where
# every test skipped (e.g. kernels missing) is a failure, not a pass. The CPU tests run in CI.
WORKERS=${GPU_CHECK_TEST_WORKERS:-$(($(nproc) - 2))}
[ "$WORKERS" -gt 14 ] && WORKERS=14
[ "$DRY" = "1" ] && WORKERS=2
XDIST=""
"$PY" -c "import xdist" 2>/dev/null && [ "$WORKERS" -gt 1 ] && XDIST="-n $WORKERS"
need_pass() { [ "$DEVICE" = "cuda" ] && echo "grep -qE '[0-9]+ passed' '$LOGS/$1.log' || { echo 'FAIL: no test passed'; exit 1; };"; }
run_step pytest-cuda 90 "
  $PY -m pytest tests -m cuda -k 'not triton' -q -rfEs --maxfail=20 -p no:cacheprovider --junitxml='$RUN/pytest-cuda.xml'
  rc=\$?; $(need_pass pytest-cuda) exit \$rc
"
run_step pytest-triton 120 "
  GRAMGAN_TRITON_AUTOTUNE=0 $PY -m pytest tests -m cuda -k triton -q -rfE --maxfail=20 -p no:cacheprovider $XDIST --junitxml='$RUN/pytest-triton.xml'
  rc=\$?; $(need_pass pytest-triton) exit \$rc
"

# ---- 4. benchmarks -------------------------------------------------------------------------------------
# What the open issues name, most wanted first; each step gets what is left of the budget up to its cap.
# Dry run: toy sizes and minimal timing, so that the whole script runs on 2 CPU cores in minutes.
TINY=""
TERM_TINY=""
COMPARE_TINY=""
if [ "$DRY" = "1" ]; then
  TINY="--batch 1 --min-time 0.001 --threads 1 --no-sweep --no-compile --no-memory --no-plot"
  TERM_TINY="--batch 1 --size 32 --large --large-sizes 2x32 --min-time 0.001 --threads 1 --no-plot"
  # No GPU backend runs on the CPU: the two that do, compared the same way.
  COMPARE_TINY="--backends reference,cpu --batch 1 --size 32 --min-time 0.001 --rounds 2 --threads 1 --no-plot"
fi
# The training step against BasicSR's ESRGAN at the paper's size (exits 0 with a note without BasicSR);
# --quick where the script has it (3 timed iterations; the training comparison without compile). It is the
# first benchmark: the open issue's main table, and its compiles take minutes.
ESRGAN_HELP=$("$PY" -m benchmarks.esrgan_compare --help 2>/dev/null)
esrgan_has() { grep -q -- "$1" <<<"$ESRGAN_HELP"; }
ESRGAN_ARGS="--paper"
esrgan_has --quick && ESRGAN_ARGS="$ESRGAN_ARGS --quick"
esrgan_has --profile && ESRGAN_ARGS="$ESRGAN_ARGS --profile"
if [ "$DRY" = "1" ]; then # its own seconds-long CPU mode where it has one, else a one-block toy
  ESRGAN_ARGS="--quick"
  esrgan_has --train-iters && ESRGAN_ARGS="$ESRGAN_ARGS --train-iters 2"
  esrgan_has --quick || ESRGAN_ARGS="--blocks 1 --features 8 --disc-features 8 --iters 1 --warmup 0"
  esrgan_has --threads && ESRGAN_ARGS="$ESRGAN_ARGS --threads 1"
fi
run_step esrgan "${GPU_CHECK_ESRGAN_CAP_S:-300}" "$PY -m benchmarks.esrgan_compare --device $DEVICE $ESRGAN_ARGS ${GPU_CHECK_ESRGAN_ARGS:-} --out '$RUN'"
# Every op on both GPU backends, on the same inputs, in alternating rounds: triton's time over cuda's
# (issue: within 1.5x on every op), at the paper's size; the Triton warm-up (compiles, autotuning) first.
run_step backend-compare 60 "$PY -m benchmarks.backend_compare --device $DEVICE --quick --out '$RUN' --quiet $COMPARE_TINY"
# The texture term's goals on each GPU backend, at the paper's size and the large ones (separate folders:
# one texture_term.* per run).
for backend in cuda triton; do
  cap=60
  [ $backend = triton ] && cap=90 # JIT compiles and autotuning of every shape
  run_step texture-$backend $cap "$PY -m benchmarks.texture_term --device $DEVICE --backend $backend --out '$RUN/texture_term-$backend' --quiet $TERM_TINY"
done
# The ops against the eager reference and their floors (torch.compile of the reference only when there
# is time for its compiles), then the texture mask.
SELECT_ARGS="--quick"
[ "$(left_now)" -lt 150 ] && SELECT_ARGS="--quick --no-compile"
[ "$DRY" = "1" ] && SELECT_ARGS="--quick --size 32 $TINY"
run_step gram_select 50 "$PY -m benchmarks.gram_select --device $DEVICE --out '$RUN' --quiet $SELECT_ARGS $BENCH_ARGS"
MASK_ARGS="--quick --no-compile"
[ "$DRY" = "1" ] && MASK_ARGS="--quick --size 16 $TINY"
run_step texture_mask 25 "$PY -m benchmarks.texture_mask --device $DEVICE --out '$RUN' --quiet $MASK_ARGS $BENCH_ARGS"

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
  grep -h '^TARGET' "$RUN"/texture_term-*/texture_term.txt "$RUN"/backend_compare.txt "$RUN"/esrgan_compare.txt \
    "$RUN"/gram_select.txt 2>/dev/null
  echo
  if [ $FAILED -eq 0 ]; then echo "RESULT: all steps passed"; else echo "RESULT: some steps FAILED (see above)"; fi
} >"$RUN/summary.txt"

cp "$RUN/summary.txt" "$OUTDIR/summary.txt"
for file in gram_select.txt backend_compare.txt esrgan_compare.txt; do
  [ -f "$RUN/$file" ] && cp "$RUN/$file" "$OUTDIR/$file"
done
for backend in cuda triton; do
  [ -f "$RUN/texture_term-$backend/texture_term.txt" ] && cp "$RUN/texture_term-$backend/texture_term.txt" "$OUTDIR/texture_term-$backend.txt"
done
tar czf "$OUTDIR/gpu_check.tar.gz" -C "$WORK" "$NAME"
rm -rf "$WORK"

echo
cat "$OUTDIR/summary.txt"
echo "files: $OUTDIR/{summary.txt,gpu_check.tar.gz,...}  (tar xzf gpu_check.tar.gz -C benchmarks/results)"
exit $FAILED
