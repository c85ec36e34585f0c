"""Building blocks shared by the kernel families: patch addressing, Gram tiles, luminance.

A block of ``BP`` patches is processed at once. Pixels of a patch are indexed ``u = dy * k + dx``
(row-major inside the patch). Arithmetic is in float32 (float64 for float64 input: the ``F64`` flag of
every kernel). Patch pixels are handled one channel at a time (``[BP, k*k]`` tiles). A Gram tile is
``[BP, WIDTH]``, zero beyond its entries, in one of two layouts:

* full: entry ``q = a * C + b`` (row-major C x C), each pair at (a, b) and (b, a); ``WIDTH`` is the
  power of two >= C*C;
* pairs (``PAIRS``): the C(C+1)/2 unique pairs a <= b only, row by row ((0, 0), (0, 1), ..., (1, 1),
  ...; pair (a, b) is entry :func:`pair_entry`), as the C++ kernels hold a Gram;
  ``WIDTH`` is the power of two >= C(C+1)/2 (``PP``: 8 for C = 3). A sum over all C*C entries is the
  sum over pairs with the off-diagonal ones weighed by 2 (:func:`pair_layout`). Every kernel holds its
  Grams this way except ``patch_gram``'s, whose output is the full matrix.

All image offsets are int64: a batch of large images overflows int32.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.constexpr_function
def pair_entry(a, b, C):
    """Entry of channel pair (a, b), in either order, in a ``PAIRS`` tile: the pairs lo <= hi row by row."""
    lo, hi = min(a, b), max(a, b)
    return lo * C - lo * (lo - 1) // 2 + hi - lo


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
    PATCH: tl.constexpr, C: tl.constexpr, WIDTH: tl.constexpr, PAIRS: tl.constexpr, F64: tl.constexpr,
    BLOCK_P: tl.constexpr,
):  # fmt: skip
    """Gram tiles ``[BP, WIDTH]`` (full or ``PAIRS`` layout) of the patches at ``base + pix``.

    ``base`` ``[BP]`` is each patch's image offset, ``pix`` ``[BP, k*k]`` its pixel offsets; inactive
    patches give zeros.
    """
    at = ptr + base[:, None] + pix
    return gram_of(at, s_c, active[:, None], 0.0, 0.0, False, False, 0, 0, False, PATCH, C, WIDTH, PAIRS, F64, BLOCK_P)


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
    PATCH: tl.constexpr, C: tl.constexpr, WIDTH: tl.constexpr, PAIRS: tl.constexpr, F64: tl.constexpr,
    BLOCK_P: tl.constexpr,
):  # fmt: skip
    """Gram tiles ``[BP, WIDTH]`` of the patches whose channel-0 pixels ``at`` ``[BP, k*k]`` points at.

    Channels are ``s_c`` apart (a scalar or ``[BP, 1]``); ``m`` masks the reads. Without ``TAPS`` the
    pixels are loaded as they are; with it they are sampled by :func:`read_taps`. One ``[BP, k*k]``
    product per unordered channel pair, written to its pair entry (``PAIRS``) or to both (a, b) and
    (b, a) (exactly symmetric); small in registers for k = 8 (a ``[BP, C*C, k*k]`` tile spills).
    """
    q = tl.arange(0, WIDTH)
    g = tl.zeros([BLOCK_P, WIDTH], dtype=tl.float64 if F64 else tl.float32)
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
            if PAIRS:
                g = tl.where((q == pair_entry(a, b, C))[None, :], g_ab[:, None], g)
            else:
                g = tl.where(((q == a * C + b) | (q == b * C + a))[None, :], g_ab[:, None], g)
    return g


@triton.jit
def pair_layout(C: tl.constexpr, WIDTH: tl.constexpr):
    """Per entry of a ``PAIRS`` tile ``[WIDTH]``: its weight in a sum over all C*C Gram entries (1 on the
    diagonal, 2 off it, 0 for padding) and the full-layout entries ``a * C + b`` and ``b * C + a`` of its pair."""
    q = tl.arange(0, WIDTH)
    w = tl.zeros([WIDTH], dtype=tl.float32)
    ab = tl.zeros([WIDTH], dtype=tl.int32)
    ba = tl.zeros([WIDTH], dtype=tl.int32)
    for a in tl.static_range(C):
        for b in tl.static_range(a, C):
            at = q == pair_entry(a, b, C)
            w = tl.where(at, 1.0 if a == b else 2.0, w)
            ab = tl.where(at, a * C + b, ab)
            ba = tl.where(at, b * C + a, ba)
    return w, ab, ba


@triton.jit
def store_gram_input_grad(
    s, s_sq, scale, x_ptr, x_base, x_pix, x_sc, active, dx_ptr, dx_base, dx_pix, dx_sc,
    SOURCE: tl.constexpr, L1: tl.constexpr,
    PATCH: tl.constexpr, C: tl.constexpr, PP: tl.constexpr, F64: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """Stores ``dx_a[u] = (1/k^2) sum_b S_ab x_b[u]`` for ``S = dG + dG^T``.

    That is the gradient of a loss through ``G = (1/k^2) sum_u x_u x_u^T`` with upstream ``dG``. Each
    ``S_ab`` ``[BP]`` comes from ``s`` as ``SOURCE`` says:

    * 0, a register tile: ``s`` is ``S`` itself, symmetric, a ``PAIRS`` tile ``[BP, PP]``; ``S_ab`` is
      extracted (the same extraction for (a, b) and (b, a), which the compiler merges);
    * 1, a Gram residual in memory: ``s`` ``[BP]`` points at entry (0, 0) of each patch's residual
      ``r`` (full layout, symmetric), entries ``s_sq`` apart; ``S_ab = 2 criterion'(r_ab) * scale``
      (``scale`` ``[BP]``);
    * 2, an upstream ``dG`` in memory (laid out as a residual, not necessarily symmetric):
      ``S_ab = dG_ab + dG_ba``.

    In memory, entry ``a * C + b`` of a block of patches is one ``[BP]`` vector load, no extraction.
    """
    at = x_ptr + x_base[:, None] + x_pix
    m = active[:, None]
    for a in tl.static_range(C):
        acc = tl.zeros([BLOCK_P, PATCH * PATCH], dtype=tl.float64 if F64 else tl.float32)
        for b in tl.static_range(C):
            if SOURCE == 0:
                s_ab = tl.sum(tl.where((tl.arange(0, PP) == pair_entry(a, b, C))[None, :], s, 0.0), 1)
            elif SOURCE == 1:
                r_ab = tl.load(s + (a * C + b) * s_sq, mask=active, other=0.0)
                s_ab = 2.0 * criterion_grad(r_ab.to(tl.float64 if F64 else tl.float32), scale, L1)
            else:
                s_ab = tl.load(s + (a * C + b) * s_sq, mask=active, other=0.0).to(tl.float64 if F64 else tl.float32)
                s_ab += tl.load(s + (b * C + a) * s_sq, mask=active, other=0.0).to(tl.float64 if F64 else tl.float32)
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
