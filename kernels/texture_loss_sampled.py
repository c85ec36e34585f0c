"""The local texture loss over sampled candidates (docs/ops.md, "Sampled candidates"), forward.

The K = 2 + J candidates of SR patch (i, j) of image b are read from their sources, never stored:

* 0: patch (i, j) of ``hr``;
* 1: patch (i // 2, j // 2) of ``hr_half`` (B, C, H/2, W/2);
* 2 + w: patch (i, j) of ``hr`` warped by ``thetas[b, w]`` ((B, J, 2, 3) contiguous): each pixel is
  ``hr`` sampled where ``affine_grid(theta, align_corners=False)`` maps it, bilinearly with reflection
  padding, with ATen's ``grid_sample`` arithmetic (:func:`source_coordinate`, ``_tiles.read_taps``).

A candidate pixel is read through *taps*: a pointer to its north-west neighbour in channel 0, the
fractional offsets ``fx``/``fy`` towards the east and south neighbours and whether those lie in the
image. A direct read (candidates 0 and 1) is the tap with ``fx = fy = 0`` and neither neighbour, which
gives the stored value exactly, so the chosen candidate of every patch, whichever its kind, goes through
one path (:func:`chosen_taps`), which gives the pixel target's loss and residual. Selection, loss and
residual (what the backward, ``texture_loss.residual_bwd_kernel``, reads) are those of
``texture_loss.local_select_kernel``.

The grid points come from ``affine_grid``'s own base grid, which the caller passes (``grid_ptr``: the W
normalised column coordinates, then the H row coordinates, built with ``linspace`` as ``affine_grid``
builds them), so a sample equals ``grid_sample``'s to the last bit or so.
"""

from __future__ import annotations

import triton
import triton.language as tl

from ._autotune import tuned
from ._tiles import (
    criterion_of,
    gram_of,
    load_gram,
    pair_layout,
    patch_pixel_offsets,
    read_taps,
    split_patch_index,
)
from .texture_loss import (
    PATCH_CONFIGS,
    PATCH_INTERPRETER,
    gram_loss,
    gram_score,
    pixel_residual_offsets,
    store_gram_residual,
)


@triton.jit
def ieee_div(x, y, F64: tl.constexpr):
    """``x / y`` rounded as IEEE division (C++'s), which float32 ``/`` on a GPU is not."""
    if F64:
        q = x / y
    else:
        q = tl.math.div_rn(x, y)
    return q


@triton.jit
def source_coordinate(g, size, F64: tl.constexpr):
    """Normalised grid coordinate -> pixel coordinate in [0, size - 1], as ``grid_sample`` computes it.

    Unnormalised for ``align_corners=False`` (``((g + 1) size - 1) / 2``), reflected about -0.5 and
    size - 0.5 as often as needed, then clipped. The reflection is ATen's vectorised one: the distance
    from -0.5 modulo 2 size (exact), folded onto [0, size] with a ``min``. It equals the scalar one
    (``fmod`` by size and the parity of the flips) wherever that is exact, and needs neither a float
    remainder nor a consistent quotient near a multiple of the period.
    """
    period = g * 0.0 + 2 * size  # 2 size in g's dtype and shape
    x = ((g + 1.0) * size - 1.0) * 0.5
    d = tl.abs(x + 0.5)
    extra = d - tl.floor(ieee_div(d, period, F64)) * period
    x = tl.minimum(extra, period - extra) + -0.5
    return tl.minimum(tl.maximum(x, 0.0), size - 1.0)


