"""Training and validation datasets for x``scale`` super-resolution.

* :class:`RandomCropDataset` - HR images (a folder or in-memory arrays, :mod:`gramgan.data.sources`);
  each sample is a random ``hr_crop`` square, randomly flipped / rotated, with its LR made on the fly
  (:func:`gramgan.data.lr.synthesize_lr`).
* :class:`PairedRandomCropDataset` - HR and LR folders with matching file names (the output of
  ``python -m gramgan.data.prepare``, or DIV2K's ``X4`` folders, :mod:`gramgan.data.pairing`); the same
  crop and symmetry are applied to both.
* :class:`ValidationDataset` - whole images (optionally centre-cropped), LR made as in training or
  read from a folder.

Samples are dicts ``{"lr": (3, h, w), "hr": (3, H, W), "name": str}`` of float32 in [0, 1]. A sample's
randomness comes only from its seed (:mod:`gramgan.data.sampler`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from gramgan.data.augment import apply_dihedral, random_crop_box, random_dihedral
from gramgan.data.lr import synthesize_lr
from gramgan.data.pairing import pair_folders, read_pair
from gramgan.data.sampler import SeededSampler, sample_seed, split_key
from gramgan.data.sources import ArraySource, FolderSource, ImageSource

# Old import paths, kept for callers outside gramgan.data (gramgan.train, gramgan.evaluate); new code
# imports from the modules named above and from gramgan.images.
from gramgan.images import IMAGE_EXTENSIONS, ImageReadError, list_images
from gramgan.images import read_rgb8 as read_image
from gramgan.metrics import quantize_8bit as quantize

__all__ = [
    "IMAGE_EXTENSIONS",
    "ArraySource",
    "FolderSource",
    "ImageReadError",
    "ImageSource",
    "PairedRandomCropDataset",
    "RandomCropDataset",
    "SeededSampler",
    "ValidationDataset",
    "list_images",
    "pair_folders",
    "quantize",
    "read_image",
    "sample_seed",
    "synthesize_lr",
]


def _check_crop(hr_crop: int, scale: int) -> None:
    if scale < 1 or hr_crop < scale or hr_crop % scale:
        raise ValueError(f"hr_crop ({hr_crop}) must be a positive multiple of the scale ({scale})")


class _CropDataset(Dataset):
    """What both random-crop datasets share: the crop size, the symmetries, ``repeat`` and ``seed``
    (keyword arguments of both, documented at :class:`RandomCropDataset`)."""

    def __init__(
        self,
        *,
        scale: int = 4,
        hr_crop: int = 192,
        hflip: bool = True,
        vflip: bool = True,
        rot90: bool = True,
        repeat: int = 1,
        seed: int = 0,
    ) -> None:
        _check_crop(hr_crop, scale)
        if repeat < 1:
            raise ValueError(f"repeat must be >= 1, got {repeat}")
        self.scale = scale
        self.hr_crop = hr_crop
        self.flips = (hflip, vflip, rot90)
        self.repeat = repeat
        self.seed = seed


class RandomCropDataset(_CropDataset):
    """Random ``hr_crop`` squares of HR images with their on-the-fly LR (see module docstring).

    Args:
        source: the HR images.
        scale: SR factor (LR crop = ``hr_crop // scale``).
        hr_crop: HR crop size (192 in docs/training.md).
        hflip, vflip, rot90: enable each random symmetry (probability 1/2 each) (all True).
        repeat: the dataset's length is ``repeat * len(source)`` (an epoch visits every image
            ``repeat`` times, each time with a fresh crop); useful for small image sets.
        seed: seed for samples requested by plain index (the sampler provides its own).
    """

    def __init__(self, source: ImageSource, **crop: Any) -> None:
        super().__init__(**crop)
        self.source = source

    def __len__(self) -> int:
        return len(self.source) * self.repeat

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Tensor | str]:
        index, seed = split_key(key, self.seed)
        index %= len(self.source)
        generator = torch.Generator().manual_seed(seed)
        image = self.source.load(index)
        h, w = image.shape[-2:]
        try:
            y, x = random_crop_box(h, w, self.hr_crop, generator, align=self.scale)
        except ValueError as err:
            raise ValueError(f"image {self.source.name(index)!r}: {err}") from err
        crop = image[:, y : y + self.hr_crop, x : x + self.hr_crop]
        crop = apply_dihedral(crop, random_dihedral(generator, *self.flips))
        hr = crop.float() / 255.0
        return {"lr": synthesize_lr(hr, self.scale), "hr": hr, "name": self.source.name(index)}


class PairedRandomCropDataset(_CropDataset):
    """Random aligned crops of paired HR/LR images (same symmetry applied to both).

    Args as :class:`RandomCropDataset`, with ``hr_folder`` / ``lr_folder`` matched by
    :func:`pair_folders`. HR must be exactly ``scale`` times the LR size.
    """

    def __init__(self, hr_folder: str | os.PathLike[str], lr_folder: str | os.PathLike[str], **crop: Any) -> None:
        super().__init__(**crop)
        self.pairs = pair_folders(hr_folder, lr_folder, self.scale)

    def __len__(self) -> int:
        return len(self.pairs) * self.repeat

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Tensor | str]:
        index, seed = split_key(key, self.seed)
        hr_path, lr_path = self.pairs[index % len(self.pairs)]
        generator = torch.Generator().manual_seed(seed)
        hr, lr = read_pair(hr_path, lr_path, self.scale)
        lr_crop = self.hr_crop // self.scale
        try:
            y, x = random_crop_box(lr.shape[-2], lr.shape[-1], lr_crop, generator)
        except ValueError as err:
            raise ValueError(f"LR image {lr_path}: {err}") from err
        s = self.scale
        lr = lr[:, y : y + lr_crop, x : x + lr_crop]
        hr = hr[:, y * s : (y + lr_crop) * s, x * s : (x + lr_crop) * s]
        t = random_dihedral(generator, *self.flips)
        return {
            "lr": apply_dihedral(lr, t).float() / 255.0,
            "hr": apply_dihedral(hr, t).float() / 255.0,
            "name": hr_path.stem,
        }


def _center_box(h: int, w: int, size: int | None, multiple: int) -> tuple[int, int, int, int]:
    """(y, x, height, width) of the centred crop of at most ``size`` whose sides are multiples."""
    ch = min(h, size) if size else h
    cw = min(w, size) if size else w
    ch, cw = ch - ch % multiple, cw - cw % multiple
    if ch == 0 or cw == 0:
        raise ValueError(f"image of {h}x{w} is smaller than the scale {multiple}")
    return (h - ch) // 2, (w - cw) // 2, ch, cw


class ValidationDataset(Dataset):
    """Whole images for validation: HR cropped to a multiple of ``scale`` (and to a centred
    ``crop`` x ``crop`` square at most, when ``crop`` is set), LR made by :func:`synthesize_lr`
    or, with ``lr_folder``, read from disk (paired by :func:`pair_folders`)."""

    def __init__(
        self,
        source: ImageSource | None = None,
        scale: int = 4,
        crop: int | None = None,
        hr_folder: str | os.PathLike[str] | None = None,
        lr_folder: str | os.PathLike[str] | None = None,
        max_images: int | None = None,
    ) -> None:
        if crop is not None:
            _check_crop(crop, scale)
        self.scale = scale
        self.crop = crop
        self.pairs: list[tuple[Path, Path]] | None = None
        if lr_folder is not None:
            if hr_folder is None:
                raise ValueError("a validation LR folder needs its HR folder")
            self.pairs = pair_folders(hr_folder, lr_folder, scale)
            self.source = None
        else:
            self.source = source if source is not None else FolderSource(hr_folder) if hr_folder else None
            if self.source is None:
                raise ValueError("ValidationDataset needs a source or an HR folder")
        self.size = len(self.pairs) if self.pairs is not None else len(self.source)
        if max_images is not None:
            self.size = min(self.size, max_images)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, Tensor | str]:
        if index >= self.size:
            raise IndexError(index)
        s = self.scale
        if self.pairs is not None:
            hr_path, lr_path = self.pairs[index]
            hr, lr = read_pair(hr_path, lr_path, s)
            y, x, ch, cw = _center_box(lr.shape[-2], lr.shape[-1], self.crop // s if self.crop else None, 1)
            lr = lr[:, y : y + ch, x : x + cw].float() / 255.0
            hr = hr[:, y * s : (y + ch) * s, x * s : (x + cw) * s].float() / 255.0
            return {"lr": lr, "hr": hr, "name": hr_path.stem}
        image = self.source.load(index)
        y, x, ch, cw = _center_box(image.shape[-2], image.shape[-1], self.crop, s)
        hr = image[:, y : y + ch, x : x + cw].float() / 255.0
        return {"lr": synthesize_lr(hr, s), "hr": hr, "name": self.source.name(index)}
