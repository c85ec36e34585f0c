"""Candidate selection and the texture loss (docs/ops.md, Eq. 4), local and global scope.

Selection: ``score(c) = ||G(e) - G(c)||^2 + gt_weight * ||G(g) - G(c)||^2`` computed literally (the
second term only when ``gt_weight != 0``, as the reference does), NaN scores count as +inf, the strict
``<`` of a scan in index order sends ties to the lowest index, and an all-NaN patch keeps index 0.

* local: ``local_select_kernel`` is the whole forward in one launch (Grams of the SR patch and of each
  candidate, score, running argmin, loss, and the residual against the chosen candidate: ``G(e) - G(c*)``
  as ``(B, C*C, H/k * W/k)``, or ``e - c*`` as an image, for the pixel target).
* global: the candidates' Grams are written once to a (B, M, C*C) bank (``kernels.gram``), then
  ``global_select_kernel`` keeps a running argmin over tiles of bank rows, never a score matrix; the
  pixel target's loss is ``loss_at_index_kernel``, once per candidate image.
* backward: ``residual_bwd_kernel`` (local and sampled scope) reads SR and the residual only;
  ``texture_bwd_kernel`` (global scope) recomputes the chosen candidate's Gram or pixels from the saved
  index.
"""

from __future__ import annotations

import triton
import triton.language as tl

from ._autotune import tuned
from ._tiles import (
    criterion_grad,
    criterion_of,
    load_gram,
    patch_pixel_offsets,
    pixel_criterion_sum,
    split_patch_index,
    store_gram_input_grad,
    store_pixel_grad,
)


@triton.jit
def gram_residual_at(res_ptr, b, n, n_per_image, active, C: tl.constexpr, CC_P: tl.constexpr):
    """Pointers ``[BP, CC_P]`` to the Gram residual entries of patches ``n`` of images ``b``
    (``(B, C*C, N)`` layout: entry ``q`` of a patch ``N`` floats after entry ``q - 1``) and their mask."""
    q = tl.arange(0, CC_P)
    at = res_ptr + (b.to(tl.int64) * (C * C * n_per_image) + n)[:, None] + q[None, :].to(tl.int64) * n_per_image
    return at, active[:, None] & (q < C * C)[None, :]


@triton.jit
def pixel_residual_offsets(b, pi, pj, n_per_image, wp, PATCH: tl.constexpr, C: tl.constexpr):
    """Element offsets ``[BP, k*k]`` of channel 0 of patches ``(pi, pj)`` of images ``b`` in a contiguous
    ``(B, C, H, W)`` residual, and its channel stride."""
    plane = n_per_image * (PATCH * PATCH)
    pix = patch_pixel_offsets(pi, pj, wp * PATCH, 1, PATCH)
    return (b.to(tl.int64) * C * plane)[:, None] + pix, plane

LOSS_NONE = 0  # selection only
LOSS_GRAM = 1
LOSS_PIXEL = 2

PATCH_CONFIGS = [({"BLOCK_P": 8}, 2), ({"BLOCK_P": 16}, 4), ({"BLOCK_P": 32}, 4), ({"BLOCK_P": 64}, 8)]
PATCH_INTERPRETER = {"BLOCK_P": 64}
# The global tile holds BLOCK_P x BLOCK_M x CC_P differences.
GLOBAL_CONFIGS = [
    ({"BLOCK_P": 16, "BLOCK_M": 16}, 4),
    ({"BLOCK_P": 32, "BLOCK_M": 16}, 4),
    ({"BLOCK_P": 16, "BLOCK_M": 32}, 4),
    ({"BLOCK_P": 32, "BLOCK_M": 32}, 8),
]
GLOBAL_INTERPRETER = {"BLOCK_P": 32, "BLOCK_M": 64}


