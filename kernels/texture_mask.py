"""The texture mask (docs/ops.md, Eq. 10) and the masked pair ``(sr * M, hr * M)`` with its backward.

Every kernel computes the mask of one image ``x`` (``hr`` for the pair) and, by ``MODE``, writes
``MODE_MASK``: the mask; ``MODE_PAIR``: ``a * M`` and ``x * M`` (``a`` = sr); ``MODE_GRAD``: ``a * M``
(``a`` = the upstream gradient). The mask is recomputed rather than stored for backward.

* grid: one program row per k x k cell (shifted by the offset, clipped to the image); its unbiased
  std is two-pass in registers, exact to float32 rounding.
* sliding: separable running window sums, O(H*W) whatever the window: the luminance plane, then
  two passes (rows, then columns) over a (3, B, H, W) scratch. The sums and the variance
  ``(S2 - S1^2/n) / (n - 1)`` are float64 whatever the input dtype: near the threshold (variance
  2.5e-5 for 0.005) float32 raw moments of values near 0 or 1 cancel to a relative error of ~1e-3
  even after a per-image mean shift, float64 to ~1e-12. Memory-bound, so the float64 costs little on
  a data-centre GPU. The running sums restart every ``SEG`` pixels (parallelism, bounded rounding).
  Non-finite values are counted, not summed: a window holding one has a NaN std, and the running
  sums stay finite after it leaves.
"""

from __future__ import annotations

import triton
import triton.language as tl

from ._autotune import tuned
from ._tiles import luminance, split_patch_index

MODE_MASK = 0
MODE_PAIR = 1
MODE_GRAD = 2

GRID_CONFIGS = [({"BLOCK_P": 16}, 2), ({"BLOCK_P": 32}, 4), ({"BLOCK_P": 64}, 4)]
GRID_INTERPRETER = {"BLOCK_P": 128}
PLANE_CONFIGS = [({"BLOCK_P": 256}, 2), ({"BLOCK_P": 1024}, 4)]
PLANE_INTERPRETER = {"BLOCK_P": 1024}
SLIDING_CONFIGS = [({"BLOCK": 32, "SEG": 64}, 1), ({"BLOCK": 64, "SEG": 64}, 2), ({"BLOCK": 128, "SEG": 128}, 4)]
SLIDING_INTERPRETER = {"BLOCK": 64, "SEG": 256}


@triton.jit
def masked_outputs(
    mask, off_x, off_a, off_1, off_2, on, x_ptr, x_sc, a_ptr, a_sc, o1_ptr, o1_sc, o2_ptr, o2_sc,
    C: tl.constexpr, MODE: tl.constexpr, IO64: tl.constexpr,
):  # fmt: skip
    """Writes the outputs of ``MODE`` for pixels at the given offsets, ``mask`` broadcast to them.

    Products are float32 (float64 for float64 images, ``IO64``): with M in {0, 1, NaN} they are exact,
    equal to the ``sr * M`` PyTorch computes. Half-precision values are never multiplied as such, nor
    cast from float64: the interpreter gets both wrong.
    """
    m = mask.to(tl.float64 if IO64 else tl.float32)
    if MODE == 0:
        tl.store(o1_ptr + off_1, m, mask=on)
    else:
        for c in tl.static_range(C):
            a = tl.load(a_ptr + off_a + c * a_sc, mask=on, other=0.0).to(tl.float64 if IO64 else tl.float32)
            tl.store(o1_ptr + off_1 + c * o1_sc, a * m, mask=on)
            if MODE == 1:
                x = tl.load(x_ptr + off_x + c * x_sc, mask=on, other=0.0).to(tl.float64 if IO64 else tl.float32)
                tl.store(o2_ptr + off_2 + c * o2_sc, x * m, mask=on)


@triton.jit
def threshold_std(var, threshold):
    """1 where sqrt(var) > threshold, 0 elsewhere, NaN where var is NaN (compared in var's dtype)."""
    std = tl.sqrt(var)
    m = tl.where(std > tl.cast(threshold, std.dtype), 1.0, 0.0)
    return tl.where(std != std, std, m)


