"""The fused Gram-GAN operations (docs/ops.md): one validation layer, one dispatch, several backends.

>>> import torch, gramgan.ops as ops
>>> sr = torch.rand(2, 3, 16, 16, requires_grad=True)
>>> candidates = torch.rand(2, 6, 3, 16, 16)          # (B, K, C, H, W); candidate 0 is the HR image
>>> ops.gram_texture_loss(sr, candidates).backward()  # the Eq. 4 texture loss, gradient to sr only

Every op takes ``backend=None`` (the process default: :func:`set_backend`, ``$GRAMGAN_BACKEND``, else
``auto``); backends are ``reference`` (pure PyTorch, the definition), ``cpu`` and ``cuda`` (the C++/CUDA
extension) and ``triton``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.autograd import forward_ad

from gramgan.ops import _validate as V
from gramgan.ops._backend import Backend
from gramgan.ops._contract import accumulation_dtype, gram_shape, patch_grid
from gramgan.ops._dispatch import (
    BACKEND_NAMES,
    backend_availability,
    get_backend,
    register_backend,
    resolve,
    set_backend,
)

__all__ = [
    "BACKEND_NAMES",
    "backend_availability",
    "downsample_half",
    "get_backend",
    "gram_select",
    "gram_texture_loss",
    "gram_texture_loss_sampled",
    "mask_pair",
    "patch_gram",
    "register_backend",
    "set_backend",
    "texture_mask",
]

Candidates = torch.Tensor | Sequence[torch.Tensor]


def _without_tangent(chosen: Backend, op: str, x: torch.Tensor) -> Backend:
    """``chosen``, unless ``x`` carries a forward-mode AD tangent (``torch.autograd.forward_ad``) and
    ``chosen`` is a fused backend: their kernels have no forward-mode derivative, and the Triton ops would
    drop the tangent silently (docs/ops.md, "Conventions")."""
    if chosen.name != "reference" and forward_ad.unpack_dual(x).tangent is not None:
        raise RuntimeError(
            f"gramgan::{op}: backend {chosen.name!r} has no forward-mode derivatives (torch.autograd.forward_ad); "
            "use backend='reference'"
        )
    return chosen


def patch_gram(x: torch.Tensor, k: int = 4, *, backend: str | None = None) -> torch.Tensor:
    """Gram matrix ``(1/k^2) sum_u x_u x_u^T`` of every non-overlapping k x k patch of ``x``.

    Args:
        x: images ``(B, C, H, W)``, H and W multiples of ``k``.
        k: patch size.
        backend: see the module docstring.

    Returns:
        float32 (float64 for float64 input) ``(B, H/k, W/k, C, C)``, differentiable in ``x``.
    """
    k = V.check_patch_size(k)
    V.check_image(x, "x", k)
    if x.shape[0] == 0:
        return x.new_zeros(gram_shape(x, k), dtype=accumulation_dtype(x.dtype))
    return _without_tangent(resolve(backend, x.device, k, x.shape[1]), "patch_gram", x).patch_gram(x, k)


def _check_selection(sr: torch.Tensor, candidates: Candidates, k: int, scope: str, gt_weight: float):
    k = V.check_patch_size(k)
    V.check_image(sr, "sr", k)
    candidates = V.check_candidates(sr, candidates, k, scope)
    return k, candidates, V.check_gt_weight(gt_weight)


def gram_select(
    sr: torch.Tensor,
    candidates: Candidates,
    k: int = 4,
    scope: str = "local",
    gt_weight: float = 0.0,
    *,
    backend: str | None = None,
) -> torch.Tensor:
    """Index of the candidate patch each SR patch picks by Gram distance (not differentiable).

    ``score(c) = ||G(e_i) - G(c)||_F^2 + gt_weight * ||G(g_i) - G(c)||_F^2``, argmin, ties to the lowest
    index. ``scope="local"``: ``candidates`` is ``(B, K, C, H, W)``, aligned with ``sr``, candidate 0 the
    ground truth; the index is in ``[0, K)``. ``scope="global"``: ``candidates`` is a list of
    ``(B, C, H_j, W_j)`` images (the first the ground truth, SR-sized) and the index runs over all their
    patches, level by level, row-major.

    Returns:
        int64 ``(B, H/k, W/k)``.
    """
    k, candidates, gt_weight = _check_selection(sr, candidates, k, scope, gt_weight)
    if sr.shape[0] == 0:
        return torch.zeros(patch_grid(sr, k), dtype=torch.long, device=sr.device)
    chosen = resolve(backend, sr.device, k, sr.shape[1])
    return getattr(chosen, f"gram_select_{scope}")(sr, candidates, k, gt_weight)


def gram_texture_loss(
    sr: torch.Tensor,
    candidates: Candidates,
    k: int = 4,
    scope: str = "local",
    gt_weight: float = 0.0,
    target: str = "gram",
    criterion: str = "mse",
    reduction: str = "mean",
    *,
    backend: str | None = None,
) -> torch.Tensor:
    """The patch-wise texture loss of Gram-GAN (Eq. 4) against the candidate each patch selects.

    ``target="gram"`` compares Gram matrices (mean over the C^2 entries of each patch), ``"pixel"`` the
    patches themselves (mean over C k^2 values); ``criterion`` is ``"mse"`` (squared) or ``"l1"``.
    ``reduction="none"`` returns the per-patch loss ``(B, H/k, W/k)``; ``"mean"`` its mean and ``"sum"``
    its sum (0 for an empty batch). The gradient flows to ``sr`` only; selection and candidates are
    constants. The result is float32 (float64 for float64 input).
    """
    k, candidates, gt_weight = _check_selection(sr, candidates, k, scope, gt_weight)
    _check_loss_choices(target, criterion, reduction)
    args = (candidates, k, gt_weight, target, criterion)
    return _reduced_loss(f"texture_loss_{scope}", sr, args, k, reduction, backend)


def gram_texture_loss_sampled(
    sr: torch.Tensor,
    hr: torch.Tensor,
    hr_half: torch.Tensor,
    thetas: torch.Tensor,
    k: int = 4,
    gt_weight: float = 0.0,
    target: str = "gram",
    criterion: str = "mse",
    reduction: str = "mean",
    *,
    backend: str | None = None,
) -> torch.Tensor:
    """:func:`gram_texture_loss` with ``scope="local"`` whose candidates the kernels sample themselves.

    The candidates are those of ``gramgan.losses.candidates.build_local_candidates``, never stored:
    0 is ``hr``, 1 the half-size ``hr_half`` ``(B, C, H/2, W/2)`` re-tiled at patch level (patch (i, j) is
    its patch (i // 2, j // 2)), and 2 + j the warp of ``hr`` by ``thetas[:, j]`` (``(B, J, 2, 3)``
    affine maps; bilinear, reflection padding, ``align_corners=False``), sampled in float32 (float64 for
    float64 input). H and W must be multiples of ``2k``. Same arguments, result and gradient (to ``sr``
    only) as :func:`gram_texture_loss` otherwise (docs/ops.md).
    """
    k = V.check_patch_size(k)
    V.check_image(sr, "sr", k)
    thetas = V.check_sampled_sources(sr, hr, hr_half, thetas, k)
    gt_weight = V.check_gt_weight(gt_weight)
    _check_loss_choices(target, criterion, reduction)
    args = (hr, hr_half, thetas, k, gt_weight, target, criterion)
    return _reduced_loss("texture_loss_sampled", sr, args, k, reduction, backend)


def _check_loss_choices(target: str, criterion: str, reduction: str) -> None:
    V.check_choice("target", target, V.TARGETS)
    V.check_choice("criterion", criterion, V.CRITERIA)
    V.check_choice("reduction", reduction, V.REDUCTIONS)


def _reduced_loss(op: str, sr: torch.Tensor, args: tuple, k: int, reduction: str, backend: str | None) -> torch.Tensor:
    """The texture-loss ops' common tail: the per-patch loss ``op(sr, *args)`` of the chosen backend, reduced.

    ``args`` are checked already; an empty batch gets :func:`_empty_loss` without asking a backend.
    """
    if sr.shape[0] == 0:
        return _reduce(_empty_loss(sr, k), reduction)
    chosen = _without_tangent(resolve(backend, sr.device, k, sr.shape[1]), op, sr)
    return _reduce(getattr(chosen, op)(sr, *args), reduction)


def _empty_loss(sr: torch.Tensor, k: int) -> torch.Tensor:
    """The per-patch loss of an empty batch, kept in sr's autograd graph.

    Adding sr.sum() * 0 (a zero) lets loss.backward() run and give sr a zero gradient, as it would for
    a non-empty batch.
    """
    dtype = accumulation_dtype(sr.dtype)
    return sr.new_zeros(patch_grid(sr, k), dtype=dtype) + sr.sum().to(dtype) * 0


def _reduce(per_patch: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return per_patch
    if reduction == "sum" or per_patch.numel() == 0:
        return per_patch.sum()
    return per_patch.mean()


def downsample_half(x: torch.Tensor, *, backend: str | None = None) -> torch.Tensor:
    """MATLAB's bicubic ``imresize(x, 0.5)`` with antialiasing: the half-size image of the local candidates.

    ``x`` is ``(B, C, H, W)`` with even H and W; the result ``(B, C, H/2, W/2)`` is float32 (float64 for
    float64 input) and carries no gradient. Equal to ``gramgan.data.resize.imresize(x, scale=0.5)`` up to
    float rounding; the fused backends apply its fixed 8-tap filter directly instead of a dense matrix.
    """
    V.check_image(x, "x", 2)
    if x.shape[0] == 0:
        return x.new_zeros((0, x.shape[1], x.shape[2] // 2, x.shape[3] // 2), dtype=accumulation_dtype(x.dtype))
    return resolve(backend, x.device, 2, x.shape[1]).downsample_half(x)


def texture_mask(
    x: torch.Tensor,
    k: int = 4,
    threshold: float = 0.005,
    offset: tuple[int, int] = (0, 0),
    mode: str = "grid",
    window: int = 11,
    *,
    backend: str | None = None,
) -> torch.Tensor:
    """``M(x) = 1{std(luminance over a cell) > threshold}`` (Eq. 10), ``(B, 1, H, W)`` in x's dtype.

    ``mode="grid"``: k x k cells shifted by ``offset = (oy, ox)``; cell (i, j) covers rows
    ``[ik - oy, ik - oy + k)`` and columns likewise, clipped to the image. ``mode="sliding"``: one std
    per pixel over a ``window`` x ``window`` neighbourhood with reflect padding (Beby-GAN's variant).
    The std is unbiased (n - 1); a one-pixel cell has std 0; NaN std gives a NaN mask value.
    """
    k = V.check_patch_size(k)
    V.check_image(x, "x")
    threshold, offset = V.check_mask_args(x, k, threshold, offset, mode, window)
    if x.shape[0] == 0:
        return x.new_zeros((0, 1, *x.shape[-2:]))
    chosen = resolve(backend, x.device, k, x.shape[1])
    return chosen.texture_mask(x, k, threshold, offset[0], offset[1], mode, window)


def mask_pair(
    sr: torch.Tensor,
    hr: torch.Tensor,
    k: int = 4,
    threshold: float = 0.005,
    offset: tuple[int, int] = (0, 0),
    mode: str = "grid",
    window: int = 11,
    *,
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sr * M, hr * M)`` with ``M = texture_mask(hr, ...)``, in one pass; differentiable in ``sr``."""
    k = V.check_patch_size(k)
    V.check_image(sr, "sr")
    V.check_image(hr, "hr")
    V.check_same(sr, hr, "sr", "hr")
    if sr.shape != hr.shape:
        raise ValueError(f"sr has shape {tuple(sr.shape)} but hr has {tuple(hr.shape)}: they must match")
    threshold, offset = V.check_mask_args(hr, k, threshold, offset, mode, window)
    if sr.shape[0] == 0:
        # New tensors, as the backends return, not the inputs themselves: sr * 1 stays in sr's graph and
        # hr.detach() * 1 is a constant, like the backends' masked HR.
        return sr * 1, hr.detach() * 1
    chosen = _without_tangent(resolve(backend, sr.device, k, sr.shape[1]), "mask_pair", sr)
    return chosen.mask_pair(sr, hr, k, threshold, offset[0], offset[1], mode, window)
