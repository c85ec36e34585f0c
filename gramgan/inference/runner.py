"""Super-resolving a batch of images with a loaded generator: precision, padding, tiling."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gramgan.inference.tiling import run_padded, run_tiled

__all__ = ["MIN_INPUT_SIZE", "input_multiple", "super_resolve"]

# RRDBNet pixel-unshuffles its input by this factor for scale 2 and 1, so H and W must divide by it.
_MULTIPLE = {4: 1, 2: 2, 1: 4}
# Images smaller than this (either side, LR pixels) are mirror-padded to it and cropped back, so the
# network's zero padding stays out of the picture (a 10x10 image would get dark, tinted borders).
MIN_INPUT_SIZE = 64


def input_multiple(scale: int) -> int:
    """What H and W of an RRDBNet input must be multiples of, for a model of this scale."""
    return _MULTIPLE.get(scale, 1)


@torch.inference_mode()
def super_resolve(model: nn.Module, lr: Tensor, *, scale: int, tile: int = 0, tile_overlap: int = 16) -> Tensor:
    """Run ``model`` (×``scale``) on ``lr`` ``(B, C, h, w)`` float in [0, 1]; returns float32
    ``(B, C', h·scale, w·scale)`` on ``lr``'s device, not clamped.

    The input is cast to the model's device and dtype (so a half-precision model runs in half),
    mirror-padded to at least :data:`MIN_INPUT_SIZE` and to the multiple the model needs (output
    cropped back), and cut into tiles when ``tile > 0`` (see
    :func:`gramgan.inference.tiling.run_tiled`).
    """
    if lr.dim() != 4:
        raise ValueError(f"super_resolve expects (B, C, h, w), got {tuple(lr.shape)}")
    if min(lr.shape[-2:]) < 1:
        raise ValueError(f"super_resolve needs at least a 1x1 image, got {tuple(lr.shape)}")
    param = next(model.parameters())

    def forward(x: Tensor) -> Tensor:
        return model(x.to(device=param.device, dtype=param.dtype)).float()

    def padded(x: Tensor) -> Tensor:
        return run_padded(forward, x, scale, input_multiple(scale))

    def whole(x: Tensor) -> Tensor:
        if tile > 0:
            return run_tiled(padded, x, scale, tile, tile_overlap, out_device=lr.device)
        return padded(x)

    return run_padded(whole, lr, scale, min_size=MIN_INPUT_SIZE).to(lr.device)
