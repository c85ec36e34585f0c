"""The benchmark scripts as users run them, and what their tables claim.

Every script runs both as ``python benchmarks/NAME.py`` and as ``python -m benchmarks.NAME`` from the
repository root (``--help``; ``gram_select.py`` also a tiny ``--quick`` run as a plain script). The
subprocesses find gramgan the way an installed one is found, through a folder that holds only a link
to this checkout's package, so the repository root is on ``sys.path`` only where ``-m`` puts it.
Then: a row timed faster than its floor is a measurement error, not a percentage above 100; each
case of the K sweep gets its own floors; a GPU backend's skip line says what is missing.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(path.stem for path in (ROOT / "benchmarks").glob("*.py") if path.stem != "__init__")


@pytest.fixture(scope="module")
def installed_env(tmp_path_factory) -> dict[str, str]:
    """The environment of a user who installed gramgan: only the package is importable, not the checkout."""
    site = tmp_path_factory.mktemp("site")
    (site / "gramgan").symlink_to(ROOT / "gramgan", target_is_directory=True)
    return {**os.environ, "PYTHONPATH": str(site), "GRAMGAN_OFFLINE": "1"}


def run(argv: list[str], env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_every_benchmark_script_is_listed():
    assert {"gram_select", "texture_term", "texture_mask", "train_step", "esrgan_compare"} <= set(SCRIPTS)


@pytest.mark.parametrize("how", ["script", "module"])
@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_runs_both_ways(name, how, installed_env):
    """``python benchmarks/NAME.py --help`` and ``python -m benchmarks.NAME --help``, from the root."""
    target = [f"benchmarks/{name}.py"] if how == "script" else ["-m", f"benchmarks.{name}"]
    done = run([sys.executable, *target, "--help"], installed_env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout.lower()


def test_gram_select_quick_as_a_plain_script(tmp_path, installed_env):
    """The command users were promised, shrunk: ``python benchmarks/gram_select.py --quick``."""
    argv = ["--quick", "--device", "cpu", "--batch", "1", "--size", "32", "--no-sweep", "--no-compile"]
    argv += ["--no-memory", "--no-plot", "--min-time", "0.001", "--threads", "1", "--quiet", "--out", str(tmp_path)]
    done = run([sys.executable, "benchmarks/gram_select.py", *argv], installed_env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "TARGET cpu loss fwd+bwd paper vs reference" in done.stdout
    assert (tmp_path / "gram_select.json").is_file()


def test_a_row_faster_than_its_floor_is_a_measurement_error():
    """No kernel beats its floor: a row that times faster gets an error, never a percentage over 100."""
    harness = importlib.import_module("gramgan.benchmarking")
    roofline = importlib.import_module("gramgan.benchmarking.roofline")
    floors = roofline.Floors(read_s=2e-3, compute_s=1e-3)
    fast = {"status": "ok", "median_ms": 1.0, "label": "loss fwd local", "shape": "8x192x192", "backend": "cpu"}
    roofline.add_floors(fast, floors)
    assert "fraction_of_floor" not in fast
    assert "faster than its read floor 2 ms" in fast["floor_error"] and "measurement error" in fast["floor_error"]
    slow = {**fast, "median_ms": 4.0}
    roofline.add_floors(slow, floors)
    assert slow["fraction_of_floor"] == pytest.approx(0.5) and "floor_error" not in slow

    extra = {"bytes_per_s": 1e9, "speedup_vs_reference": 1.0, "group": "paper"}
    table = harness.format_table([{**fast, **extra}, {**slow, **extra}], [("label", "what"), ("shape", "BxHxW")])
    assert "error" in table.splitlines()[2] and "50.0 read" in table.splitlines()[3]
    assert "cpu loss fwd local 8x192x192: timed 1 ms, faster than its read floor" in table
    assert "%" not in table.split("% floor", 1)[1]  # no percentage anywhere in the rows

    gram_select = importlib.import_module("benchmarks.gram_select")
    target = gram_select._floor_target("cpu loss fwd+bwd paper of its floor", fast, 100 / 3)
    assert target.verdict.startswith("measurement error: timed 1 ms") and "met" not in target.line()
    assert gram_select._floor_target("x", slow, 100 / 3).verdict == "met"


def test_each_case_of_the_k_sweep_gets_its_own_floors():
    """Cases of one label and shape that differ only in K are told apart (they read different bytes)."""
    gram_select = importlib.import_module("benchmarks.gram_select")
    floors = gram_select.RunFloors()
    device, dtype = torch.device("cpu"), torch.float32
    cases = [
        gram_select.make_case("sweep-K", "loss_fwd_bwd", "local", 1, 16, kk, device, dtype, False, floors)
        for kk in (2, 12)
    ]
    for case in cases:
        case.build("reference")
    assert len(floors.cases) == 2
    rows = [{**case.params, "group": case.group, "label": case.label, "backend": "reference"} for case in cases]
    gram_select.annotate_floors(rows, floors)
    assert rows[0]["compute_floor_ms"] < rows[1]["compute_floor_ms"]  # K = 12 scores six times as many


def test_gpu_backend_skip_line_says_what_is_missing(monkeypatch):
    """On a machine without a GPU the skip line names the missing GPU (and a missing CUDA part of the
    extension), not Triton's interpreter."""
    harness = importlib.import_module("gramgan.benchmarking")
    backends = importlib.import_module("gramgan.benchmarking.backends")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(backends, "_extension_has_cuda", lambda: False)
    reasons = harness.backend_reasons(torch.device("cpu"), ["cuda", "triton"])
    for name in ("cuda", "triton"):
        assert reasons[name].startswith("needs a CUDA GPU") and "interpreter" not in reasons[name]
    assert "gramgan._C has none" in reasons["cuda"] and "gramgan._C" not in reasons["triton"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert "--device cuda" in harness.backend_reasons(torch.device("cpu"), ["cuda"])["cuda"]
