"""Which files are images: the extensions gramgan reads, a folder's images, the images named on a command line."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["IMAGE_EXTENSIONS", "collect_images", "list_images"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly inside ``folder`` (by extension), sorted by name.

    Raises ``FileNotFoundError`` if the folder does not exist and ``ValueError`` if it has no images.
    """
    path = Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(f"image folder not found: {path}")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {path}")
    return files


def collect_images(inputs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Image files named by ``inputs``: files as given, folders by their images (not recursive).

    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` for a file whose extension
    is not an image's or a folder without images.
    """
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(list_images(path))
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                raise ValueError(f"{path} is not an image file (known: {', '.join(IMAGE_EXTENSIONS)})")
            files.append(path)
        else:
            raise FileNotFoundError(f"input not found: {path}")
    return files
