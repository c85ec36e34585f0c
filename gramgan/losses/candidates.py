"""The candidate database of the texture loss (docs/candidates.md), built fresh from every HR batch.

Local scope (the default) stacks ``K = 2 + J`` images aligned with the SR image, so that SR patch
(i, j) chooses among patch (i, j) of each:

0. the HR image;
1. the HR image downsampled x2 (MATLAB-style bicubic with antialiasing, ours) and re-tiled at patch
   level: candidate patch (i, j) holds exactly the pixels of patch (i // 2, j // 2) of the half-size
   image, the k x k patch covering the same region at half the resolution (ours). This is not a
   pixel upsampling: each small patch is repeated into a 2 x 2 block of patch positions;
2. ... J + 1. the HR image warped by a random affine map ``theta = [I | 0] + U(-m, m)`` (2 x 3,
   elementwise, normalised coordinates), drawn independently per image and per warp, applied to the
   whole image with ``affine_grid(align_corners=False)`` and bilinear ``grid_sample`` with reflection
   padding (whole image, ours: on a 4 x 4 patch a 0.003 warp would be the identity).

Global scope (Beby-GAN style) is the list ``[HR, HR↓2, HR↓4, warp_1, ..., warp_J]``.

Conventions (ours): everything is computed without gradient in float32 (autocast off) and returned
in HR's dtype; the downsampled images are clamped to [0, 1] like any synthesised image (bicubic
overshoots slightly near edges; the HR and the warps, bilinear, never leave the HR's range). Random draws come from
torch's global CPU RNG unless a ``generator`` (a CPU ``torch.Generator``) is given, so a run is
reproducible from ``torch.manual_seed`` whatever the device.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor

from gramgan import ops
from gramgan._deprecation import renamed_keyword
from gramgan.data.resize import imresize
from gramgan.ops import reference

__all__ = [
    "build_global_candidates",
    "build_local_candidates",
    "downsample_half",
    "downsample_retiled",
    "random_affine_thetas",
    "warp_images",
]


def autocast_off(x: Tensor) -> contextlib.AbstractContextManager:
    """Autocast off for ``x``'s device (nothing to do, and nothing done, where it is not on): the database
    and the texture loss are computed in float32 even inside an autocast region."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.autocast(device_type=x.device.type, enabled=False)
    return contextlib.nullcontext()


def _check_hr(hr: object) -> Tensor:
    if not isinstance(hr, Tensor):
        raise TypeError(f"hr must be a torch.Tensor, got {type(hr).__name__}")
    if hr.dim() != 4:
        raise ValueError(f"hr must have shape (B, C, H, W), got shape {tuple(hr.shape)}")
    if not hr.is_floating_point():
        raise TypeError(f"hr must be a floating tensor, got {hr.dtype}")
    return hr


def _check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _check_magnitude(magnitude: object) -> float:
    if isinstance(magnitude, bool) or not isinstance(magnitude, (int, float)):
        raise TypeError(f"magnitude must be a number, got {type(magnitude).__name__}")
    if not 0 <= float(magnitude) < float("inf"):
        raise ValueError(f"magnitude must be finite and >= 0, got {magnitude}")
    return float(magnitude)


def _check_divisible(hr: Tensor, multiple: int, why: str) -> None:
    h, w = hr.shape[-2:]
    if h % multiple or w % multiple or h == 0 or w == 0:
        raise ValueError(f"hr has shape {tuple(hr.shape)}: H and W must be positive multiples of {multiple} ({why})")


_IDENTITY_MAP = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)


