"""Where HR training images come from: a folder (decoded on access) or arrays in memory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gramgan.images import list_images, read_rgb8

__all__ = ["ArraySource", "FolderSource", "ImageSource"]


class ImageSource:
    """A list of named images that can be loaded by index as ``(3, H, W)`` uint8 tensors."""

    def __len__(self) -> int:
        raise NotImplementedError

    def name(self, index: int) -> str:
        raise NotImplementedError

    def load(self, index: int) -> Tensor:
        raise NotImplementedError


class FolderSource(ImageSource):
    """The images of a folder (see :func:`gramgan.images.list_images`), decoded on each access unless
    ``cache``."""

    def __init__(self, folder: str | os.PathLike[str], cache: bool = False) -> None:
        self.folder = Path(folder)
        self.paths = list_images(folder)
        self.cache = cache
        self._cache: dict[int, Tensor] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def name(self, index: int) -> str:
        return self.paths[index].stem

    def load(self, index: int) -> Tensor:
        if index in self._cache:
            return self._cache[index]
        image = read_rgb8(self.paths[index])
        if self.cache:
            self._cache[index] = image
        return image


class ArraySource(ImageSource):
    """In-memory images: a mapping name -> ``(H, W, 3)`` uint8 array (e.g. the built-in samples)."""

    def __init__(self, images: Mapping[str, np.ndarray]) -> None:
        if not images:
            raise ValueError("ArraySource needs at least one image")
        self.names = list(images)
        self.images = []
        for name, array in images.items():
            array = np.asarray(array)
            if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
                raise ValueError(f"image {name!r}: expected (H, W, 3) uint8, got {array.shape} {array.dtype}")
            self.images.append(torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous())

    def __len__(self) -> int:
        return len(self.images)

    def name(self, index: int) -> str:
        return self.names[index]

    def load(self, index: int) -> Tensor:
        return self.images[index]
