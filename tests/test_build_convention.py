"""setup.py's choice of the CUDA kernels: when torch sees a GPU, or when ``FORCE_CUDA=1`` or
``TORCH_CUDA_ARCH_LIST`` asks for them; never merely because nvcc is on PATH. Read from what
``python setup.py --version`` prints (it decides, prints the decision, and builds nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def decision(**env: str) -> str:
    """The line setup.py prints about the kernels it would build, with no GPU visible to torch."""
    base = {k: v for k, v in os.environ.items() if k not in ("FORCE_CUDA", "TORCH_CUDA_ARCH_LIST")}
    done = subprocess.run(
        [sys.executable, "setup.py", "--version"],
        cwd=REPO,
        env={**base, "CUDA_VISIBLE_DEVICES": "", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if "the CPU" in line or "CUDA kernels" in line]
    assert lines, done.stdout + done.stderr
    return lines[0]


def test_no_gpu_and_nothing_asked_builds_the_cpu_kernels_only():
    """A fresh user without a GPU waits for no CUDA compile, nvcc on PATH or not."""
    line = decision()
    assert "building the CPU kernels only (torch" in line and "FORCE_CUDA=1" in line


@pytest.mark.parametrize("asked", [{"FORCE_CUDA": "1"}, {"TORCH_CUDA_ARCH_LIST": "9.0"}])
def test_force_cuda_or_an_arch_list_asks_for_the_cuda_kernels(asked):
    """Either builds them (a toolkit is found) or says that none was found; never the CPU kernels only."""
    line = decision(**asked)
    ((name, value),) = asked.items()
    assert f"({name}={value})" in line and "CPU kernels only" not in line


def test_force_cuda_0_wins_over_an_arch_list():
    line = decision(FORCE_CUDA="0", TORCH_CUDA_ARCH_LIST="9.0")
    assert "building the CPU kernels only (FORCE_CUDA=0" in line
