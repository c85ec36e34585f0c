"""Launchers of the ``gramgan_triton`` sampled texture loss (docs/ops.md, "Sampled candidates").

The body of ``texture_loss_sampled`` (its backward is the local residual one), registered by ``gramgan.ops._triton``;
the kernels are ``gramgan.kernels.texture_loss_sampled``. Imports triton: ``_triton`` imports this module
inside its guarded import block.
"""

import functools

import torch
from torch._subclasses.fake_tensor import is_fake
from torch.library import wrap_triton

from gramgan.kernels.texture_loss_sampled import sampled_select_kernel
from gramgan.ops._contract import accumulation_dtype, patch_grid, residual_shape
from gramgan.ops._triton_launch import device_guard, patch_constexprs, patches_grid


def _sources(sr: torch.Tensor, hr: torch.Tensor, hr_half: torch.Tensor, thetas: torch.Tensor) -> tuple:
    """The leading kernel arguments: SR, HR and the half-size image with their strides, the maps, and
    ``affine_grid``'s base grid (:func:`base_grid`).

    The maps are read as a contiguous (B, J, 2, 3) block in the accumulation dtype (what validation
    already hands over).
    """
    acc = accumulation_dtype(sr.dtype)
    thetas = thetas.to(acc).contiguous()
    if torch.compiler.is_compiling() or is_fake(sr):  # traced: the grid's ops go into the graph
        grid = _build_base_grid(sr.shape[-1], sr.shape[-2], acc, sr.device)
    else:
        grid = base_grid(sr.shape[-1], sr.shape[-2], acc, sr.device)
    return (sr, *sr.stride(), hr, *hr.stride(), hr_half, *hr_half.stride(), thetas, grid)


@functools.lru_cache(maxsize=64)
def base_grid(w: int, h: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``affine_grid``'s base grid of a w x h image, its w column then h row coordinates, built once per
    size, dtype and device: otherwise every training step would launch seven small kernels for it.

    A new grid is waited for before it is shared, so a launch on another stream never reads it unwritten.
    """
    grid = _build_base_grid(w, h, dtype, device)
    if grid.is_cuda:
        torch.cuda.current_stream(grid.device).synchronize()
    return grid


def _build_base_grid(w: int, h: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.cat([base_coordinates(n, dtype, device) for n in (w, h)])


def base_coordinates(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The normalised pixel-centre coordinates of ``affine_grid(align_corners=False)`` along a side of n,
    computed by the very ops ``affine_grid`` runs."""
    return torch.linspace(-1, 1, n, dtype=dtype, device=device).mul(n - 1).div(n)


def _sizes(sr: torch.Tensor, thetas: torch.Tensor, k: int) -> tuple[int, int, int, int, int, int]:
    """(patches in all, patches per image, patches per row, J, H, W)."""
    b, _, h, w = sr.shape
    n = (h // k) * (w // k)
    return b * n, n, w // k, thetas.shape[1], h, w


def texture_loss_sampled(
    sr: torch.Tensor, hr: torch.Tensor, hr_half: torch.Tensor, thetas: torch.Tensor,
    k: int, gt_weight: float, target: str, criterion: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """Per-patch loss, chosen index (int64) and residual (``residual_shape``); one launch.

    Loss and residual are in the accumulation dtype.
    """
    index = torch.empty(patch_grid(sr, k), dtype=torch.int64, device=sr.device)
    loss = torch.empty(patch_grid(sr, k), dtype=accumulation_dtype(sr.dtype), device=sr.device)
    residual = torch.empty(residual_shape(sr, k, target), dtype=loss.dtype, device=sr.device)
    sizes = _sizes(sr, thetas, k)
    with device_guard(sr):
        wrap_triton(sampled_select_kernel)[patches_grid(sizes[0])](
            *_sources(sr, hr, hr_half, thetas), index, loss, residual, *sizes, gt_weight,
            USE_GT=gt_weight != 0.0, TARGET_GRAM=target == "gram", L1=criterion == "l1", **patch_constexprs(sr, k),
        )  # fmt: skip
    return loss, index, residual


# The ops this module implements, for ``gramgan.ops._triton``'s registration.
KERNELS = {
    "texture_loss_sampled": texture_loss_sampled,
}
