"""The reference backend: pure PyTorch, the definition of every op and the benchmark baseline.

Everything here is written for clarity with ``reshape`` (the non-overlapping unfold) and ``einsum``;
gradients come from ordinary autograd. Arithmetic is done in float32 (float64 for float64 input).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gramgan._resize_taps import resize_weights
from gramgan.ops._contract import accumulation_dtype

# Largest temporary of the global search, in elements: each chunk of SR patches is compared with all
# candidate Grams at once, which needs (chunk * M * C * C) elements (docs/ops.md: never the whole N x M matrix).
GLOBAL_CHUNK_ELEMENTS = 1 << 24

LUMA_RGB = (0.299, 0.587, 0.114)


def patches(x: torch.Tensor, k: int) -> torch.Tensor:
    """Non-overlapping k x k patches ``(B, H/k, W/k, C, k*k)`` of ``x`` (B, C, H, W), row-major."""
    b, c, h, w = x.shape
    cells = x.reshape(b, c, h // k, k, w // k, k)
    return cells.permute(0, 2, 4, 1, 3, 5).reshape(b, h // k, w // k, c, k * k)


def patch_gram(x: torch.Tensor, k: int) -> torch.Tensor:
    """``G = (1/k^2) sum_u x_u x_u^T`` for every patch: ``(B, H/k, W/k, C, C)``."""
    p = patches(x.to(accumulation_dtype(x.dtype)), k)
    return torch.einsum("bijcu,bijdu->bijcd", p, p) / (k * k)


def _squared_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Frobenius distance over the last two dims (C, C)."""
    return (a - b).square().sum(dim=(-2, -1))


def _argmin_nan_last(scores: torch.Tensor, dim: int) -> torch.Tensor:
    """argmin with ties to the lowest index and NaN scores never winning (all NaN: index 0)."""
    return torch.nan_to_num(scores, nan=float("inf")).argmin(dim=dim)


