"""Test-session set-up shared by every test folder.

Tests run offline (``GRAMGAN_OFFLINE=1``). Without a GPU the Triton kernels run under Triton's CPU
interpreter, so the one test command also exercises them (the variable must be set before any kernel
is defined, hence here).

With ``GRAMGAN_TRITON_SIGNATURES=<folder>`` every Triton kernel launch is recorded, and each test
process writes the distinct launch signatures to that folder (tests/ops/triton_signatures.py), which
the ahead-of-time GPU compile reads (tests/ops/aot_compile_kernels.py).
"""

from __future__ import annotations

import os

import pytest
import torch

# Tests never touch the network: no VGG19 download, whatever a test builds.
os.environ.setdefault("GRAMGAN_OFFLINE", "1")

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

_RECORDER = pytest.StashKey[object]()


def pytest_configure(config: pytest.Config) -> None:
    """Starts recording Triton launch signatures when ``GRAMGAN_TRITON_SIGNATURES`` is set."""
    folder = os.environ.get("GRAMGAN_TRITON_SIGNATURES")
    if not folder:
        return
    from tests.ops.triton_signatures import LaunchRecorder, clear

    if not hasattr(config, "workerinput"):  # the main process (xdist's controller): a fresh record
        clear(folder)
    recorder = LaunchRecorder()
    recorder.install()
    config.stash[_RECORDER] = recorder


def pytest_sessionfinish(session: pytest.Session) -> None:
    recorder = session.config.stash.get(_RECORDER, None)
    if recorder is not None:
        recorder.write(os.environ["GRAMGAN_TRITON_SIGNATURES"], os.environ.get("PYTEST_XDIST_WORKER", "main"))
