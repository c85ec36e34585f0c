"""Writing an :class:`~gramgan.images.reading.ImageData` to a file, atomically, at 8 or 16 bits."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gramgan.atomic import atomic_path
from gramgan.images.png16 import write_png16
from gramgan.images.reading import ImageData

__all__ = ["write_image"]

_JPEG_LIKE = (".jpg", ".jpeg")


def _quantize(t: torch.Tensor, bit_depth: int) -> np.ndarray:
    peak = 65535.0 if bit_depth == 16 else 255.0
    array = torch.round(t.detach().float().clamp(0.0, 1.0) * peak).to(torch.int32).cpu().numpy()
    return array.astype(np.uint16 if bit_depth == 16 else np.uint8)


def write_image(path: str | os.PathLike[str], image: ImageData, bit_depth: int | None = None) -> None:
    """Write ``image`` to ``path`` atomically; the format follows the file extension.

    ``bit_depth`` (default: the image's) is 8 or 16; 16 bits need a ``.png`` path, and an alpha
    channel needs a format that stores one (not JPEG). Values are clamped to [0, 1] and rounded.
    """
    path = Path(path)
    depth = image.bit_depth if bit_depth is None else bit_depth
    if depth not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, got {depth}")
    ext = path.suffix.lower()
    if depth == 16 and ext != ".png":
        raise ValueError(f"16-bit output needs a .png file, got {path}")
    if image.alpha is not None and ext in _JPEG_LIKE:
        raise ValueError(f"{path}: JPEG cannot store the alpha channel; write a .png instead")
    if image.color.dim() != 3 or image.color.shape[0] not in (1, 3):
        raise ValueError(f"image colour must be (1 or 3, H, W), got {tuple(image.color.shape)}")
    planes = image.color if image.alpha is None else torch.cat([image.color, image.alpha], dim=0)
    array = _quantize(planes, depth).transpose(1, 2, 0)
    if depth == 16:
        write_png16(path, array)
        return
    fmt = Image.registered_extensions().get(ext)
    if fmt is None:
        raise ValueError(f"unknown image format for {path}")
    pil = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        pil.save(handle, format=fmt, **options)