@triton.jit
def gram_score(g_sr, g_gt, g_c, gt_weight, USE_GT: tl.constexpr, AXIS: tl.constexpr):
    """Selection score summed over the Gram axis ``AXIS``; NaN becomes +inf so that it never wins.

    ``gt_weight`` is cast to the Grams' dtype: the score's type (a loop-carried value in every caller)
    must not depend on how the scalar was passed (inductor passes Python floats as fp64).
    """
    d = g_sr - g_c
    s = tl.sum(d * d, axis=AXIS)
    if USE_GT:
        e = g_gt - g_c
        s = s + tl.cast(gt_weight, s.dtype) * tl.sum(e * e, axis=AXIS)
    return tl.where(s != s, float("inf"), s)


@triton.jit
def gram_loss(g_sr, g_c, L1: tl.constexpr, C: tl.constexpr):
    """Gram-target per-patch loss: mean criterion over the C*C entries (padding entries are 0 - 0)."""
    return tl.sum(criterion_of(g_sr - g_c, L1), axis=1) / (C * C)


@triton.jit
def chosen_patch(idx, b, active, c_sb, c_sh, c_sw, m_start, m_count, wp_c, PATCH: tl.constexpr):
    """Where the chosen global candidate patch lies: (image offset, pixel offsets, active-and-in-this-image).

    Bank row ``idx`` belongs to this candidate image when ``m_start <= idx < m_start + m_count``, at
    row-major patch ``idx - m_start``.
    """
    r = idx - m_start
    on = active & (r >= 0) & (r < m_count)
    r = tl.where(on, r, 0)
    ci = r // wp_c
    cj = r - ci * wp_c
    return b.to(tl.int64) * c_sb, patch_pixel_offsets(ci, cj, c_sh, c_sw, PATCH), on


