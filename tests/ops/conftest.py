"""Backend discovery for the shared op tests: every backend that can run here is tested the same way.

``cuda_emulated`` (the CUDA kernels compiled for the CPU with sanitizers, gramgan/ops/_emulated.py) runs
only in a process started with the ASan runtime preloaded; in any other process its tests are deselected
and test_cuda_emulated.py's driver runs them in such a subprocess (docs/cuda-emulation.md).
"""

from __future__ import annotations

import os

import pytest
import torch

from gramgan.ops import _dispatch, _emulated
from gramgan.ops._dispatch import _table

# The reference is included: its public-API cases (ties, NaN, empty batch) are checked the same way.
FUSED_BACKENDS = ("reference", "cpu", "cuda", "triton", _emulated.NAME)
# The one cuda_emulated test that runs in a process without the ASan runtime: it starts the others.
EMULATION_DRIVER = "test_emulated_suite_under_sanitizers"


def backend_device(name: str) -> torch.device:
    """Where a backend's tests run: CUDA for cuda (and triton when a GPU exists), else the CPU."""
    if name == "cuda" or (name == "triton" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def backend_params() -> list:
    """One pytest param per fused backend, skipped with the reason when it cannot run here."""
    params = []
    for name in FUSED_BACKENDS:
        if name == _emulated.NAME:
            params.append(pytest.param(name, marks=[pytest.mark.cuda_emulated], id=name))
            continue
        device = backend_device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            reason = "no CUDA GPU"
        else:
            reason = _table(name).unavailable_reason(device)
        if name == "triton" and device.type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
            reason = (  # tests/conftest.py sets TRITON_INTERPRET=1 without a GPU unless the variable is already set
                f"triton without a GPU runs under its interpreter, but TRITON_INTERPRET is set to "
                f"{os.environ.get('TRITON_INTERPRET')!r} (unset it, or set it to 1)"
            )
        marks = [pytest.mark.skip(reason=f"backend {name!r}: {reason}")] if reason else []
        if device.type == "cuda":
            marks.append(pytest.mark.cuda)
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def pytest_collection_modifyitems(config, items) -> None:
    """Without the ASan runtime, the cuda_emulated tests other than the driver cannot run here: deselected."""
    if _emulated.sanitizer_runtime_loaded():
        return
    keep, drop = [], []
    for item in items:
        needs_asan = item.get_closest_marker("cuda_emulated") and item.originalname != EMULATION_DRIVER
        (drop if needs_asan else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def emulated_kernels() -> str:
    """Builds (when sources changed) and loads the emulated CUDA kernels; the library's path."""
    return _emulated.load()


@pytest.fixture
def emulated_dispatch(emulated_kernels):
    """Lets ``backend="cuda_emulated"`` through gramgan.ops' dispatch (a test backend, not a public name)."""
    unregister = _dispatch.register_backend(_emulated.EMULATED_BACKEND)
    yield
    unregister()


@pytest.fixture(params=backend_params())
def backend(request) -> str:
    if request.param == _emulated.NAME:
        request.getfixturevalue("emulated_dispatch")
    return request.param


@pytest.fixture
def device(backend) -> torch.device:
    return backend_device(backend)


@pytest.fixture
def rng() -> torch.Generator:
    """A freshly seeded generator; the seed is printed so a failure can be replayed."""
    seed = int.from_bytes(os.urandom(4), "little")
    print(f"random seed: {seed}")
    return torch.Generator().manual_seed(seed)
