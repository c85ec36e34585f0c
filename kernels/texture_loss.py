"""Candidate selection and the texture loss (docs/ops.md, Eq. 4), local and global scope.

Selection: ``score(c) = ||G(e) - G(c)||^2 + gt_weight * ||G(g) - G(c)||^2`` computed literally (the
second term only when ``gt_weight != 0``, as the reference does), NaN scores count as +inf, the strict
``<`` of a scan in index order sends ties to the lowest index, and an all-NaN patch keeps index 0.
Every Gram is held as its unique channel pairs (``_tiles``), the off-diagonal ones weighed by 2 in
scores and losses, as in the C++ kernels.

* local: ``local_select_kernel`` is the whole forward in one launch (Grams of the SR patch and of each
  candidate, score, running argmin, loss, and the residual against the chosen candidate: ``G(e) - G(c*)``
  as full matrices ``(B, C*C, H/k * W/k)``, or ``e - c*`` as an image, for the pixel target).
* global: the candidates' Grams are written once, as unique channel pairs, to a pair-major (B, P, M)
  bank and the SR patches' to (B, P, N) (``kernels.gram``), then ``global_select_kernel`` keeps a
  running argmin per slot of a [SR patches x bank rows] tile over the tiles of bank rows, never a score
  matrix, and reduces the slots once at the end; the pixel target's loss is ``loss_at_index_kernel``,
  once per candidate image.
* backward: ``residual_bwd_kernel`` (local and sampled scope) reads SR and the residual only, each
  residual entry as one vector of a block of patches;
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
    pair_entry,
    pair_layout,
    patch_pixel_offsets,
    pixel_criterion_sum,
    split_patch_index,
    store_gram_input_grad,
    store_pixel_grad,
)


@triton.jit
def store_gram_residual(res_ptr, b, n, n_per_image, active, r, C: tl.constexpr, PP: tl.constexpr):
    """Stores the Gram residual ``r`` (a ``PAIRS`` tile) of patches ``n`` of images ``b`` as full C x C
    matrices, each pair at (a, b) and (b, a) (``(B, C*C, N)`` layout: entry ``q`` of a patch ``N`` floats
    after entry ``q - 1``)."""
    _, ab, ba = pair_layout(C, PP)
    at = res_ptr + (b.to(tl.int64) * (C * C * n_per_image) + n)[:, None]
    on = active[:, None] & (tl.arange(0, PP) < C * (C + 1) // 2)[None, :]
    tl.store(at + ab[None, :].to(tl.int64) * n_per_image, r, mask=on)
    tl.store(at + ba[None, :].to(tl.int64) * n_per_image, r, mask=on)  # the diagonal: the same value again


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
# The global tile: each thread holds BLOCK_P / num_warps SR patches (rows) of one bank row (column), so
# one bank load feeds that many multiply-adds, and keeps their pair Grams, scores, running minima and
# indices in registers: 4 or 8 rows per thread, 48 to 174 registers and no spills for C = 3 on sm_90.
GLOBAL_CONFIGS = [
    ({"BLOCK_P": 32, "BLOCK_M": 32}, 4),
    ({"BLOCK_P": 16, "BLOCK_M": 32}, 4),
    ({"BLOCK_P": 32, "BLOCK_M": 32}, 8),
    ({"BLOCK_P": 64, "BLOCK_M": 32}, 8),
]
GLOBAL_INTERPRETER = {"BLOCK_P": 32, "BLOCK_M": 64}


@triton.jit
def gram_score(g_sr, g_gt, g_c, weights, gt_weight, USE_GT: tl.constexpr):
    """Selection score of ``PAIRS`` tiles (``weights``: those of ``pair_layout``); NaN becomes +inf
    so that it never wins.

    ``gt_weight`` is cast to the Grams' dtype: the score's type (a loop-carried value in every caller)
    must not depend on how the scalar was passed (inductor passes Python floats as fp64).
    """
    d = g_sr - g_c
    s = tl.sum(weights[None, :] * (d * d), axis=1)
    if USE_GT:
        e = g_gt - g_c
        s = s + tl.cast(gt_weight, s.dtype) * tl.sum(weights[None, :] * (e * e), axis=1)
    return tl.where(s != s, float("inf"), s)


@triton.jit
def gram_loss(g_sr, g_c, weights, L1: tl.constexpr, C: tl.constexpr):
    """Gram-target per-patch loss of ``PAIRS`` tiles: mean criterion over the C*C entries (``weights``:
    those of ``pair_layout``, 0 for padding)."""
    return tl.sum(weights[None, :] * criterion_of(g_sr - g_c, L1), axis=1) / (C * C)


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
    PATCH: tl.constexpr, C: tl.constexpr, PP: tl.constexpr, F64: tl.constexpr,
    USE_GT: tl.constexpr, LOSS: tl.constexpr, L1: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """Local scope, one launch: index (and with ``LOSS`` the per-patch loss and the residual) of every SR patch."""
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    active = p < n_patches
    b, n, pi, pj = split_patch_index(p, n_per_image, wp)
    sr_base = b.to(tl.int64) * s_sb
    sr_pix = patch_pixel_offsets(pi, pj, s_sh, s_sw, PATCH)
    c_pix = patch_pixel_offsets(pi, pj, c_sh, c_sw, PATCH)
    g_sr = load_gram(sr_ptr, sr_base, sr_pix, active, s_sc, PATCH, C, PP, True, F64, BLOCK_P)
    c_off = b.to(tl.int64) * c_sb
    g_gt = load_gram(c_ptr, c_off, c_pix, active, c_sc, PATCH, C, PP, True, F64, BLOCK_P)
    weights, _, _ = pair_layout(C, PP)
    best = gram_score(g_sr, g_gt, g_gt, weights, gt_weight, USE_GT)
    best_idx = tl.zeros([BLOCK_P], dtype=tl.int32)
    g_best = g_gt
    for j in range(1, K):
        c_off += c_sk
        g_c = load_gram(c_ptr, c_off, c_pix, active, c_sc, PATCH, C, PP, True, F64, BLOCK_P)
        s = gram_score(g_sr, g_gt, g_c, weights, gt_weight, USE_GT)
        better = s < best
        best = tl.where(better, s, best)
        best_idx = tl.where(better, j, best_idx)
        if LOSS == 1:
            g_best = tl.where(better[:, None], g_c, g_best)
    tl.store(idx_ptr + p, best_idx.to(tl.int64), mask=active)
    if LOSS == 1:
        tl.store(loss_ptr + p, gram_loss(g_sr, g_best, weights, L1, C), mask=active)
        store_gram_residual(res_ptr, b, n, n_per_image, active, g_sr - g_best, C, PP)
    if LOSS == 2:
        c_base = b.to(tl.int64) * c_sb + best_idx.to(tl.int64) * c_sk
        r_off, r_sc = pixel_residual_offsets(b, pi, pj, n_per_image, wp, PATCH, C)
        total = pixel_criterion_sum(
            sr_ptr, sr_base, sr_pix, s_sc, c_ptr, c_base, c_pix, c_sc, active, C, L1, F64, BLOCK_P,
            res_ptr + r_off, r_sc, True,
        )  # fmt: skip
        tl.store(loss_ptr + p, total / (C * PATCH * PATCH), mask=active)


@tuned(GLOBAL_CONFIGS, GLOBAL_INTERPRETER, key=["n_per_image", "n_bank", "C"])
@triton.jit
def global_select_kernel(
    sr_pairs_ptr, bank_ptr,
    idx_ptr, loss_ptr,
    n_per_image, n_bank, gt_weight: tl.float64,
    C: tl.constexpr, F64: tl.constexpr, USE_GT: tl.constexpr, GRAM_LOSS: tl.constexpr, L1: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_M: tl.constexpr,
):  # fmt: skip
    """Global scope: running argmin of every SR patch of image ``program_id(1)`` over its bank rows.

    ``sr_pairs`` holds the SR patches' Gram pairs (B, P, N) and ``bank`` the candidates' (B, P, M), both
    pair-major (``kernels.gram``), rows level by level; the ground truth is level 0, so the GT patch
    co-located with SR patch ``n`` is bank row ``n``. A tile of ``BLOCK_P`` SR patches by ``BLOCK_M``
    bank rows is scored pair by pair (one ``[BLOCK_P]`` and one ``[BLOCK_M]`` vector load each,
    off-diagonal pairs weighed by 2), and every slot of the tile keeps its own running minimum over the
    rows it sees (strict ``<``, so the lowest row among equal scores); the slots are reduced once, after
    the last tile. With ``GRAM_LOSS`` the Gram-target loss of the chosen row is written too.
    """
    b = tl.program_id(1).to(tl.int64)
    n = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    active = n < n_per_image
    e_at = sr_pairs_ptr + b * n_per_image * (C * (C + 1) // 2) + n  # pair q of patch n: e_at + q * n_per_image
    bank = bank_ptr + b * n_bank * (C * (C + 1) // 2)  # pair q of row m: bank + q * n_bank + m
    best = tl.full([BLOCK_P, BLOCK_M], float("inf"), tl.float64 if F64 else tl.float32)
    best_idx = tl.zeros([BLOCK_P, BLOCK_M], dtype=tl.int32)
    for m0 in range(0, n_bank, BLOCK_M):
        m = m0 + tl.arange(0, BLOCK_M)
        m_on = m < n_bank
        s = tl.zeros([BLOCK_P, BLOCK_M], dtype=tl.float64 if F64 else tl.float32)
        s_gt = tl.zeros([BLOCK_P, BLOCK_M], dtype=tl.float64 if F64 else tl.float32)
        for a in tl.static_range(C):
            for c in tl.static_range(a, C):
                q = pair_entry(a, c, C)
                g_c = tl.load(bank + q * n_bank + m, mask=m_on, other=0.0)[None, :]
                d = tl.load(e_at + q * n_per_image, mask=active, other=0.0)[:, None] - g_c
                s += d * d if a == c else 2.0 * (d * d)
                if USE_GT:
                    d = tl.load(bank + q * n_bank + n, mask=active, other=0.0)[:, None] - g_c
                    s_gt += d * d if a == c else 2.0 * (d * d)
        if USE_GT:
            s = s + tl.cast(gt_weight, s.dtype) * s_gt
        better = (s < best) & m_on[None, :]  # a NaN score compares false: never chosen
        best = tl.where(better, s, best)
        best_idx = tl.where(better, m[None, :], best_idx)
    best_row = tl.min(best, axis=1)
    chosen = tl.min(tl.where(best == best_row[:, None], best_idx, n_bank), axis=1)  # all +inf: 0
    out = b * n_per_image + n
    tl.store(idx_ptr + out, chosen.to(tl.int64), mask=active)
    if GRAM_LOSS:
        total = tl.zeros([BLOCK_P], dtype=tl.float64 if F64 else tl.float32)
        for a in tl.static_range(C):
            for c in tl.static_range(a, C):
                q = pair_entry(a, c, C)
                d = tl.load(e_at + q * n_per_image, mask=active, other=0.0)
                d -= tl.load(bank + q * n_bank + chosen, mask=active, other=0.0)
                total += criterion_of(d, L1) if a == c else 2.0 * criterion_of(d, L1)
        tl.store(loss_ptr + out, total / (C * C), mask=active)


@tuned(PATCH_CONFIGS, PATCH_INTERPRETER, key=["n_patches", "PATCH", "C", "TARGET_GRAM"])
@triton.jit
def loss_at_index_kernel(
    sr_ptr, s_sb, s_sc, s_sh, s_sw,
    c_ptr, c_sb, c_sc, c_sh, c_sw,
    idx_ptr, loss_ptr,
    n_patches, n_per_image, wp, m_start, m_count, wp_c,
    PATCH: tl.constexpr, C: tl.constexpr, PP: tl.constexpr, F64: tl.constexpr,
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
        g_sr = load_gram(sr_ptr, sr_base, sr_pix, on, s_sc, PATCH, C, PP, True, F64, BLOCK_P)
        g_c = load_gram(c_ptr, c_base, c_pix, on, c_sc, PATCH, C, PP, True, F64, BLOCK_P)
        weights, _, _ = pair_layout(C, PP)
        loss = gram_loss(g_sr, g_c, weights, L1, C)
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
    PATCH: tl.constexpr, C: tl.constexpr, PP: tl.constexpr, F64: tl.constexpr,
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
        g_sr = load_gram(sr_ptr, sr_base, sr_pix, on, s_sc, PATCH, C, PP, True, F64, BLOCK_P)
        g_c = load_gram(c_ptr, c_base, c_pix, on, c_sc, PATCH, C, PP, True, F64, BLOCK_P)
        sym = 2.0 * criterion_grad(g_sr - g_c, up[:, None] / (C * C), L1)  # dG + dG^T, dG symmetric
        store_gram_input_grad(
            sym, 0, up, sr_ptr, sr_base, sr_pix, s_sc, on, dx_ptr, dx_base, dx_pix, dx_sc,
            0, L1, PATCH, C, PP, F64, BLOCK_P,
        )  # fmt: skip
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
    PATCH: tl.constexpr, C: tl.constexpr, PP: tl.constexpr, F64: tl.constexpr,
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
    if TARGET_GRAM:  # entry q of patch n: n_per_image values after entry q - 1, read as [BP] vectors
        r_at = res_ptr + b.to(tl.int64) * (C * C * n_per_image) + n
        sr_pix = patch_pixel_offsets(pi, pj, s_sh, s_sw, PATCH)
        store_gram_input_grad(
            r_at, n_per_image, up / (C * C), sr_ptr, b.to(tl.int64) * s_sb, sr_pix, s_sc, active,
            dx_ptr, dx_base, dx_pix, dx_sc, 1, L1, PATCH, C, PP, F64, BLOCK_P,
        )  # fmt: skip
    else:
        r_off, r_sc = pixel_residual_offsets(b, pi, pj, n_per_image, wp, PATCH, C)
        m = active[:, None]
        scale = up[:, None] / (C * PATCH * PATCH)
        for ch in tl.static_range(C):
            r = tl.load(res_ptr + r_off + ch * r_sc, mask=m, other=0.0)
            tl.store(dx_ptr + dx_base[:, None] + ch * dx_sc + dx_pix, criterion_grad(r, scale, L1), mask=m)