@triton.jit
def warp_taps(th_ptr, th_row, grid_ptr, on, pi, pj, H, W, s_h, s_w, PATCH: tl.constexpr, F64: tl.constexpr):
    """Taps of the pixels of patches ``(pi, pj)`` warped by the maps at ``th_ptr + th_row`` ``[BP]``.

    Returns the north-west neighbours' offsets in the image ``[BP, k*k]``, ``fx``, ``fy`` and whether
    the east/south neighbours are inside. Pixel (y, x) has the normalised coordinates
    ``(grid_ptr[x], grid_ptr[W + y])`` (``affine_grid``'s base grid), which the map takes to the grid
    point sampled.
    """
    u = tl.arange(0, PATCH * PATCH)
    rows = pi[:, None] * PATCH + (u // PATCH)[None, :]
    cols = pj[:, None] * PATCH + (u % PATCH)[None, :]
    on2 = on[:, None]
    xn = tl.load(grid_ptr + cols, mask=on2, other=0.0)
    yn = tl.load(grid_ptr + W + rows, mask=on2, other=0.0)
    at = th_ptr + th_row
    gx = tl.load(at, mask=on, other=0.0)[:, None] * xn + tl.load(at + 1, mask=on, other=0.0)[:, None] * yn
    gx += tl.load(at + 2, mask=on, other=0.0)[:, None]
    gy = tl.load(at + 3, mask=on, other=0.0)[:, None] * xn + tl.load(at + 4, mask=on, other=0.0)[:, None] * yn
    gy += tl.load(at + 5, mask=on, other=0.0)[:, None]
    ix = source_coordinate(gx, W, F64)
    iy = source_coordinate(gy, H, F64)
    x0 = tl.floor(ix)
    y0 = tl.floor(iy)
    xi = x0.to(tl.int32)
    yi = y0.to(tl.int32)
    offset = yi.to(tl.int64) * s_h + xi.to(tl.int64) * s_w
    return offset, ix - x0, iy - y0, xi + 1 < W, yi + 1 < H


@triton.jit
def chosen_taps(
    idx, b, pi, pj, on,
    hr_ptr, h_sb, h_sc, h_sh, h_sw,
    half_ptr, f_sb, f_sc, f_sh, f_sw,
    th_ptr, grid_ptr, J, H, W,
    PATCH: tl.constexpr, F64: tl.constexpr,
):  # fmt: skip
    """Taps of candidate ``idx`` ``[BP]`` of each patch: pointers, channel stride ``[BP, 1]``, fx, fy, masks."""
    b64 = b.to(tl.int64)
    warped = idx >= 2
    w_off, fx, fy, m_e, m_s = warp_taps(
        th_ptr, (b64 * J + (idx - 2)) * 6, grid_ptr, on & warped, pi, pj, H, W, h_sh, h_sw, PATCH, F64
    )
    w2 = warped[:, None]
    hr_at = hr_ptr + (b64 * h_sb)[:, None] + tl.where(w2, w_off, patch_pixel_offsets(pi, pj, h_sh, h_sw, PATCH))
    half_at = half_ptr + (b64 * f_sb)[:, None] + patch_pixel_offsets(pi // 2, pj // 2, f_sh, f_sw, PATCH)
    is_half = idx == 1
    at = tl.where(is_half[:, None], half_at, hr_at)
    s_c = tl.where(is_half, f_sc, h_sc).to(tl.int64)[:, None]
    return at, s_c, tl.where(w2, fx, 0.0), tl.where(w2, fy, 0.0), m_e & w2, m_s & w2


@triton.jit
def keep_better(s, j, g_c, best, best_idx, g_best, KEEP_GRAM: tl.constexpr):
    """Running argmin: candidate ``j`` (score ``s``, Gram ``g_c``) replaces the best where strictly lower."""
    better = s < best
    if KEEP_GRAM:
        g_best = tl.where(better[:, None], g_c, g_best)
    return tl.where(better, s, best), tl.where(better, j, best_idx), g_best


@tuned(PATCH_CONFIGS, PATCH_INTERPRETER, key=["n_patches", "J", "PATCH", "C", "TARGET_GRAM"])
@triton.jit
def sampled_select_kernel(
    sr_ptr, s_sb, s_sc, s_sh, s_sw,
    hr_ptr, h_sb, h_sc, h_sh, h_sw,
    half_ptr, f_sb, f_sc, f_sh, f_sw,
    th_ptr, grid_ptr, idx_ptr, loss_ptr, res_ptr,
    n_patches, n_per_image, wp, J, H, W, gt_weight: tl.float64,
    PATCH: tl.constexpr, C: tl.constexpr, PP: tl.constexpr, F64: tl.constexpr,
    USE_GT: tl.constexpr, TARGET_GRAM: tl.constexpr, L1: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """One launch: index, per-patch loss and residual (contiguous, the accumulation dtype) of every SR
    patch against its 2 + J sampled candidates."""
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    active = p < n_patches
    b, n, pi, pj = split_patch_index(p, n_per_image, wp)
    b64 = b.to(tl.int64)
    sr_base = b64 * s_sb
    sr_pix = patch_pixel_offsets(pi, pj, s_sh, s_sw, PATCH)
    g_sr = load_gram(sr_ptr, sr_base, sr_pix, active, s_sc, PATCH, C, PP, True, F64, BLOCK_P)
    hr_pix = patch_pixel_offsets(pi, pj, h_sh, h_sw, PATCH)
    g_gt = load_gram(hr_ptr, b64 * h_sb, hr_pix, active, h_sc, PATCH, C, PP, True, F64, BLOCK_P)
    weights, _, _ = pair_layout(C, PP)
    best = gram_score(g_sr, g_gt, g_gt, weights, gt_weight, USE_GT)
    best_idx = tl.zeros([BLOCK_P], dtype=tl.int32)
    half_pix = patch_pixel_offsets(pi // 2, pj // 2, f_sh, f_sw, PATCH)
    g_c = load_gram(half_ptr, b64 * f_sb, half_pix, active, f_sc, PATCH, C, PP, True, F64, BLOCK_P)
    s = gram_score(g_sr, g_gt, g_c, weights, gt_weight, USE_GT)
    best, best_idx, g_best = keep_better(s, 1, g_c, best, best_idx, g_gt, TARGET_GRAM)
    hr_at = hr_ptr + (b64 * h_sb)[:, None]
    for w in range(J):
        off, fx, fy, m_e, m_s = warp_taps(
            th_ptr, (b64 * J + w) * 6, grid_ptr, active, pi, pj, H, W, h_sh, h_sw, PATCH, F64
        )
        g_c = gram_of(
            hr_at + off, h_sc, active[:, None], fx, fy, m_e, m_s, h_sh, h_sw, True, PATCH, C, PP, True, F64, BLOCK_P
        )
        s = gram_score(g_sr, g_gt, g_c, weights, gt_weight, USE_GT)
        best, best_idx, g_best = keep_better(s, 2 + w, g_c, best, best_idx, g_best, TARGET_GRAM)
    tl.store(idx_ptr + p, best_idx.to(tl.int64), mask=active)
    if TARGET_GRAM:
        tl.store(loss_ptr + p, gram_loss(g_sr, g_best, weights, L1, C), mask=active)
        store_gram_residual(res_ptr, b, n, n_per_image, active, g_sr - g_best, C, PP)
    else:  # the chosen candidate's pixels, sampled again: the residual e - c* and the loss
        at, c_sc, fx, fy, m_e, m_s = chosen_taps(
            best_idx, b, pi, pj, active, hr_ptr, h_sb, h_sc, h_sh, h_sw, half_ptr, f_sb, f_sc, f_sh, f_sw,
            th_ptr, grid_ptr, J, H, W, PATCH, F64,
        )  # fmt: skip
        m = active[:, None]
        sr_at = sr_ptr + sr_base[:, None] + sr_pix
        r_off, r_sc = pixel_residual_offsets(b, pi, pj, n_per_image, wp, PATCH, C)
        total = tl.zeros([BLOCK_P], dtype=tl.float64 if F64 else tl.float32)
        for ch in tl.static_range(C):
            c = read_taps(at + ch * c_sc, m, fx, fy, m_e, m_s, h_sh, h_sw, F64)
            d = tl.load(sr_at + ch * s_sc, mask=m, other=0.0).to(tl.float64 if F64 else tl.float32) - c
            tl.store(res_ptr + r_off + ch * r_sc, d, mask=m)
            total += tl.sum(criterion_of(d, L1), axis=1)
        tl.store(loss_ptr + p, total / (C * PATCH * PATCH), mask=active)
