"""Backend discovery for the shared op tests: every backend that can run here is tested the same way."""

from __future__ import annotations

import os

import pytest
import torch

from gramgan.ops._dispatch import _table

# The reference is included: its public-API cases (ties, NaN, empty batch) are checked the same way.
FUSED_BACKENDS = ("reference", "cpu", "cuda", "triton")


def backend_device(name: str) -> torch.device:
    """Where a backend's tests run: CUDA for cuda (and triton when a GPU exists), else the CPU."""
    if name == "cuda" or (name == "triton" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def backend_params() -> list:
    """One pytest param per fused backend, skipped with the reason when it cannot run here."""
    params = []
    for name in FUSED_BACKENDS:
        device = backend_device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            reason = "no CUDA GPU"
        else:
            reason = _table(name).unavailable_reason(device)
        if name == "triton" and device.type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
            reason = "triton on the CPU needs TRITON_INTERPRET=1 (run the triton tests separately)"
        marks = [pytest.mark.skip(reason=f"backend {name!r}: {reason}")] if reason else []
        if device.type == "cuda":
            marks.append(pytest.mark.cuda)
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.fixture(params=backend_params())
def backend(request) -> str:
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
