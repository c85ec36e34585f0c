"""Building blocks shared by the kernel families: patch addressing, Gram tiles, luminance.

A block of ``BP`` patches is processed at once. Pixels of a patch are indexed ``u = dy * k + dx``
(row-major inside the patch), Gram entries ``q = a * C + b`` (row-major C x C). Arithmetic is in float32
(float64 for float64 input: the ``F64`` flag of every kernel). Patch pixels are
handled one channel at a time (``[BP, k*k]`` tiles); Gram tiles are ``[BP, CC_P]`` with ``CC_P`` the
power of two >= C*C, zero beyond C*C. All offsets are int64: a batch of large images overflows int32.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def split_patch_index(p, n_per_image, wp):
    """Flat patch index -> (image, patch in image, patch row, patch column); all non-negative."""
    b = p // n_per_image
    n = p - b * n_per_image
    pi = n // wp
    pj = n - pi * wp
    return b, n, pi, pj


@triton.jit
def patch_pixel_offsets(pi, pj, s_h, s_w, PATCH: tl.constexpr):
    """``[BP, k*k]`` element offsets (within one image) of the pixels of patches ``(pi, pj)``."""
    u = tl.arange(0, PATCH * PATCH)
    rows = pi[:, None] * PATCH + (u // PATCH)[None, :]
    cols = pj[:, None] * PATCH + (u % PATCH)[None, :]
    return rows.to(tl.int64) * s_h + cols.to(tl.int64) * s_w


# The helpers below load channels inline rather than through a helper: under the interpreter every call
# of a jit function costs about a millisecond, and these run once per channel (pair).


@triton.jit
def load_gram(
    ptr, base, pix, active, s_c,
    PATCH: tl.constexpr, C: tl.constexpr, CC_P: tl.constexpr, F64: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """Gram matrices ``[BP, CC_P]`` (entry ``q = a*C + b``, zero beyond C*C) of the patches at ``base + pix``.

    ``base`` ``[BP]`` is each patch's image offset, ``pix`` ``[BP, k*k]`` its pixel offsets; inactive
    patches give zeros.
    """
    at = ptr + base[:, None] + pix
    return gram_of(at, s_c, active[:, None], 0.0, 0.0, False, False, 0, 0, False, PATCH, C, CC_P, F64, BLOCK_P)


@triton.jit
def read_taps(at, m, fx, fy, m_e, m_s, s_h, s_w, F64: tl.constexpr):
    """One channel of bilinearly sampled pixels ``[BP, k*k]``, blended as ATen's ``grid_sample`` does.

    ``at`` points at each pixel's north-west neighbour, ``fx``/``fy`` are the fractional offsets towards
    the east/south neighbours (``s_w``/``s_h`` further on), ``m_e``/``m_s`` whether those lie inside the
    image (one outside weighs nothing; one inside with weight 0 still passes on a NaN, like torch's).
    ``fx = fy = 0`` without east/south neighbours reads the pixel at ``at`` exactly.
    """
    e = 1.0 - fx
    s = 1.0 - fy
    v = tl.load(at, mask=m, other=0.0).to(tl.float64 if F64 else tl.float32) * (s * e)
    v += tl.load(at + s_w, mask=m & m_e, other=0.0).to(tl.float64 if F64 else tl.float32) * (s * fx)
    v += tl.load(at + s_h, mask=m & m_s, other=0.0).to(tl.float64 if F64 else tl.float32) * (fy * e)
    v += tl.load(at + s_h + s_w, mask=m & m_e & m_s, other=0.0).to(tl.float64 if F64 else tl.float32) * (fy * fx)
    return v


@triton.jit
def gram_of(
    at, s_c, m, fx, fy, m_e, m_s, s_h, s_w, TAPS: tl.constexpr,
    PATCH: tl.constexpr, C: tl.constexpr, CC_P: tl.constexpr, F64: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """Gram matrices ``[BP, CC_P]`` of the patches whose channel-0 pixels ``at`` ``[BP, k*k]`` points at.

    Channels are ``s_c`` apart (a scalar or ``[BP, 1]``); ``m`` masks the reads. Without ``TAPS`` the
    pixels are loaded as they are; with it they are sampled by :func:`read_taps`. One ``[BP, k*k]``
    product per unordered channel pair, written to both (a, b) and (b, a): exactly symmetric, and small
    in registers for k = 8 (a ``[BP, C*C, k*k]`` tile spills).
    """
    q = tl.arange(0, CC_P)
    g = tl.zeros([BLOCK_P, CC_P], dtype=tl.float64 if F64 else tl.float32)
    for a in tl.static_range(C):
        if TAPS:
            xa = read_taps(at + a * s_c, m, fx, fy, m_e, m_s, s_h, s_w, F64)
        else:
            xa = tl.load(at + a * s_c, mask=m, other=0.0).to(tl.float64 if F64 else tl.float32)
        for b in tl.static_range(a, C):
            if b == a:
                xb = xa
            elif TAPS:
                xb = read_taps(at + b * s_c, m, fx, fy, m_e, m_s, s_h, s_w, F64)
            else:
                xb = tl.load(at + b * s_c, mask=m, other=0.0).to(tl.float64 if F64 else tl.float32)
            g_ab = tl.sum(xa * xb, axis=1) / (PATCH * PATCH)
            g = tl.where(((q == a * C + b) | (q == b * C + a))[None, :], g_ab[:, None], g)
    return g


@triton.jit
def store_gram_input_grad(
    sym, x_ptr, x_base, x_pix, x_sc, active, dx_ptr, dx_base, dx_pix, dx_sc,
    PATCH: tl.constexpr, C: tl.constexpr, CC_P: tl.constexpr, F64: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """Stores ``dx_a[u] = (1/k^2) sum_b S_ab x_b[u]`` for ``S`` = ``sym`` ``[BP, CC_P]`` (``dG + dG^T``).

    That is the gradient of a loss through ``G = (1/k^2) sum_u x_u x_u^T`` with upstream ``dG``.
    """
    q = tl.arange(0, CC_P)
    at = x_ptr + x_base[:, None] + x_pix
    m = active[:, None]
    for a in tl.static_range(C):
        acc = tl.zeros([BLOCK_P, PATCH * PATCH], dtype=tl.float64 if F64 else tl.float32)
        for b in tl.static_range(C):
            s_ab = tl.sum(tl.where((q == a * C + b)[None, :], sym, 0.0), axis=1)
            xb = tl.load(at + b * x_sc, mask=m, other=0.0).to(tl.float64 if F64 else tl.float32)
            acc += s_ab[:, None] * xb
        tl.store(dx_ptr + dx_base[:, None] + a * dx_sc + dx_pix, acc / (PATCH * PATCH), mask=m)


@triton.jit
def pixel_criterion_sum(
    e_ptr, e_base, e_pix, e_sc, c_ptr, c_base, c_pix, c_sc, active,
    C: tl.constexpr, L1: tl.constexpr, F64: tl.constexpr, BLOCK_P: tl.constexpr,
    res_at, res_sc, STORE: tl.constexpr,
):  # fmt: skip
    """``sum`` over channels and pixels of ``criterion(e - c)`` for patch pairs: ``[BP]``; with ``STORE``
    each ``e - c`` is also stored at ``res_at + channel * res_sc`` (``[BP, k*k]`` pointers)."""
    e_at = e_ptr + e_base[:, None] + e_pix
    c_at = c_ptr + c_base[:, None] + c_pix
    m = active[:, None]
    total = tl.zeros([BLOCK_P], dtype=tl.float64 if F64 else tl.float32)
    for ch in tl.static_range(C):
        e = tl.load(e_at + ch * e_sc, mask=m, other=0.0).to(tl.float64 if F64 else tl.float32)
        d = e - tl.load(c_at + ch * c_sc, mask=m, other=0.0).to(tl.float64 if F64 else tl.float32)
        if STORE:
            tl.store(res_at + ch * res_sc, d, mask=m)
        if L1:
            total += tl.sum(tl.abs(d), axis=1)
        else:
            total += tl.sum(d * d, axis=1)
    return total


@triton.jit
def store_pixel_grad(
    scale, e_ptr, e_base, e_pix, e_sc, c_ptr, c_base, c_pix, c_sc, active, dx_ptr, dx_base, dx_pix, dx_sc,
    C: tl.constexpr, L1: tl.constexpr, F64: tl.constexpr,
):  # fmt: skip
    """Stores ``scale * criterion'(e - c)`` per pixel value (``scale`` ``[BP]``: upstream / count)."""
    e_at = e_ptr + e_base[:, None] + e_pix
    c_at = c_ptr + c_base[:, None] + c_pix
    m = active[:, None]
    s = scale[:, None]
    for ch in tl.static_range(C):
        e = tl.load(e_at + ch * e_sc, mask=m, other=0.0).to(tl.float64 if F64 else tl.float32)
        d = e - tl.load(c_at + ch * c_sc, mask=m, other=0.0).to(tl.float64 if F64 else tl.float32)
        if L1:
            g = tl.where(d > 0, s, tl.where(d < 0, -s, d * s * 0.0))
        else:
            g = 2.0 * d * s
        tl.store(dx_ptr + dx_base[:, None] + ch * dx_sc + dx_pix, g, mask=m)


@triton.jit
def criterion_of(d, L1: tl.constexpr):
    """``|d|`` for the l1 criterion, ``d^2`` for mse."""
    if L1:
        v = tl.abs(d)
    else:
        v = d * d
    return v


@triton.jit
def criterion_grad(d, scale, L1: tl.constexpr):
    """Derivative of ``criterion_of`` times ``scale``; ``sign(0) = 0`` and NaN stays NaN, as in torch."""
    if L1:
        g = tl.where(d > 0, scale, tl.where(d < 0, -scale, d * scale * 0.0))
    else:
        g = 2.0 * d * scale
    return g


@triton.jit
def luminance(ptr, off, m, s_c, C: tl.constexpr, F64: tl.constexpr):
    """Y of the pixels at ``off`` (any shape): 0.299R + 0.587G + 0.114B for C = 3, else the channel mean."""
    if C == 3:
        r = tl.load(ptr + off, mask=m, other=0.0).to(tl.float64 if F64 else tl.float32)
        g = tl.load(ptr + off + s_c, mask=m, other=0.0).to(tl.float64 if F64 else tl.float32)
        b = tl.load(ptr + off + 2 * s_c, mask=m, other=0.0).to(tl.float64 if F64 else tl.float32)
        y = r * 0.299 + g * 0.587 + b * 0.114
    else:
        y = tl.load(ptr + off, mask=m, other=0.0).to(tl.float64 if F64 else tl.float32)
        for c in tl.static_range(1, C):
            y += tl.load(ptr + off + c * s_c, mask=m, other=0.0).to(tl.float64 if F64 else tl.float32)
        if C > 1:
            y = y / C
    return y
