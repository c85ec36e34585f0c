"""The LR image of a training pair: MATLAB-style bicubic down by the scale, clamped and rounded to 8 bits,
the way a saved LR PNG would be (see ``docs/training.md``)."""

from __future__ import annotations

from torch import Tensor

from gramgan.data.resize import imresize
from gramgan.metrics import quantize_8bit

__all__ = ["synthesize_lr"]


def synthesize_lr(hr: Tensor, scale: int) -> Tensor:
    """``imresize(hr, 1/scale)`` (antialiased bicubic), clamped and rounded to 8 bits. ``hr`` is float
    ``(C, H, W)`` or ``(B, C, H, W)`` with H, W multiples of ``scale``."""
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"HR size {h}x{w} is not a multiple of the scale {scale}")
    return quantize_8bit(imresize(hr, size=(h // scale, w // scale)))
