"""MATLAB's bicubic ``imresize(x, 0.5)`` (antialiased): the half-size image of the local candidates.

At scale 1/2 every output pixel o has the same eight weights on input pixels 2o - 3 ... 2o + 4 (the
caller passes them, from ``gramgan.data.resize``); taps outside the image are mirrored back in with the
edge repeated. Rows are filtered first, then columns, as imresize orders them.
"""

from __future__ import annotations

import triton
import triton.language as tl

from ._autotune import tuned

# A tl.constexpr: a jit function may read a module global only when it is one (else the GPU compile fails).
HALF_TAPS = tl.constexpr(8)
HALF_CONFIGS = [({"BLOCK": 128}, 4), ({"BLOCK": 256}, 4)]
HALF_INTERPRETER = {"BLOCK": 1024}


@triton.jit
def _mirror(i, n):
    """Index ``i >= -3`` mirrored into ``[0, n)`` with the edge repeated (period ``2n``, ``n >= 2``)."""
    m = (i + 2 * n) % (2 * n)
    return tl.where(m < n, m, 2 * n - 1 - m)


@tuned(HALF_CONFIGS, HALF_INTERPRETER, key=["n_out", "H", "W"])
@triton.jit
def downsample_half_kernel(
    x_ptr, x_sp, x_sh, x_sw,
    w_ptr, out_ptr,
    n_out, H, W,
    F64: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """``out`` (planes, H/2, W/2) contiguous, in float32 (float64 when ``F64``), from the planes of ``x``."""
    acc = tl.float64 if F64 else tl.float32
    n = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    active = n < n_out
    wo = W // 2
    ho = H // 2
    plane = (n // (ho * wo)).to(tl.int64)
    o = (n // wo) % ho
    p = n % wo
    total = tl.zeros([BLOCK], dtype=acc)
    for c in tl.static_range(HALF_TAPS):
        col = _mirror(2 * p - 3 + c, W).to(tl.int64)
        column = tl.zeros([BLOCK], dtype=acc)
        for r in tl.static_range(HALF_TAPS):
            row = _mirror(2 * o - 3 + r, H).to(tl.int64)
            value = tl.load(x_ptr + plane * x_sp + row * x_sh + col * x_sw, mask=active, other=0.0)
            column += tl.load(w_ptr + r).to(acc) * value.to(acc)
        total += tl.load(w_ptr + c).to(acc) * column
    tl.store(out_ptr + n, total, mask=active)
