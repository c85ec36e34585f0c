"""A scalar kernel argument as a loop bound under Triton's interpreter (Triton 3.6 with NumPy >= 2.4).

Triton 3.6's interpreter turned the one-element array holding ``K`` into an int with ``int(array)``,
which NumPy 2.4 refuses; gramgan.kernels patches the conversion (kernels/_interpreter_compat.py).
"""

from __future__ import annotations

import os

import pytest
import torch

triton = pytest.importorskip("triton", reason="triton is not installed")
import triton.language as tl  # noqa: E402

from gramgan.kernels import INTERPRET  # noqa: E402 - importing gramgan.kernels applies the patch

pytestmark = pytest.mark.skipif(
    not INTERPRET or os.environ.get("TRITON_INTERPRET") != "1", reason="runs under Triton's interpreter only"
)


@triton.jit
def _sum_first_k(x_ptr, out_ptr, K, BLOCK: tl.constexpr):
    total = tl.load(x_ptr + tl.arange(0, BLOCK))
    for j in range(1, K):  # K is a runtime scalar argument, as in texture_loss.local_select_kernel
        total += tl.load(x_ptr + j * BLOCK + tl.arange(0, BLOCK))
    tl.store(out_ptr + tl.arange(0, BLOCK), total)


def test_runtime_scalar_loop_bound_runs_under_the_interpreter():
    x = torch.arange(5 * 4, dtype=torch.float32).reshape(5, 4)
    out = torch.empty(4)
    _sum_first_k[(1,)](x, out, 3, BLOCK=4)
    torch.testing.assert_close(out, x[:3].sum(0))


def test_the_patch_applies_exactly_when_numpy_refuses_one_element_arrays():
    import numpy as np

    from gramgan.kernels._interpreter_compat import numpy_refuses_1d_int, patch_interpreter_index

    try:
        int(np.ones(1))
        refuses = False
    except TypeError:
        refuses = True
    assert numpy_refuses_1d_int() is refuses
    assert patch_interpreter_index() is refuses  # idempotent: True again when already patched