def _local_grams(sr: torch.Tensor, candidates: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Grams of SR ``(B, I, J, C, C)`` and of the candidates ``(B, K, I, J, C, C)``."""
    b, n_cand = candidates.shape[:2]
    g_sr = patch_gram(sr, k)
    g_cand = patch_gram(candidates.flatten(0, 1), k)
    return g_sr, g_cand.reshape(b, n_cand, *g_cand.shape[1:])


def _select_local(g_sr: torch.Tensor, g_cand: torch.Tensor, gt_weight: float) -> torch.Tensor:
    scores = _squared_distance(g_sr.unsqueeze(1), g_cand)
    if gt_weight:
        scores = scores + gt_weight * _squared_distance(g_cand[:, :1], g_cand)
    return _argmin_nan_last(scores, dim=1)


def _global_gram_bank(candidates: list[torch.Tensor], k: int) -> torch.Tensor:
    """All candidate patches' Grams, level by level, row-major: ``(B, M, C, C)``."""
    return torch.cat([patch_gram(image, k).flatten(1, 2) for image in candidates], dim=1)


def _select_global(g_sr: torch.Tensor, g_gt: torch.Tensor, bank: torch.Tensor, gt_weight: float) -> torch.Tensor:
    """Running argmin over chunks of SR patches, bounded by ``GLOBAL_CHUNK_ELEMENTS``."""
    b, i, j, c, _ = g_sr.shape
    queries, gts = g_sr.reshape(b, i * j, c, c), g_gt.reshape(b, i * j, c, c)
    n, m = i * j, bank.shape[1]
    chunk = max(1, GLOBAL_CHUNK_ELEMENTS // max(1, m * c * c))
    index = torch.empty(b, n, dtype=torch.long, device=g_sr.device)
    for bi in range(b):
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            scores = _squared_distance(queries[bi, start:stop, None], bank[bi, None])
            if gt_weight:
                scores = scores + gt_weight * _squared_distance(gts[bi, start:stop, None], bank[bi, None])
            index[bi, start:stop] = _argmin_nan_last(scores, dim=1)
    return index.reshape(b, i, j)


def _select(sr: torch.Tensor, candidates, k: int, scope: str, gt_weight: float) -> torch.Tensor:
    with torch.no_grad():
        if scope == "local":
            g_sr, g_cand = _local_grams(sr, candidates, k)
            return _select_local(g_sr, g_cand, gt_weight)
        return _select_global(
            patch_gram(sr, k), patch_gram(candidates[0], k), _global_gram_bank(candidates, k), gt_weight
        )


def gram_select(sr: torch.Tensor, candidates, k: int, scope: str, gt_weight: float) -> torch.Tensor:
    """Index of the candidate with the smallest score for every SR patch ``(B, H/k, W/k)``.

    Global scope memory: the candidate Gram bank (B * M * C^2 floats) plus one chunk of at most
    ``GLOBAL_CHUNK_ELEMENTS`` (16 M floats, 64 MiB) of differences and its scores; for the paper's batch
    (B = 8, 192 x 192, M ~ 12k) that is about 3.5 MiB + 2 x 64 MiB, whatever N is.
    """
    return _select(sr, candidates, k, scope, gt_weight)


def _elementwise(d: torch.Tensor, criterion: str) -> torch.Tensor:
    return d.square() if criterion == "mse" else d.abs()


def _selected_local_patches(candidates: torch.Tensor, index: torch.Tensor, k: int) -> torch.Tensor:
    """The chosen candidate's patch for every SR patch: ``(B, I, J, C, k*k)``."""
    b, n_cand = candidates.shape[:2]
    p = patches(candidates.flatten(0, 1), k)
    p = p.reshape(b, n_cand, *p.shape[1:])
    gather = index[:, None, :, :, None, None].expand(-1, 1, -1, -1, *p.shape[-2:])
    return p.gather(1, gather).squeeze(1)


def _selected_global_patches(candidates: list[torch.Tensor], index: torch.Tensor, k: int) -> torch.Tensor:
    bank = torch.cat([patches(image, k).flatten(1, 2) for image in candidates], dim=1)  # (B, M, C, k*k)
    b, i, j = index.shape
    gather = index.reshape(b, i * j, 1, 1).expand(-1, -1, *bank.shape[-2:])
    return bank.gather(1, gather).reshape(b, i, j, *bank.shape[-2:])


def texture_loss(
    sr: torch.Tensor, candidates, k: int, scope: str, gt_weight: float, target: str, criterion: str
) -> torch.Tensor:
    """Per-patch texture loss ``(B, H/k, W/k)`` against the selected candidates (docs/ops.md, Eq. 4)."""
    acc = accumulation_dtype(sr.dtype)
    index = _select(sr, candidates, k, scope, gt_weight)
    if scope == "local":
        cands = candidates.detach().to(acc)
    else:
        cands = [image.detach().to(acc) for image in candidates]
    if target == "gram":
        if scope == "local":
            b, n_cand = cands.shape[:2]
            g_cand = patch_gram(cands.flatten(0, 1), k)
            g_cand = g_cand.reshape(b, n_cand, *g_cand.shape[1:])
            g_sel = g_cand.gather(1, index[:, None, :, :, None, None].expand(-1, 1, -1, -1, *g_cand.shape[-2:]))
            g_sel = g_sel.squeeze(1)
        else:
            bank = _global_gram_bank(cands, k)
            b, i, j = index.shape
            gather = index.reshape(b, i * j, 1, 1).expand(-1, -1, *bank.shape[-2:])
            g_sel = bank.gather(1, gather).reshape(b, i, j, *bank.shape[-2:])
        return _elementwise(patch_gram(sr, k) - g_sel, criterion).mean(dim=(-2, -1))
    if scope == "local":
        selected = _selected_local_patches(cands, index, k)
    else:
        selected = _selected_global_patches(cands, index, k)
    return _elementwise(patches(sr.to(acc), k) - selected, criterion).mean(dim=(-2, -1))


def retile_half(half: torch.Tensor, k: int) -> torch.Tensor:
    """``(B, C, H/2, W/2)`` -> ``(B, C, H, W)``: patch (i, j) of the result is patch (i // 2, j // 2) of ``half``.

    Each k x k patch of the half-size image is repeated into a 2 x 2 block of patch positions (not a
    pixel upsampling); H/2 and W/2 must be multiples of ``k``.
    """
    b, c, h, w = half.shape
    rows, cols = h // k, w // k
    cells = half.reshape(b, c, rows, 1, k, cols, 1, k)
    return cells.expand(b, c, rows, 2, k, cols, 2, k).reshape(b, c, 2 * h, 2 * w)


def warp(images: torch.Tensor, thetas: torch.Tensor) -> torch.Tensor:
    """Every image warped by each of its affine maps: ``(B, C, H, W)``, ``(B, J, 2, 3)`` -> ``(B, J, C, H, W)``.

    ``affine_grid`` and bilinear ``grid_sample`` with reflection padding, ``align_corners=False``, in
    ``images``' dtype (the definition the sampling kernels follow, docs/candidates.md).
    """
    b, c, h, w = images.shape
    j = thetas.shape[1]
    if b == 0 or j == 0:
        return images.new_zeros((b, j, c, h, w))
    src = images.repeat_interleave(j, dim=0)  # (B*J, C, H, W): image-major, warp-minor
    grid = F.affine_grid(thetas.reshape(b * j, 2, 3).to(images), [b * j, c, h, w], align_corners=False)
    warped = F.grid_sample(src, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return warped.reshape(b, j, c, h, w)


def sampled_candidates(hr: torch.Tensor, hr_half: torch.Tensor, thetas: torch.Tensor, k: int) -> torch.Tensor:
    """The local candidate stack ``[hr, retile_half(hr_half), warps of hr]`` in the accumulation dtype."""
    acc = accumulation_dtype(hr.dtype)
    hr = hr.detach().to(acc)
    with torch.no_grad():
        warps = warp(hr, thetas.detach().to(acc))
        return torch.cat([hr.unsqueeze(1), retile_half(hr_half.detach().to(acc), k).unsqueeze(1), warps], dim=1)


def texture_loss_sampled(
    sr: torch.Tensor,
    hr: torch.Tensor,
    hr_half: torch.Tensor,
    thetas: torch.Tensor,
    k: int,
    gt_weight: float,
    target: str,
    criterion: str,
) -> torch.Tensor:
    """The local texture loss against :func:`sampled_candidates` (materialised: the definition)."""
    candidates = sampled_candidates(hr, hr_half, thetas, k)
    return texture_loss(sr, candidates, k, "local", gt_weight, target, criterion)


def downsample_half(x: torch.Tensor) -> torch.Tensor:
    """MATLAB's bicubic ``imresize(x, 0.5)`` (antialiased) in the accumulation dtype, without gradient.

    Each output pixel is the weighted sum of its own taps (MATLAB's contributions, rows first), so a NaN
    reaches only the outputs that read it.
    """
    x = x.detach().to(accumulation_dtype(x.dtype))
    for dim in (-2, -1):
        n = x.shape[dim]
        index, weights = resize_weights(n, n // 2, 0.5, True)  # (n/2, taps) each
        taps = x.index_select(dim, torch.tensor(index.reshape(-1), device=x.device))
        taps = taps.unflatten(dim, index.shape)  # (..., n/2, taps, ...) along dim
        w = torch.tensor(weights, dtype=x.dtype, device=x.device)
        x = (taps * (w if dim == -1 else w[:, :, None])).sum(dim if dim == -1 else -2)
    return x


def luminance(x: torch.Tensor) -> torch.Tensor:
    """Y = 0.299R + 0.587G + 0.114B for C = 3, the channel for C = 1, the channel mean otherwise (ours)."""
    if x.shape[1] == 3:
        weights = torch.tensor(LUMA_RGB, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * weights).sum(dim=1, keepdim=True)
    return x.mean(dim=1, keepdim=True)


def _threshold(std: torch.Tensor, threshold: float, dtype: torch.dtype) -> torch.Tensor:
    """1 where std > threshold, 0 elsewhere, NaN where std is NaN."""
    mask = (std > threshold).to(dtype)
    return torch.where(torch.isnan(std), torch.full_like(mask, float("nan")), mask)


def _grid_std(y: torch.Tensor, k: int, offset: tuple[int, int]) -> torch.Tensor:
    """Per-pixel std of the (clipped) grid cell containing it, two-pass, for y (B, 1, H, W) float64."""
    b, _, h, w = y.shape
    oy, ox = offset
    rows, cols = -(-(h + oy) // k), -(-(w + ox) // k)
    pad = (ox, cols * k - w - ox, oy, rows * k - h - oy)
    valid = F.pad(torch.ones_like(y), pad).reshape(b, rows, k, cols, k)
    values = F.pad(y, pad).reshape(b, rows, k, cols, k)
    count = valid.sum(dim=(2, 4), keepdim=True)
    mean = values.sum(dim=(2, 4), keepdim=True) / count
    sq = ((values - mean) * valid).square().sum(dim=(2, 4), keepdim=True)
    var = torch.where(count > 1, sq / (count - 1).clamp_min(1), torch.zeros_like(sq))
    var = torch.where(torch.isnan(sq), sq, var)  # a lone NaN pixel still poisons its cell
    std = var.sqrt().expand(b, rows, k, cols, k).reshape(b, 1, rows * k, cols * k)
    return std[:, :, oy : oy + h, ox : ox + w]


def _sliding_std(y: torch.Tensor, window: int) -> torch.Tensor:
    """Per-pixel unbiased std over a window x window neighbourhood with reflect padding (float64)."""
    r = window // 2
    padded = F.pad(y, (r, r, r, r), mode="reflect")
    n = window * window
    mean = F.avg_pool2d(padded, window, stride=1)
    mean_sq = F.avg_pool2d(padded.square(), window, stride=1)
    if n == 1:
        return torch.zeros_like(mean) * mean  # keeps NaN
    var = ((mean_sq - mean.square()) * (n / (n - 1))).clamp_min(0)
    return var.sqrt()


def texture_mask(
    x: torch.Tensor, k: int, threshold: float, offset: tuple[int, int], mode: str, window: int
) -> torch.Tensor:
    """``1{std(luminance of the cell or window) > threshold}`` per pixel, ``(B, 1, H, W)`` in x's dtype.

    Statistics are computed in float64, so that a std near the threshold (variance ~2.5e-5) is exact.
    """
    with torch.no_grad():
        y = luminance(x.detach().to(torch.float64))
        std = _grid_std(y, k, offset) if mode == "grid" else _sliding_std(y, window)
        return _threshold(std, threshold, x.dtype)


def mask_pair(
    sr: torch.Tensor, hr: torch.Tensor, k: int, threshold: float, offset: tuple[int, int], mode: str, window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sr * M, hr * M)`` with M the mask of ``hr``; the gradient flows to ``sr`` only."""
    mask = texture_mask(hr, k, threshold, offset, mode, window)
    return sr * mask.to(sr.dtype), hr.detach() * mask


def _scoped(fn, scope: str):
    """``fn(sr, candidates, k, scope, *rest)`` as the contract's op of that scope: ``(sr, candidates, k, *rest)``."""
    return staticmethod(lambda sr, candidates, k, *rest: fn(sr, candidates, k, scope, *rest))


def _offset_split(fn):
    """``fn(..., (oy, ox), mode, window)`` as the contract's op: ``(..., oy, ox, mode, window)``."""
    return staticmethod(lambda *args: fn(*args[:-4], (args[-4], args[-3]), *args[-2:]))


class ReferenceBackend:
    """The ``reference`` table entry: runs anywhere, supports every k and C. Its methods are the contract's
    forward ops (``_contract.FORWARD_OPS``, with their schema's arguments) made of the functions above."""

    name = "reference"

    def unavailable_reason(self, device: torch.device) -> str | None:
        return None

    def unsupported_reason(self, k: int, channels: int) -> str | None:
        return None

    patch_gram = staticmethod(patch_gram)
    gram_select_local = _scoped(gram_select, "local")
    gram_select_global = _scoped(gram_select, "global")
    texture_loss_local = _scoped(texture_loss, "local")
    texture_loss_global = _scoped(texture_loss, "global")
    texture_loss_sampled = staticmethod(texture_loss_sampled)
    downsample_half = staticmethod(downsample_half)
    texture_mask = _offset_split(texture_mask)
    mask_pair = _offset_split(mask_pair)


REFERENCE_BACKEND = ReferenceBackend()
