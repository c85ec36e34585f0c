"""Super-resolving a batch of images with a loaded generator: device, precision, padding, tiling."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gramgan.inference.tiling import run_padded, run_tiled

__all__ = ["input_multiple", "pick_device", "super_resolve"]

# RRDBNet pixel-unshuffles its input by this factor for scale 2 and 1, so H and W must divide by it.
_MULTIPLE = {4: 1, 2: 2, 1: 4}


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; any other string is a torch device name."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {name!r}: {err}") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


def input_multiple(scale: int) -> int:
    """What H and W of an RRDBNet input must be multiples of, for a model of this scale."""
    return _MULTIPLE.get(scale, 1)


@torch.inference_mode()
def super_resolve(model: nn.Module, lr: Tensor, *, scale: int, tile: int = 0, tile_overlap: int = 16) -> Tensor:
    """Run ``model`` (×``scale``) on ``lr`` ``(B, C, h, w)`` float in [0, 1]; returns float32
    ``(B, C', h·scale, w·scale)`` on ``lr``'s device, not clamped.

    The input is cast to the model's device and dtype (so a half-precision model runs in half),
    padded as the model needs, and cut into tiles when ``tile > 0`` (see
    :func:`gramgan.inference.tiling.run_tiled`).
    """
    if lr.dim() != 4:
        raise ValueError(f"super_resolve expects (B, C, h, w), got {tuple(lr.shape)}")
    param = next(model.parameters())

    def forward(x: Tensor) -> Tensor:
        return model(x.to(device=param.device, dtype=param.dtype)).float()

    def padded(x: Tensor) -> Tensor:
        return run_padded(forward, x, scale, input_multiple(scale))

    if tile > 0:
        return run_tiled(padded, lr, scale, tile, tile_overlap, out_device=lr.device)
    return padded(lr).to(lr.device)