@renamed_keyword("num_warps", "num_affine_warps")
def random_affine_thetas(
    batch: int,
    num_affine_warps: int,
    magnitude: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Random affine maps ``[I | 0] + U(-m, m)`` (elementwise), one per image and warp.

    Returns ``(batch, num_affine_warps, 2, 3)``; every entry differs from ``[[1, 0, 0], [0, 1, 0]]`` by at
    most ``magnitude``. Drawn on the CPU (global RNG or ``generator``), so the draw is the same whatever
    the device, then moved to ``device`` (see :func:`_to_device`).
    """
    _check_positive_int("batch", batch, 0)
    _check_positive_int("num_affine_warps", num_affine_warps, 0)
    magnitude = _check_magnitude(magnitude)
    thetas = torch.rand(batch, num_affine_warps, 2, 3, generator=generator, dtype=torch.float64)
    # U(-m, m) + [I | 0] in place, three ops (this runs every training step); u - 0.5 and 2m are exact in
    # float64, so this is (2u - 1) m rounded once, as before
    thetas.sub_(0.5).mul_(2.0 * magnitude).add_(_IDENTITY_MAP)
    return _to_device(thetas.to(dtype), device)


def _to_device(host: Tensor, device: torch.device | str | None) -> Tensor:
    """``host`` on ``device``; to a CUDA device through pinned memory with ``non_blocking=True``.

    A plain copy from pageable memory synchronises the stream: the host would wait, every training step,
    for all the GPU work queued before the loss (G's forward) instead of queueing the rest of the step.
    The pinned copy is queued in order on the current stream, so the kernels that read it see it done."""
    if device is not None and torch.device(device).type == "cuda":
        return host.pin_memory().to(device, non_blocking=True)
    return host.to(device)


def warp_images(hr: Tensor, thetas: Tensor) -> Tensor:
    """Warp every image by each of its maps: ``hr`` (B, C, H, W), ``thetas`` (B, J, 2, 3) -> (B, J, C, H, W).

    Bilinear ``grid_sample`` with reflection padding, ``align_corners=False``; float32 inside.
    """
    hr = _check_hr(hr)
    b, c, h, w = hr.shape
    if thetas.dim() != 4 or thetas.shape[0] != b or thetas.shape[-2:] != (2, 3):
        raise ValueError(
            f"thetas must have shape ({b}, J, 2, 3) for hr of shape {tuple(hr.shape)}, got {tuple(thetas.shape)}"
        )
    with torch.no_grad(), autocast_off(hr):
        warped = reference.warp(hr.detach().float(), thetas.to(hr.device, torch.float32))
    return warped.to(hr.dtype)


def _random_warps(hr: Tensor, num_affine_warps: int, magnitude: float, generator: torch.Generator | None) -> Tensor:
    """The warp candidates of both databases: ``hr`` warped by fresh :func:`random_affine_thetas`, (B, J, C, H, W)."""
    thetas = random_affine_thetas(hr.shape[0], num_affine_warps, magnitude, generator=generator, device=hr.device)
    return warp_images(hr, thetas)


def _downsample(hr: Tensor, scale: float, clamp: bool) -> Tensor:
    """MATLAB-style bicubic resize with antialiasing, float32, no grad, clamped to [0, 1] if asked."""
    with torch.no_grad(), autocast_off(hr):
        small = imresize(hr.detach().float(), scale=scale, antialias=True)
        return small.clamp_(0.0, 1.0) if clamp else small


def downsample_half(hr: Tensor, clamp: bool = True, backend: str | None = None) -> Tensor:
    """HR↓2, ``imresize(hr, 0.5)`` (MATLAB bicubic, antialiased), clamped to [0, 1] when ``clamp``.

    Float32 ``(B, C, H/2, W/2)`` for even H and W: the source of candidate 1, which the sampling
    kernels re-tile themselves (:func:`gramgan.ops.gram_texture_loss_sampled`). Computed by
    :func:`gramgan.ops.downsample_half` (its fixed 8-tap filter; ``backend`` as for every op).
    """
    hr = _check_hr(hr)
    _check_divisible(hr, 2, "the x2 candidate halves the image")
    with torch.no_grad(), autocast_off(hr):
        small = ops.downsample_half(hr.detach(), backend=backend).float()
        return small.clamp_(0.0, 1.0) if clamp else small


def downsample_retiled(hr: Tensor, patch_size: int = 4, clamp: bool = True) -> Tensor:
    """Candidate 1 of the local database: HR↓2, each k x k patch repeated into a 2 x 2 block of patches.

    Patch (i, j) of the result equals patch (i // 2, j // 2) of ``imresize(hr, 0.5)`` (clamped to
    [0, 1] when ``clamp``). Needs H and W to be multiples of 2k. Returns (B, C, H, W) in HR's dtype.
    """
    hr = _check_hr(hr)
    k = _check_positive_int("patch_size", patch_size)
    _check_divisible(hr, 2 * k, f"the x2 candidate is re-tiled in patches of {k}, so 2 x patch_size")
    return reference.retile_half(downsample_half(hr, clamp), k).to(hr.dtype)


@renamed_keyword("num_warps", "num_affine_warps")
def build_local_candidates(
    hr: Tensor,
    num_affine_warps: int = 4,
    magnitude: float = 0.003,
    patch_size: int = 4,
    *,
    clamp: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The local candidate stack ``(B, 2 + J, C, H, W)``: [HR, HR↓2 re-tiled, J warps] (docs/candidates.md).

    Args:
        hr: ground truth ``(B, C, H, W)``, H and W multiples of ``2 * patch_size``.
        num_affine_warps: J, random affine warps per image (4, ours).
        magnitude: m, the bound of the affine perturbation (0.003, the paper's).
        patch_size: k, the texture loss's patch size (4).
        clamp: clamp the downsampled candidate to [0, 1] (True, ours).
        generator: CPU generator for the warps; None uses torch's global RNG.

    Not differentiable (built under ``no_grad``); returned in HR's dtype on HR's device.
    """
    hr = _check_hr(hr)
    retiled = downsample_retiled(hr, patch_size, clamp)
    warps = _random_warps(hr, num_affine_warps, magnitude, generator)
    return torch.cat([hr.detach().unsqueeze(1), retiled.unsqueeze(1), warps], dim=1)


@renamed_keyword("num_warps", "num_affine_warps")
def build_global_candidates(
    hr: Tensor,
    num_affine_warps: int = 4,
    magnitude: float = 0.003,
    patch_size: int = 4,
    *,
    clamp: bool = True,
    generator: torch.Generator | None = None,
) -> list[Tensor]:
    """The global candidate list ``[HR, HR↓2, HR↓4, warp_1, ..., warp_J]`` of ``(B, C, h, w)`` images.

    HR must have H and W multiples of ``patch_size``. The downsampled levels are
    ``imresize(hr, 1/2)`` and ``imresize(hr, 1/4)`` of the whole image, then cropped at the bottom
    and right to the largest multiple of ``patch_size`` (the global search needs whole patches, not
    alignment); a level smaller than one patch is a ``ValueError``. Arguments as
    :func:`build_local_candidates`.
    """
    hr = _check_hr(hr)
    k = _check_positive_int("patch_size", patch_size)
    _check_divisible(hr, k, "the global candidates are searched in whole patches")
    levels = []
    for factor in (2, 4):
        small = _downsample(hr, 1.0 / factor, clamp)
        h, w = (small.shape[-2] // k) * k, (small.shape[-1] // k) * k
        if h == 0 or w == 0:
            raise ValueError(
                f"hr of shape {tuple(hr.shape)} is too small for the x{factor} global candidate: "
                f"it must be at least {factor * k} pixels on each side"
            )
        levels.append(small[..., :h, :w].to(hr.dtype))
    warps = _random_warps(hr, num_affine_warps, magnitude, generator)
    return [hr.detach(), *levels, *warps.unbind(dim=1)]
