#!/usr/bin/env bash
# The package as a user installs it, outside the checkout: builds an sdist, builds the wheel FROM that
# sdist (so the sdist must carry everything a build needs; CPU kernels only), checks what the wheel
# holds, installs it into a fresh virtual environment that sees the current one's packages only through
# a .pth line (torch, numpy, ...: nothing of this checkout), and from a temporary folder runs an op on
# the cpu backend, `python -m gramgan.train --print-config` and every command's --help.
#
#     bash .ci/wheel_check.sh        (with the environment that has torch active; ~1-2 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

# Every command a user runs with `python -m`; OPTIONAL ones may be absent from this version.
COMMANDS=(gramgan.train gramgan.evaluate gramgan.upscale gramgan.data.prepare gramgan.export)
OPTIONAL_COMMANDS=(gramgan.info gramgan.ablation gramgan.integrations.basicsr)

PY=${PYTHON:-python}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gramgan_wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "--- sdist"
"$PY" setup.py -q sdist -d "$WORK/dist" >"$WORK/sdist.log" 2>&1 || { cat "$WORK/sdist.log"; exit 1; }
sdist=$(ls "$WORK"/dist/gramgan-*.tar.gz)
tar tzf "$sdist" | sed 's|^[^/]*/||' | sort >"$WORK/sdist.txt"
for need in setup.py pyproject.toml MANIFEST.in csrc/gramgan.cpp csrc/include/ csrc/cuda/ kernels/texture_loss.py \
  gramgan/configs/demo.yaml gramgan/integrations/basicsr/examples/train_GramGAN_x4_samples.yml requirements.txt; do
  grep -q "^$need" "$WORK/sdist.txt" || { echo "sdist lacks $need"; exit 1; }
done
for header in $(cd "$REPO" && git ls-files 'csrc/*.h' 'csrc/*.cuh'); do
  grep -qx "$header" "$WORK/sdist.txt" || { echo "sdist lacks the header $header"; exit 1; }
done
echo "sdist: $(basename "$sdist"), $(wc -l <"$WORK/sdist.txt") entries, every csrc header included"

echo "--- wheel (built from the sdist, CPU kernels only)"
FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-2} "$PY" -m pip wheel -q --no-build-isolation --no-deps -w "$WORK/wheel" "$sdist"
wheel=$(ls "$WORK"/wheel/gramgan-*.whl)
"$PY" - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
tops = sorted({n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))})
assert tops == ["gramgan"], f"the wheel installs top-level {tops}, expected only gramgan"
for need in ("gramgan/kernels/texture_loss.py", "gramgan/configs/demo.yaml", "gramgan/configs/ablation/tiny.yaml",
             "gramgan/configs/__init__.py", "gramgan/_build_info.json",
             "gramgan/integrations/basicsr/examples/train_GramGAN_x4_samples.yml"):
    assert need in names, f"the wheel lacks {need}"
assert any(n.startswith("gramgan/_C.") and n.endswith(".so") for n in names), "the wheel lacks gramgan/_C"
print(f"wheel: {sys.argv[1].rsplit('/', 1)[-1]}, {len(names)} files, only gramgan at the top level")
PY

echo "--- install into a fresh environment"
# The current environment's site-packages folders (a venv with system site packages has several).
sites=$("$PY" -c 'import sys; print("\n".join(p for p in sys.path if p.endswith("-packages")))')
"$PY" -m venv --without-pip "$WORK/venv"
fresh_site=$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$sites" >"$fresh_site/zz_dependencies.pth" # torch & co. from the current environment, after its own
"$PY" -m pip --python "$WORK/venv/bin/python" install -q --no-deps --no-index "$wheel"

echo "--- run from outside the checkout"
mkdir "$WORK/elsewhere"
cd "$WORK/elsewhere"
export GRAMGAN_OFFLINE=1
FRESH="$WORK/venv/bin/python"
"$FRESH" - "$fresh_site" <<'PY'
import importlib.util, sys
import torch
import gramgan, gramgan.ops as ops
from gramgan.configs import available_presets
assert gramgan.__file__.startswith(sys.argv[1]), f"gramgan imported from {gramgan.__file__}, not the wheel"
assert importlib.util.find_spec("kernels") is None, "a top-level 'kernels' module is importable"
assert "demo" in available_presets(), f"presets: {available_presets()}"
x = torch.rand(1, 3, 8, 8)
assert torch.allclose(ops.patch_gram(x, 4, backend="cpu"), ops.patch_gram(x, 4, backend="reference"), atol=1e-6)
print("op on the cpu backend: ok; presets:", ", ".join(available_presets()))
PY
"$FRESH" -m gramgan.train --print-config >"$WORK/config.yaml"
grep -q "^name:" "$WORK/config.yaml" || { echo "--print-config printed no config"; cat "$WORK/config.yaml"; exit 1; }
echo "gramgan.train --print-config: ok ($(wc -l <"$WORK/config.yaml") lines)"
for module in "${COMMANDS[@]}" "${OPTIONAL_COMMANDS[@]}"; do
  if ! "$FRESH" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$module') is None)"; then
    if [[ " ${OPTIONAL_COMMANDS[*]} " == *" $module "* ]]; then
      echo "$module --help: not in this version (optional)"
      continue
    fi
    echo "$module is missing from the wheel"
    exit 1
  fi
  "$FRESH" -m "$module" --help >"$WORK/help.txt" 2>&1 || { cat "$WORK/help.txt"; echo "$module --help failed"; exit 1; }
  grep -qi "usage" "$WORK/help.txt" || { cat "$WORK/help.txt"; echo "$module --help printed no usage"; exit 1; }
  echo "$module --help: ok"
done
echo "wheel check: passed"
