"""Reading and writing images for inference, keeping what training's reader throws away.

``gramgan.data.datasets.read_image`` gives every image as 8-bit RGB, which is what training and
evaluation want. Upscaling a user's file should give back the same kind of file, so here an image
keeps its colour layout (RGB or grey), its alpha channel and its bit depth (8 or 16; 16-bit PNGs of
any colour type go through :mod:`gramgan.inference.png16`, since Pillow reads 16-bit colour as 8).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from gramgan.data.datasets import IMAGE_EXTENSIONS, ImageReadError
from gramgan.data.datasets import list_images as list_folder_images
from gramgan.inference.png16 import is_png16, read_png16, write_png16

__all__ = ["ImageData", "collect_images", "read_image", "write_image"]

_TO_RGB_MODES = ("CMYK", "YCbCr", "LAB", "HSV", "RGBX")
_JPEG_LIKE = (".jpg", ".jpeg")


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


def _from_hwc(array: np.ndarray, peak: float, bit_depth: int) -> ImageData:
    """Split an ``(H, W, C)`` array (C = 1..4: grey, grey+alpha, RGB, RGBA) into an ImageData."""
    if array.ndim == 2:
        array = array[:, :, None]
    t = torch.from_numpy(np.ascontiguousarray(array.astype(np.float32) / peak)).permute(2, 0, 1)
    channels = t.shape[0]
    color, alpha = (t[:-1], t[-1:]) if channels in (2, 4) else (t, None)
    return ImageData(color.contiguous(), None if alpha is None else alpha.contiguous(), bit_depth)


def read_image(path: str | os.PathLike[str]) -> ImageData:
    """Read an image file, keeping grey/RGB, alpha and 8/16-bit depth (EXIF rotation applied).

    Palette images become RGB (RGBA if they have transparency); CMYK, YCbCr etc. become RGB.
    Raises ``FileNotFoundError`` or :class:`~gramgan.data.datasets.ImageReadError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        if is_png16(path):
            return _from_hwc(read_png16(path), 65535.0, 16)
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            mode = img.mode
            if mode.startswith("I"):  # 16-bit grey from TIFF and the like
                array = np.clip(np.asarray(img, dtype=np.float64), 0, 65535)
                return _from_hwc(array, 65535.0, 16)
            if mode == "F":
                raise ImageReadError(f"cannot read image {path}: 32-bit float images are not supported")
            if mode == "P" or mode == "PA":
                img = img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
            elif mode == "1":
                img = img.convert("L")
            elif mode == "La":
                img = img.convert("LA")
            elif mode == "RGBa":
                img = img.convert("RGBA")
            elif mode in _TO_RGB_MODES:
                img = img.convert("RGB")
            if img.mode not in ("L", "LA", "RGB", "RGBA"):
                img = img.convert("RGB")
            return _from_hwc(np.asarray(img), 255.0, 8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        if isinstance(err, (FileNotFoundError, ImageReadError)):
            raise
        raise ImageReadError(f"cannot read image {path}: {err}") from err


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
    path.parent.mkdir(parents=True, exist_ok=True)
    if depth == 16:
        write_png16(path, array)
        return
    fmt = Image.registered_extensions().get(ext)
    if fmt is None:
        raise ValueError(f"unknown image format for {path}")
    pil = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            pil.save(f, format=fmt, **options)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def collect_images(inputs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Image files named by ``inputs``: files as given, folders by their images (not recursive).

    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` for a file whose extension
    is not an image's or a folder without images.
    """
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(list_folder_images(path))
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                raise ValueError(f"{path} is not an image file (known: {', '.join(IMAGE_EXTENSIONS)})")
            files.append(path)
        else:
            raise FileNotFoundError(f"input not found: {path}")
    return files