@tuned(PATCH_CONFIGS, PATCH_INTERPRETER, key=["n_patches", "K", "PATCH", "C", "LOSS"])
@triton.jit
def local_select_kernel(
    sr_ptr, s_sb, s_sc, s_sh, s_sw,
    c_ptr, c_sb, c_sk, c_sc, c_sh, c_sw,
    idx_ptr, loss_ptr, res_ptr,
    n_patches, n_per_image, wp, K, gt_weight: tl.float64,
    PATCH: tl.constexpr, C: tl.constexpr, CC_P: tl.constexpr, F64: tl.constexpr,
    USE_GT: tl.constexpr, LOSS: tl.constexpr, L1: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """Local scope, one launch: index (and with ``LOSS`` the per-patch loss and the residual) of every SR patch."""
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    active = p < n_patches
    b, n, pi, pj = split_patch_index(p, n_per_image, wp)
    sr_base = b.to(tl.int64) * s_sb
    sr_pix = patch_pixel_offsets(pi, pj, s_sh, s_sw, PATCH)
    c_pix = patch_pixel_offsets(pi, pj, c_sh, c_sw, PATCH)
    g_sr = load_gram(sr_ptr, sr_base, sr_pix, active, s_sc, PATCH, C, CC_P, F64, BLOCK_P)
    c_off = b.to(tl.int64) * c_sb
    g_gt = load_gram(c_ptr, c_off, c_pix, active, c_sc, PATCH, C, CC_P, F64, BLOCK_P)
    best = gram_score(g_sr, g_gt, g_gt, gt_weight, USE_GT, 1)
    best_idx = tl.zeros([BLOCK_P], dtype=tl.int32)
    g_best = g_gt
    for j in range(1, K):
        c_off += c_sk
        g_c = load_gram(c_ptr, c_off, c_pix, active, c_sc, PATCH, C, CC_P, F64, BLOCK_P)
        s = gram_score(g_sr, g_gt, g_c, gt_weight, USE_GT, 1)
        better = s < best
        best = tl.where(better, s, best)
        best_idx = tl.where(better, j, best_idx)
        if LOSS == 1:
            g_best = tl.where(better[:, None], g_c, g_best)
    tl.store(idx_ptr + p, best_idx.to(tl.int64), mask=active)
    if LOSS == 1:
        tl.store(loss_ptr + p, gram_loss(g_sr, g_best, L1, C), mask=active)
        r_at, r_on = gram_residual_at(res_ptr, b, n, n_per_image, active, C, CC_P)
        tl.store(r_at, g_sr - g_best, mask=r_on)
    if LOSS == 2:
        c_base = b.to(tl.int64) * c_sb + best_idx.to(tl.int64) * c_sk
        r_off, r_sc = pixel_residual_offsets(b, pi, pj, n_per_image, wp, PATCH, C)
        total = pixel_criterion_sum(
            sr_ptr, sr_base, sr_pix, s_sc, c_ptr, c_base, c_pix, c_sc, active, C, L1, F64, BLOCK_P,
            res_ptr + r_off, r_sc, True,
        )  # fmt: skip
        tl.store(loss_ptr + p, total / (C * PATCH * PATCH), mask=active)


@tuned(GLOBAL_CONFIGS, GLOBAL_INTERPRETER, key=["n_per_image", "n_bank", "PATCH", "C"])
@triton.jit
def global_select_kernel(
    sr_ptr, s_sb, s_sc, s_sh, s_sw,
    bank_ptr,
    idx_ptr, loss_ptr,
    n_per_image, wp, n_bank, gt_weight: tl.float64,
    PATCH: tl.constexpr, C: tl.constexpr, CC_P: tl.constexpr, F64: tl.constexpr,
    USE_GT: tl.constexpr, GRAM_LOSS: tl.constexpr, L1: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_M: tl.constexpr,
):  # fmt: skip
    """Global scope: running argmin of every SR patch of image ``program_id(1)`` over its bank rows.

    ``bank`` is (B, M, C*C) contiguous, rows level by level; the ground truth is level 0, so the GT
    patch co-located with SR patch ``n`` is bank row ``n``. With ``GRAM_LOSS`` the Gram-target loss is
    written too (the chosen Gram is one bank row).
    """
    b = tl.program_id(1).to(tl.int64)
    n = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    active = n < n_per_image
    pi = n // wp
    pj = n - pi * wp
    sr_base = tl.zeros([BLOCK_P], dtype=tl.int64) + b * s_sb
    sr_pix = patch_pixel_offsets(pi, pj, s_sh, s_sw, PATCH)
    g_sr = load_gram(sr_ptr, sr_base, sr_pix, active, s_sc, PATCH, C, CC_P, F64, BLOCK_P)
    q = tl.arange(0, CC_P)
    q_on = q < C * C
    bank = bank_ptr + b * n_bank * (C * C)
    g_gt = tl.load(bank + n[:, None] * (C * C) + q[None, :], mask=active[:, None] & q_on[None, :], other=0.0)
    best = tl.full([BLOCK_P], float("inf"), tl.float64 if F64 else tl.float32)
    best_idx = tl.zeros([BLOCK_P], dtype=tl.int32)
    for m0 in range(0, n_bank, BLOCK_M):
        m = m0 + tl.arange(0, BLOCK_M)
        m_on = m < n_bank
        g_c = tl.load(bank + m[:, None] * (C * C) + q[None, :], mask=m_on[:, None] & q_on[None, :], other=0.0)
        s = gram_score(g_sr[:, None, :], g_gt[:, None, :], g_c[None, :, :], gt_weight, USE_GT, 2)
        s = tl.where(m_on[None, :], s, float("inf"))
        tile_min = tl.min(s, axis=1)
        tile_idx = tl.min(tl.where(s == tile_min[:, None], m[None, :], n_bank), axis=1)
        better = tile_min < best
        best = tl.where(better, tile_min, best)
        best_idx = tl.where(better, tile_idx, best_idx)
    out = b * n_per_image + n
    tl.store(idx_ptr + out, best_idx.to(tl.int64), mask=active)
    if GRAM_LOSS:
        g_best = tl.load(bank + best_idx[:, None] * (C * C) + q[None, :], mask=active[:, None] & q_on[None, :])
        tl.store(loss_ptr + out, gram_loss(g_sr, g_best, L1, C), mask=active)


@tuned(PATCH_CONFIGS, PATCH_INTERPRETER, key=["n_patches", "PATCH", "C", "TARGET_GRAM"])
@triton.jit
def loss_at_index_kernel(
    sr_ptr, s_sb, s_sc, s_sh, s_sw,
    c_ptr, c_sb, c_sc, c_sh, c_sw,
    idx_ptr, loss_ptr,
    n_patches, n_per_image, wp, m_start, m_count, wp_c,
    PATCH: tl.constexpr, C: tl.constexpr, CC_P: tl.constexpr, F64: tl.constexpr,
    TARGET_GRAM: tl.constexpr, L1: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """Global scope: the loss of the SR patches whose chosen bank row lies in one candidate image.

    Launched once per candidate image; each patch's loss is written by exactly one launch.
    """
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    active = p < n_patches
    b, n, pi, pj = split_patch_index(p, n_per_image, wp)
    idx = tl.load(idx_ptr + p, mask=active, other=-1)
    c_base, c_pix, on = chosen_patch(idx, b, active, c_sb, c_sh, c_sw, m_start, m_count, wp_c, PATCH)
    sr_base = b.to(tl.int64) * s_sb
    sr_pix = patch_pixel_offsets(pi, pj, s_sh, s_sw, PATCH)
    if TARGET_GRAM:
        g_sr = load_gram(sr_ptr, sr_base, sr_pix, on, s_sc, PATCH, C, CC_P, F64, BLOCK_P)
        loss = gram_loss(g_sr, load_gram(c_ptr, c_base, c_pix, on, c_sc, PATCH, C, CC_P, F64, BLOCK_P), L1, C)
    else:
        total = pixel_criterion_sum(
            sr_ptr, sr_base, sr_pix, s_sc, c_ptr, c_base, c_pix, c_sc, on, C, L1, F64, BLOCK_P, sr_ptr, 0, False
        )
        loss = total / (C * PATCH * PATCH)
    tl.store(loss_ptr + p, loss, mask=on)


@tuned(PATCH_CONFIGS, PATCH_INTERPRETER, key=["n_patches", "PATCH", "C", "TARGET_GRAM"])
@triton.jit
def texture_bwd_kernel(
    sr_ptr, s_sb, s_sc, s_sh, s_sw,
    c_ptr, c_sb, c_sc, c_sh, c_sw,
    idx_ptr, up_ptr,
    dx_ptr, dx_sb, dx_sc, dx_sh, dx_sw,
    n_patches, n_per_image, wp, m_start, m_count, wp_c,
    PATCH: tl.constexpr, C: tl.constexpr, CC_P: tl.constexpr, F64: tl.constexpr,
    TARGET_GRAM: tl.constexpr, L1: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """Global scope: gradient of the per-patch loss w.r.t. SR from the saved index, upstream ``up`` (B*N,)
    contiguous. One launch per candidate image, each writing the patches whose choice lies in that image
    (disjoint writes, no atomics, deterministic).
    Gram target: ``dG = up * criterion'(G(e) - G(c)) / C^2`` (symmetric), ``dx_a = (2/k^2) sum_b dG_ab x_b``;
    pixel target: ``dx = up * criterion'(e - c) / (C k^2)``.
    """
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    active = p < n_patches
    b, n, pi, pj = split_patch_index(p, n_per_image, wp)
    idx = tl.load(idx_ptr + p, mask=active, other=-1)
    c_base, c_pix, on = chosen_patch(idx, b, active, c_sb, c_sh, c_sw, m_start, m_count, wp_c, PATCH)
    up = tl.load(up_ptr + p, mask=on, other=0.0).to(tl.float64 if F64 else tl.float32)
    sr_base = b.to(tl.int64) * s_sb
    sr_pix = patch_pixel_offsets(pi, pj, s_sh, s_sw, PATCH)
    dx_base = b.to(tl.int64) * dx_sb
    dx_pix = patch_pixel_offsets(pi, pj, dx_sh, dx_sw, PATCH)
    if TARGET_GRAM:
        g_sr = load_gram(sr_ptr, sr_base, sr_pix, on, s_sc, PATCH, C, CC_P, F64, BLOCK_P)
        g_c = load_gram(c_ptr, c_base, c_pix, on, c_sc, PATCH, C, CC_P, F64, BLOCK_P)
        sym = 2.0 * criterion_grad(g_sr - g_c, up[:, None] / (C * C), L1)  # dG + dG^T, dG symmetric
        store_gram_input_grad(
            sym, sr_ptr, sr_base, sr_pix, s_sc, on, dx_ptr, dx_base, dx_pix, dx_sc, PATCH, C, CC_P, F64, BLOCK_P
        )
    else:
        store_pixel_grad(
            up / (C * PATCH * PATCH), sr_ptr, sr_base, sr_pix, s_sc, c_ptr, c_base, c_pix, c_sc, on,
            dx_ptr, dx_base, dx_pix, dx_sc, C, L1, F64,
        )  # fmt: skip


@tuned(PATCH_CONFIGS, PATCH_INTERPRETER, key=["n_patches", "PATCH", "C", "TARGET_GRAM"])
@triton.jit
def residual_bwd_kernel(
    sr_ptr, s_sb, s_sc, s_sh, s_sw,
    res_ptr, up_ptr,
    dx_ptr, dx_sb, dx_sc, dx_sh, dx_sw,
    n_patches, n_per_image, wp,
    PATCH: tl.constexpr, C: tl.constexpr, CC_P: tl.constexpr, F64: tl.constexpr,
    TARGET_GRAM: tl.constexpr, L1: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """Gradient of the local / sampled per-patch loss w.r.t. SR from the forward's residual ``r``
    (contiguous), upstream ``up`` (B*N,) contiguous: the same formulas as ``texture_bwd_kernel`` with
    ``r`` in place of ``G(e) - G(c)`` (Gram target, which reads SR) or ``e - c`` (pixel target, which does not).
    """
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    active = p < n_patches
    b, n, pi, pj = split_patch_index(p, n_per_image, wp)
    up = tl.load(up_ptr + p, mask=active, other=0.0).to(tl.float64 if F64 else tl.float32)
    dx_base = b.to(tl.int64) * dx_sb
    dx_pix = patch_pixel_offsets(pi, pj, dx_sh, dx_sw, PATCH)
    if TARGET_GRAM:
        r_at, r_on = gram_residual_at(res_ptr, b, n, n_per_image, active, C, CC_P)
        r = tl.load(r_at, mask=r_on, other=0.0)
        sym = 2.0 * criterion_grad(r, up[:, None] / (C * C), L1)  # dG + dG^T, dG symmetric
        sr_pix = patch_pixel_offsets(pi, pj, s_sh, s_sw, PATCH)
        store_gram_input_grad(
            sym, sr_ptr, b.to(tl.int64) * s_sb, sr_pix, s_sc, active, dx_ptr, dx_base, dx_pix, dx_sc,
            PATCH, C, CC_P, F64, BLOCK_P,
        )  # fmt: skip
    else:
        r_off, r_sc = pixel_residual_offsets(b, pi, pj, n_per_image, wp, PATCH, C)
        m = active[:, None]
        scale = up[:, None] / (C * PATCH * PATCH)
        for ch in tl.static_range(C):
            r = tl.load(res_ptr + r_off + ch * r_sc, mask=m, other=0.0)
            tl.store(dx_ptr + dx_base[:, None] + ch * dx_sc + dx_pix, criterion_grad(r, scale, L1), mask=m)
