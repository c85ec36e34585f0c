"""BasicSR stays optional: importing gramgan (any of its packages but the integration) never imports it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_importing_gramgan_never_imports_basicsr():
    code = (
        "import sys, gramgan, gramgan.ops, gramgan.losses, gramgan.models, gramgan.train, gramgan.export, "
        "gramgan.integrations, gramgan.upscale, gramgan.evaluate\n"
        "loaded = sorted(m for m in sys.modules if m == 'basicsr' or m.startswith('basicsr.'))\n"
        "assert not loaded, loaded"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_basicsr_is_installed_where_ci_requires_it():
    """.ci/run sets GRAMGAN_REQUIRE_BASICSR=1 after installing the extra, so its tests cannot skip there."""
    if os.environ.get("GRAMGAN_REQUIRE_BASICSR") != "1":
        pytest.skip("GRAMGAN_REQUIRE_BASICSR is not set (only .ci/run requires BasicSR)")
    missing = [m for m in ("basicsr", "onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    assert not missing, f"CI installs gramgan[basicsr,onnx] but these do not import: {missing}"
