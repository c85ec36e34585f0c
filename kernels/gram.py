"""Per-patch Gram matrices: forward (also fills the global scope's candidate-Gram bank) and backward."""

from __future__ import annotations

import triton
import triton.language as tl

from ._autotune import tuned
from ._tiles import load_gram, patch_pixel_offsets, split_patch_index, store_gram_input_grad

# (meta, num_warps): a program holds [BLOCK_P, k*k] channel tiles; small blocks suit k = 8, large ones k = 2.
GRAM_CONFIGS = [({"BLOCK_P": 8}, 2), ({"BLOCK_P": 16}, 4), ({"BLOCK_P": 32}, 4), ({"BLOCK_P": 64}, 8)]
GRAM_INTERPRETER = {"BLOCK_P": 64}


@tuned(GRAM_CONFIGS, GRAM_INTERPRETER, key=["n_patches", "PATCH", "C"])
@triton.jit
def patch_gram_fwd_kernel(
    x_ptr, x_sb, x_sc, x_sh, x_sw,
    out_ptr, out_sb, out_sp, row0,
    n_patches, n_per_image, wp,
    PATCH: tl.constexpr, C: tl.constexpr, CC_P: tl.constexpr, F64: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """Gram ``(1/k^2) sum_u x_u x_u^T`` of every patch, written as C*C contiguous values per patch.

    Patch ``n`` of image ``b`` goes to row ``row0 + n`` of ``out`` (rows ``out_sp`` apart, images
    ``out_sb``): (B, N, C*C) for ``patch_gram`` (row0 = 0), rows of the (B, M, C*C) bank for the global
    scope (row0 = the first bank row of this candidate image).
    """
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    active = p < n_patches
    b, n, pi, pj = split_patch_index(p, n_per_image, wp)
    pix = patch_pixel_offsets(pi, pj, x_sh, x_sw, PATCH)
    g = load_gram(x_ptr, b.to(tl.int64) * x_sb, pix, active, x_sc, PATCH, C, CC_P, F64, BLOCK_P)
    q = tl.arange(0, CC_P)
    dst = b.to(tl.int64) * out_sb + (row0 + n).to(tl.int64) * out_sp
    tl.store(out_ptr + dst[:, None] + q[None, :], g, mask=active[:, None] & (q < C * C)[None, :])


@tuned(GRAM_CONFIGS, GRAM_INTERPRETER, key=["n_patches", "PATCH", "C"])
@triton.jit
def patch_gram_bwd_kernel(
    x_ptr, x_sb, x_sc, x_sh, x_sw,
    g_ptr,
    dx_ptr, dx_sb, dx_sc, dx_sh, dx_sw,
    n_patches, n_per_image, wp,
    PATCH: tl.constexpr, C: tl.constexpr, CC_P: tl.constexpr, F64: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """``dx_a[u] = (1/k^2) sum_b (dG_ab + dG_ba) x_b[u]`` for an upstream ``dG`` (B, N, C*C) contiguous.

    The transposed entry is read from memory: ``dG`` need not be symmetric.
    """
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    active = p < n_patches
    b, n, pi, pj = split_patch_index(p, n_per_image, wp)
    q = tl.arange(0, CC_P)
    q_t = (q % C) * C + q // C
    row = p.to(tl.int64) * (C * C)
    gm = active[:, None] & (q < C * C)[None, :]
    sym = tl.load(g_ptr + row[:, None] + q[None, :], mask=gm, other=0.0).to(tl.float64 if F64 else tl.float32)
    sym += tl.load(g_ptr + row[:, None] + q_t[None, :], mask=gm, other=0.0).to(tl.float64 if F64 else tl.float32)
    b64 = b.to(tl.int64)
    store_gram_input_grad(
        sym, x_ptr, b64 * x_sb, patch_pixel_offsets(pi, pj, x_sh, x_sw, PATCH), x_sc, active,
        dx_ptr, b64 * dx_sb, patch_pixel_offsets(pi, pj, dx_sh, dx_sw, PATCH), dx_sc, PATCH, C, CC_P, F64, BLOCK_P,
    )  # fmt: skip
