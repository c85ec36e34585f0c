"""Per-patch Gram matrices: forward (also the global scope's pair Grams of SR and of the candidate bank) and
backward."""

from __future__ import annotations

import triton
import triton.language as tl

from ._autotune import tuned
from ._tiles import load_gram, patch_pixel_offsets, split_patch_index, store_gram_input_grad

# (meta, num_warps): a program holds [BLOCK_P, k*k] channel tiles; small blocks suit k = 8, large ones k = 2.
GRAM_CONFIGS = [({"BLOCK_P": 8}, 2), ({"BLOCK_P": 16}, 4), ({"BLOCK_P": 32}, 4), ({"BLOCK_P": 64}, 8)]
GRAM_INTERPRETER = {"BLOCK_P": 64}


@tuned(GRAM_CONFIGS, GRAM_INTERPRETER, key=["n_patches", "PATCH", "C", "PAIRS"])
@triton.jit
def patch_gram_fwd_kernel(
    x_ptr, x_sb, x_sc, x_sh, x_sw,
    out_ptr, out_sb, out_sp, out_sq, row0,
    n_patches, n_per_image, wp,
    PATCH: tl.constexpr, C: tl.constexpr, WIDTH: tl.constexpr, PAIRS: tl.constexpr, F64: tl.constexpr,
    BLOCK_P: tl.constexpr,
):  # fmt: skip
    """Gram ``(1/k^2) sum_u x_u x_u^T`` of every patch: its C*C entries, or its unique pairs with ``PAIRS``
    (``_tiles``' layouts).

    Entry ``q`` of patch ``n`` of image ``b`` goes to ``b * out_sb + (row0 + n) * out_sp + q * out_sq``:
    (B, N, C*C) for ``patch_gram`` (full, row0 = 0, out_sq = 1); pair-major (B, P, rows) for the global
    scope (out_sp = 1, out_sq = rows): the SR patches' pairs (row0 = 0) and the candidate bank (row0 = the
    first bank row of this candidate image), so that one pair of consecutive patches is contiguous.
    """
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    active = p < n_patches
    b, n, pi, pj = split_patch_index(p, n_per_image, wp)
    pix = patch_pixel_offsets(pi, pj, x_sh, x_sw, PATCH)
    g = load_gram(x_ptr, b.to(tl.int64) * x_sb, pix, active, x_sc, PATCH, C, WIDTH, PAIRS, F64, BLOCK_P)
    q = tl.arange(0, WIDTH)
    dst = b.to(tl.int64) * out_sb + (row0 + n).to(tl.int64) * out_sp
    entries = C * (C + 1) // 2 if PAIRS else C * C
    at = out_ptr + dst[:, None] + q[None, :].to(tl.int64) * out_sq
    tl.store(at, g, mask=active[:, None] & (q < entries)[None, :])


@tuned(GRAM_CONFIGS, GRAM_INTERPRETER, key=["n_patches", "PATCH", "C"])
@triton.jit
def patch_gram_bwd_kernel(
    x_ptr, x_sb, x_sc, x_sh, x_sw,
    g_ptr,
    dx_ptr, dx_sb, dx_sc, dx_sh, dx_sw,
    n_patches, n_per_image, wp,
    PATCH: tl.constexpr, C: tl.constexpr, PP: tl.constexpr, F64: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """``dx_a[u] = (1/k^2) sum_b (dG_ab + dG_ba) x_b[u]`` for an upstream ``dG`` (B, N, C*C) contiguous.

    Both entries are read from memory: ``dG`` need not be symmetric.
    """
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    active = p < n_patches
    b, n, pi, pj = split_patch_index(p, n_per_image, wp)
    b64 = b.to(tl.int64)
    store_gram_input_grad(
        g_ptr + p.to(tl.int64) * (C * C), 1, 0.0,
        x_ptr, b64 * x_sb, patch_pixel_offsets(pi, pj, x_sh, x_sw, PATCH), x_sc, active,
        dx_ptr, b64 * dx_sb, patch_pixel_offsets(pi, pj, dx_sh, dx_sw, PATCH), dx_sc,
        2, False, PATCH, C, PP, F64, BLOCK_P,
    )  # fmt: skip
