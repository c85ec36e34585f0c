"""The patch-wise texture loss (Eq. 4) against a candidate database built from the HR batch (docs/candidates.md).

The candidates are those of :mod:`gramgan.losses.candidates`. In the local scope (the default) they are
never stored: the fused op :func:`gramgan.ops.gram_texture_loss_sampled` samples the warps from HR and
the affine maps inside its kernels, and reads the half-size image re-tiled; ``materialize=True`` builds
the ``(B, 2 + J, C, H, W)`` stack first and calls :func:`gramgan.ops.gram_texture_loss` (the reference
path: same selection, loss and gradient to float tolerance). The global scope always builds its list.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gramgan import ops
from gramgan._deprecation import renamed_keyword
from gramgan.losses.candidates import (
    autocast_off,
    build_global_candidates,
    build_local_candidates,
    downsample_half,
    random_affine_thetas,
)
from gramgan.ops._validate import SCOPES  # the ops' own list of scopes

__all__ = ["build_candidates", "texture_loss"]


@renamed_keyword("num_warps", "num_affine_warps")
def build_candidates(
    hr: Tensor,
    scope: str = "local",
    num_affine_warps: int = 4,
    magnitude: float = 0.003,
    patch_size: int = 4,
    *,
    clamp: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor | list[Tensor]:
    """The candidate database of ``scope``: a ``(B, 2 + J, C, H, W)`` stack (local) or a list (global).

    ``clamp`` clips the bicubic-downsampled candidates to [0, 1] (ours: bicubic overshoots).
    """
    if scope == "local":
        return build_local_candidates(hr, num_affine_warps, magnitude, patch_size, clamp=clamp, generator=generator)
    if scope == "global":
        return build_global_candidates(hr, num_affine_warps, magnitude, patch_size, clamp=clamp, generator=generator)
    raise ValueError(f"unknown texture scope {scope!r}: expected one of {', '.join(map(repr, SCOPES))}")


@renamed_keyword("num_warps", "num_affine_warps")
def texture_loss(
    sr: Tensor,
    hr: Tensor,
    scope: str = "local",
    num_affine_warps: int = 4,
    magnitude: float = 0.003,
    patch_size: int = 4,
    gt_weight: float = 0.0,
    target: str = "gram",
    criterion: str = "mse",
    *,
    clamp: bool = True,
    generator: torch.Generator | None = None,
    backend: str | None = None,
    materialize: bool = False,
) -> Tensor:
    """Build the candidates from ``hr`` (random warps: one draw of the RNG) and return the texture loss
    against them, the mean over patches; gradient to ``sr`` only.

    Local scope: the kernels sample the candidates from ``hr``, its half-size image and the affine maps
    unless ``materialize`` (then the stack is built and passed to ``gram_texture_loss``); both draw the
    same maps from the same RNG state. The candidates are cast to ``sr``'s dtype (the op needs them to
    match); autocast is switched off around the op.
    """
    # Autocast off: the op accumulates in float32 itself (docs/ops.md); autocast would run the reference
    # backend's einsum in bf16/fp16 and blur Gram differences of order 1e-3.
    no_autocast = autocast_off(sr)
    options = {"k": patch_size, "gt_weight": gt_weight, "target": target, "criterion": criterion}
    if scope == "local" and not materialize:
        half = downsample_half(hr, clamp, backend).to(sr.dtype)
        thetas = random_affine_thetas(hr.shape[0], num_affine_warps, magnitude, generator=generator, device=hr.device)
        with no_autocast:
            return ops.gram_texture_loss_sampled(sr, hr.detach().to(sr.dtype), half, thetas, **options, backend=backend)
    candidates = build_candidates(hr, scope, num_affine_warps, magnitude, patch_size, clamp=clamp, generator=generator)
    if isinstance(candidates, Tensor):
        candidates = candidates.to(sr.dtype)
    else:
        candidates = [c.to(sr.dtype) for c in candidates]
    with no_autocast:
        return ops.gram_texture_loss(sr, candidates, scope=scope, **options, backend=backend)