@tuned(GRID_CONFIGS, GRID_INTERPRETER, key=["n_cells", "PATCH", "C", "MODE"])
@triton.jit
def mask_grid_kernel(
    x_ptr, x_sb, x_sc, x_sh, x_sw,
    a_ptr, a_sb, a_sc, a_sh, a_sw,
    o1_ptr, o1_sb, o1_sc, o1_sh, o1_sw,
    o2_ptr, o2_sb, o2_sc, o2_sh, o2_sw,
    n_cells, cells_per_image, wc, H, W, oy, ox, threshold: tl.float64,
    PATCH: tl.constexpr, C: tl.constexpr, F64: tl.constexpr, MODE: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """Grid mode: cell (i, j) covers rows [ik - oy, ik - oy + k) and columns likewise, clipped."""
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    active = p < n_cells
    b, _, ci, cj = split_patch_index(p, cells_per_image, wc)
    u = tl.arange(0, PATCH * PATCH)
    rows = ci[:, None] * PATCH - oy + (u // PATCH)[None, :]
    cols = cj[:, None] * PATCH - ox + (u % PATCH)[None, :]
    on = active[:, None] & (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)
    b64 = b.to(tl.int64)[:, None]
    rows = rows.to(tl.int64)
    cols = cols.to(tl.int64)
    off_x = b64 * x_sb + rows * x_sh + cols * x_sw
    y = luminance(x_ptr, off_x, on, x_sc, C, F64)
    count = tl.sum(tl.where(on, 1.0, 0.0), axis=1)
    mean = tl.sum(y, axis=1) / tl.maximum(count, 1.0)
    dev = tl.where(on, y - mean[:, None], 0.0)
    ss = tl.sum(dev * dev, axis=1)
    var = tl.where(count > 1.0, ss / tl.maximum(count - 1.0, 1.0), 0.0)
    var = tl.where(ss != ss, ss, var)  # a lone NaN pixel still poisons its cell
    mask = threshold_std(var, threshold)[:, None] + tl.where(on, 0.0, 0.0)  # broadcast to the cell's pixels
    masked_outputs(
        mask, off_x, b64 * a_sb + rows * a_sh + cols * a_sw, b64 * o1_sb + rows * o1_sh + cols * o1_sw,
        b64 * o2_sb + rows * o2_sh + cols * o2_sw, on, x_ptr, x_sc, a_ptr, a_sc, o1_ptr, o1_sc, o2_ptr, o2_sc,
        C, MODE, F64,
    )  # fmt: skip


@tuned(PLANE_CONFIGS, PLANE_INTERPRETER, key=["H", "W", "C"])
@triton.jit
def luminance_plane_kernel(
    x_ptr, x_sb, x_sc, x_sh, x_sw, y_ptr, H, W,
    C: tl.constexpr, F64: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """Sliding pass 0: the luminance of every pixel into plane 0 of the (3, B, H, W) scratch (``F64``: float64)."""
    i = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    on = i < H * W
    b = tl.program_id(1).to(tl.int64)
    r = i // W
    c = i - r * W
    y = luminance(x_ptr, b * x_sb + r.to(tl.int64) * x_sh + c.to(tl.int64) * x_sw, on, x_sc, C, F64)
    tl.store(y_ptr + b * H * W + i, y, mask=on)


# The two running-sum passes inline their index reflection and finiteness tests: under the interpreter a
# call to a jit helper inside a loop costs about a millisecond. Reflection (torch's "reflect": -1 -> 1,
# n -> n - 2) is applied once, which the validation's window // 2 < min(H, W) makes enough; the clamp
# after it only guards memory.


@tuned(SLIDING_CONFIGS, SLIDING_INTERPRETER, key=["n_rows", "W"])
@triton.jit
def sliding_rows_kernel(
    scratch_ptr, plane, n_rows, W, radius,
    F64: tl.constexpr, BLOCK: tl.constexpr, SEG: tl.constexpr,
):  # fmt: skip
    """Sliding pass 1: horizontal window sums of ``Y`` (plane 1) and of ``Y^2`` (plane 2).

    ``BLOCK`` of the B*H image rows x ``SEG`` columns per program; a window holding a non-finite value
    stores NaN.
    """
    rr = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    on = rr < n_rows
    x0 = tl.program_id(1) * SEG
    x1 = tl.minimum(x0 + SEG, W)
    row = scratch_ptr + rr.to(tl.int64) * W
    s1 = tl.zeros([BLOCK], dtype=tl.float64 if F64 else tl.float32)
    s2 = tl.zeros([BLOCK], dtype=tl.float64 if F64 else tl.float32)
    bad = tl.zeros([BLOCK], dtype=tl.float64 if F64 else tl.float32)
    for d in range(-radius, radius):
        col = x0 + d
        col = tl.minimum(tl.maximum(tl.where(col < 0, -col, tl.where(col >= W, 2 * W - 2 - col, col)), 0), W - 1)
        v = tl.load(row + col, mask=on, other=0.0)
        finite = v - v == 0.0
        v = tl.where(finite, v, 0.0)
        s1 += v
        s2 += v * v
        bad += tl.where(finite, 0.0, 1.0)
    for x in range(x0, x1):
        col = x + radius
        col = tl.maximum(tl.where(col >= W, 2 * W - 2 - col, col), 0)
        v = tl.load(row + col, mask=on, other=0.0)
        finite = v - v == 0.0
        v = tl.where(finite, v, 0.0)
        s1 += v
        s2 += v * v
        bad += tl.where(finite, 0.0, 1.0)
        tl.store(row + plane + x, tl.where(bad > 0.0, float("nan"), s1), mask=on)
        tl.store(row + plane + plane + x, tl.where(bad > 0.0, float("nan"), s2), mask=on)  # no 2 * plane overflow
        col = x - radius
        col = tl.minimum(tl.where(col < 0, -col, col), W - 1)
        v = tl.load(row + col, mask=on, other=0.0)
        finite = v - v == 0.0
        v = tl.where(finite, v, 0.0)
        s1 -= v
        s2 -= v * v
        bad -= tl.where(finite, 0.0, 1.0)


@tuned(SLIDING_CONFIGS, SLIDING_INTERPRETER, key=["n_cols", "H", "C", "MODE"])
@triton.jit
def sliding_cols_kernel(
    scratch_ptr, plane,
    x_ptr, x_sb, x_sc, x_sh, x_sw,
    a_ptr, a_sb, a_sc, a_sh, a_sw,
    o1_ptr, o1_sb, o1_sc, o1_sh, o1_sw,
    o2_ptr, o2_sb, o2_sc, o2_sh, o2_sw,
    n_cols, H, W, radius, inv_n: tl.float64, inv_n1: tl.float64, threshold: tl.float64,
    C: tl.constexpr, F64: tl.constexpr, IO64: tl.constexpr, MODE: tl.constexpr, BLOCK: tl.constexpr,
    SEG: tl.constexpr,
):  # fmt: skip
    """Sliding pass 2: vertical sums of pass 1 over ``BLOCK`` of the B*W image columns x ``SEG`` rows,
    then the std and the outputs.

    ``var = (S2 - S1^2 / n) / (n - 1)`` over the n = window^2 values; ``inv_n = 1/n`` and
    ``inv_n1 = 1/(n - 1)``, 0 for a 1-pixel window (std 0).
    """
    bc = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    on = bc < n_cols
    y0 = tl.program_id(1) * SEG
    y1 = tl.minimum(y0 + SEG, H)
    b = (bc // W).to(tl.int64)
    cols = (bc % W).to(tl.int64)
    col1 = scratch_ptr + plane + b * H * W + cols
    s1 = tl.zeros([BLOCK], dtype=tl.float64 if F64 else tl.float32)
    s2 = tl.zeros([BLOCK], dtype=tl.float64 if F64 else tl.float32)
    bad = tl.zeros([BLOCK], dtype=tl.float64 if F64 else tl.float32)
    for d in range(-radius, radius):
        row = y0 + d
        row = tl.minimum(tl.maximum(tl.where(row < 0, -row, tl.where(row >= H, 2 * H - 2 - row, row)), 0), H - 1)
        v1 = tl.load(col1 + row * W, mask=on, other=0.0)
        v2 = tl.load(col1 + plane + row * W, mask=on, other=0.0)
        finite = v1 == v1  # pass 1 marks non-finite windows with NaN in both planes
        s1 += tl.where(finite, v1, 0.0)
        s2 += tl.where(finite, v2, 0.0)
        bad += tl.where(finite, 0.0, 1.0)
    for y in range(y0, y1):
        row = y + radius
        row = tl.maximum(tl.where(row >= H, 2 * H - 2 - row, row), 0)
        v1 = tl.load(col1 + row * W, mask=on, other=0.0)
        v2 = tl.load(col1 + plane + row * W, mask=on, other=0.0)
        finite = v1 == v1
        s1 += tl.where(finite, v1, 0.0)
        s2 += tl.where(finite, v2, 0.0)
        bad += tl.where(finite, 0.0, 1.0)
        var = tl.maximum((s2 - s1 * s1 * tl.cast(inv_n, s1.dtype)) * tl.cast(inv_n1, s1.dtype), 0.0)
        mask = tl.where(bad > 0.0, float("nan"), threshold_std(var, threshold))
        masked_outputs(  # y * stride stays within one image: int32 is enough
            mask, b * x_sb + y * x_sh + cols * x_sw, b * a_sb + y * a_sh + cols * a_sw,
            b * o1_sb + y * o1_sh + cols * o1_sw, b * o2_sb + y * o2_sh + cols * o2_sw, on,
            x_ptr, x_sc, a_ptr, a_sc, o1_ptr, o1_sc, o2_ptr, o2_sc, C, MODE, IO64,
        )  # fmt: skip
        row = y - radius
        row = tl.minimum(tl.where(row < 0, -row, row), H - 1)
        v1 = tl.load(col1 + row * W, mask=on, other=0.0)
        v2 = tl.load(col1 + plane + row * W, mask=on, other=0.0)
        finite = v1 == v1
        s1 -= tl.where(finite, v1, 0.0)
        s2 -= tl.where(finite, v2, 0.0)
        bad -= tl.where(finite, 0.0, 1.0)
