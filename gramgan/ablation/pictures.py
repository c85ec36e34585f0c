"""One labelled picture per test image: the same crop of bicubic, every variant and HR, side by side.

The crop is the ``picture_crop``-pixel square of HR with the most luminance variation (searched on a
half-crop grid), where texture differences show; it is magnified ``picture_zoom`` times by nearest
neighbour so single pixels stay visible. Each tile is labelled with its name and PSNR-Y.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torch import Tensor

from gramgan.atomic import atomic_write_bytes
from gramgan.data.datasets import read_image

__all__ = ["Column", "busiest_crop", "compose_picture", "write_picture"]

_LABEL_HEIGHT = 30
_GAP = 4


@dataclass(frozen=True)
class Column:
    """One tile of a picture: a label, an optional second line (e.g. the PSNR) and the image file."""

    label: str
    detail: str
    image: Path


def busiest_crop(hr: Tensor, size: int) -> tuple[int, int, int]:
    """``(top, left, side)`` of the square of side ``size`` (clipped to the image) whose luminance
    has the largest standard deviation, on a grid of stride ``size // 2``."""
    h, w = hr.shape[-2:]
    side = min(size, h, w)
    luma = (hr.float() * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0)
    stride = max(side // 2, 1)
    best = (-1.0, 0, 0)
    for top in sorted({*range(0, h - side + 1, stride), h - side}):
        for left in sorted({*range(0, w - side + 1, stride), w - side}):
            std = float(luma[top : top + side, left : left + side].std()) if side > 1 else 0.0
            if std > best[0]:
                best = (std, top, left)
    return best[1], best[2], side


def _tile(path: Path, box: tuple[int, int, int], zoom: int) -> Image.Image:
    top, left, side = box
    image = read_image(path)[:, top : top + side, left : left + side]
    tile = Image.fromarray(image.permute(1, 2, 0).contiguous().numpy())
    return tile.resize((side * zoom, side * zoom), Image.NEAREST)


def compose_picture(columns: list[Column], box: tuple[int, int, int], zoom: int) -> Image.Image:
    """The tiles in one row, each under its label (PIL's default font)."""
    tiles = [_tile(column.image, box, zoom) for column in columns]
    side = box[2] * zoom
    canvas = Image.new("RGB", (len(tiles) * (side + _GAP) + _GAP, side + _LABEL_HEIGHT + _GAP), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (column, tile) in enumerate(zip(columns, tiles, strict=True)):
        x = _GAP + i * (side + _GAP)
        draw.text((x + 2, 2), column.label, fill="black")
        if column.detail:
            draw.text((x + 2, 15), column.detail, fill=(90, 90, 90))
        canvas.paste(tile, (x, _LABEL_HEIGHT))
    return canvas


def write_picture(path: Path, columns: list[Column], hr_image: Path, crop: int, zoom: int) -> tuple[int, int, int]:
    """Compose the picture for one test image (crop chosen on ``hr_image``) and write it atomically as PNG.

    The crop lies inside the first column's image (SR images can be a few pixels smaller than HR,
    which is cropped to a multiple of the scale). Returns the crop ``(top, left, side)``."""
    height, width = read_image(columns[0].image).shape[-2:]
    box = busiest_crop(read_image(hr_image)[:, :height, :width], crop)
    buffer = io.BytesIO()
    compose_picture(columns, box, zoom).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return box
