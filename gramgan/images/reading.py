"""The one image reader of gramgan: every command and dataset decodes image files here.

:func:`read_image` keeps what the file holds, its colour layout (RGB or grey), its alpha channel and
its bit depth (8 or 16; 16-bit PNGs of any colour type go through :mod:`gramgan.images.png16`, since
Pillow reads 16-bit colour as 8), for ``upscale`` to give back the same kind of file. :func:`read_rgb8`
gives the same pixels as 8-bit RGB, what training and evaluation work on. A file that cannot be decoded
raises :class:`ImageReadError` naming it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from gramgan.images.png16 import is_png16, read_png16

__all__ = ["ImageData", "ImageReadError", "read_image", "read_rgb8"]

_TO_RGB_MODES = ("CMYK", "YCbCr", "LAB", "HSV", "RGBX")
_PIL_CONVERSIONS = {"1": "L", "La": "LA", "RGBa": "RGBA", **{mode: "RGB" for mode in _TO_RGB_MODES}}


class ImageReadError(ValueError):
    """An image file exists but cannot be decoded; ``path`` is the file and ``reason`` what is wrong."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"cannot read image {path}: {reason}")
        self.path = Path(path)
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:  # picklable: it crosses worker processes
        return type(self), (self.path, self.reason)


@dataclass
class ImageData:
    """An image as float tensors in [0, 1].

    Attributes:
        color: ``(C, H, W)`` float32, C = 3 (RGB) or 1 (grey).
        alpha: ``(1, H, W)`` float32, or None for opaque images.
        bit_depth: bits per sample of the file it came from (8 or 16); writing uses it by default.
    """

    color: torch.Tensor
    alpha: torch.Tensor | None = None
    bit_depth: int = 8

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.color.shape[-2]), int(self.color.shape[-1])


def _decode_pil(img: Image.Image) -> tuple[np.ndarray, int]:
    """Pixels of an opened Pillow image as ``(H, W[, C])`` and their bit depth (EXIF rotation applied)."""
    img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode.startswith("I"):  # 16-bit grey from TIFF and the like
        return np.clip(np.asarray(img, dtype=np.float64), 0, 65535).astype(np.uint16), 16
    if mode == "F":
        raise ValueError("32-bit float images are not supported")
    if mode in ("P", "PA"):
        img = img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
    elif mode in _PIL_CONVERSIONS:
        img = img.convert(_PIL_CONVERSIONS[mode])
    if img.mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGB")
    return np.asarray(img), 8


def _decode(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """The file's pixels as a ``(H, W, C)`` uint8 or uint16 array (C = 1..4: grey, grey+alpha, RGB,
    RGBA) and its bit depth. Raises ``FileNotFoundError`` or :class:`ImageReadError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        if is_png16(path):
            array, depth = read_png16(path), 16
        else:
            with Image.open(path) as img:
                array, depth = _decode_pil(img)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        reason = (
            "not an image file, or an image format Pillow cannot read"
            if isinstance(err, UnidentifiedImageError)
            else str(err)
        )
        raise ImageReadError(path, reason) from err
    return (array[:, :, None] if array.ndim == 2 else array), depth


def read_image(path: str | os.PathLike[str]) -> ImageData:
    """Read an image file, keeping grey/RGB, alpha and 8/16-bit depth (EXIF rotation applied).

    Palette images become RGB (RGBA if they have transparency); CMYK, YCbCr etc. become RGB.
    Raises ``FileNotFoundError`` or :class:`ImageReadError` naming the file.
    """
    array, depth = _decode(path)
    peak = 65535.0 if depth == 16 else 255.0
    t = torch.from_numpy(np.ascontiguousarray(array.astype(np.float32) / peak)).permute(2, 0, 1)
    color, alpha = (t[:-1], t[-1:]) if t.shape[0] in (2, 4) else (t, None)
    return ImageData(color.contiguous(), None if alpha is None else alpha.contiguous(), depth)


def read_rgb8(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an image file as a ``(3, H, W)`` uint8 tensor: grey is repeated to RGB, alpha dropped, 16-bit
    rounded to 8. Raises ``FileNotFoundError`` or :class:`ImageReadError` naming the file."""
    array, depth = _decode(path)
    if array.shape[2] in (2, 4):
        array = array[:, :, :-1]
    if depth == 16:
        array = np.round(array.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return torch.from_numpy(np.require(array, requirements=["C", "W"])).permute(2, 0, 1).contiguous()
