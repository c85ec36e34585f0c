"""Training and validation datasets for x``scale`` super-resolution.

* :class:`RandomCropDataset` - HR images (a folder or in-memory arrays); each sample is a random
  ``hr_crop`` square, randomly flipped / rotated, with its LR made on the fly by MATLAB-style bicubic
  (:func:`synthesize_lr`: ``imresize(hr, 1/scale)``, clamped to [0, 1], rounded to 8 bits, the way a
  saved LR PNG would be).
* :class:`PairedRandomCropDataset` - HR and LR folders with matching file names (the output of
  ``python -m gramgan.data.prepare``, or DIV2K's ``X4`` folders); the same crop and symmetry are
  applied to both.
* :class:`ValidationDataset` - whole images (optionally centre-cropped), LR made as in training or
  read from a folder.

Samples are dicts ``{"lr": (3, h, w), "hr": (3, H, W), "name": str}`` of float32 in [0, 1].

Reproducibility: a sample's randomness comes only from its *sample seed*. :class:`SeededSampler`
(a ``DistributedSampler``) yields ``(index, seed)`` pairs, the seed a hash of (run seed, epoch,
position in the epoch), and can start mid-epoch; so a resumed run sees exactly the batches an
uninterrupted one would, whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler

from gramgan.data.augment import apply_dihedral, random_crop_box, random_dihedral

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
    "quantize",
    "read_image",
    "sample_seed",
    "synthesize_lr",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


class ImageReadError(OSError):
    """An image file exists but cannot be decoded; the message names the file."""


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


def read_image(path: str | os.PathLike[str]) -> Tensor:
    """Decode an image file to a ``(3, H, W)`` uint8 tensor (grey, palette and alpha images are
    converted to RGB). Raises ``FileNotFoundError`` or :class:`ImageReadError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(img, dtype=np.float64)
                peak = 65535.0 if array.max() > 255 else 255.0
                array = np.round(array / peak * 255.0).astype(np.uint8)
                array = np.repeat(array[..., None], 3, axis=2)
            else:
                array = np.array(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ImageReadError(f"cannot read image {path}: {err}") from err
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous()


def quantize(x: Tensor) -> Tensor:
    """Clamp to [0, 1] and round to the nearest of the 256 8-bit levels."""
    return torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0


def synthesize_lr(hr: Tensor, scale: int) -> Tensor:
    """LR image of SPEC §5: MATLAB-style bicubic ``imresize(hr, 1/scale)`` (antialiased), clamped
    and rounded to 8 bits. ``hr`` is float ``(C, H, W)`` or ``(B, C, H, W)`` with H, W multiples of
    ``scale``."""
    from gramgan.data.resize import imresize  # local: keeps this module importable on its own

    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"HR size {h}x{w} is not a multiple of the scale {scale}")
    return quantize(imresize(hr, size=(h // scale, w // scale)))


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """A 63-bit seed for one sample, a hash of (run seed, epoch, position): stable across
    processes and Python versions, unlike ``hash()``."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{position}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


class ImageSource:
    """A list of named images that can be loaded by index as ``(3, H, W)`` uint8 tensors."""

    def __len__(self) -> int:
        raise NotImplementedError

    def name(self, index: int) -> str:
        raise NotImplementedError

    def load(self, index: int) -> Tensor:
        raise NotImplementedError


class FolderSource(ImageSource):
    """The images of a folder (see :func:`list_images`), decoded on each access unless ``cache``."""

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
        image = read_image(self.paths[index])
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


def _split_key(key: int | tuple[int, int], seed: int) -> tuple[int, int]:
    """A dataset key is an index, or ``(index, sample_seed)`` from :class:`SeededSampler`."""
    if isinstance(key, (tuple, list)):
        return int(key[0]), int(key[1])
    return int(key), sample_seed(seed, -1, int(key))


def _check_crop(hr_crop: int, scale: int) -> None:
    if scale < 1 or hr_crop < scale or hr_crop % scale:
        raise ValueError(f"hr_crop ({hr_crop}) must be a positive multiple of the scale ({scale})")


class _CropDataset(Dataset):
    """What both random-crop datasets share: the crop size, the symmetries, ``repeat`` and ``seed``."""

    def __init__(self, scale: int, hr_crop: int, hflip: bool, vflip: bool, rot90: bool, repeat: int, seed: int) -> None:
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
        hr_crop: HR crop size (192 in SPEC §5).
        hflip, vflip, rot90: enable each random symmetry (probability 1/2 each).
        repeat: the dataset's length is ``repeat * len(source)`` (an epoch visits every image
            ``repeat`` times, each time with a fresh crop); useful for small image sets.
        seed: seed for samples requested by plain index (the sampler provides its own).
    """

    def __init__(
        self,
        source: ImageSource,
        scale: int = 4,
        hr_crop: int = 192,
        hflip: bool = True,
        vflip: bool = True,
        rot90: bool = True,
        repeat: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(scale, hr_crop, hflip, vflip, rot90, repeat, seed)
        self.source = source

    def __len__(self) -> int:
        return len(self.source) * self.repeat

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Tensor | str]:
        index, seed = _split_key(key, self.seed)
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


def _lr_name_candidates(stem: str, scale: int) -> tuple[str, ...]:
    """LR stems accepted for an HR stem: the same stem (ours, BasicSR) or DIV2K's ``0001x4``."""
    return (stem, f"{stem}x{scale}")


def pair_folders(
    hr_folder: str | os.PathLike[str], lr_folder: str | os.PathLike[str], scale: int
) -> list[tuple[Path, Path]]:
    """Match every HR image to its LR image by file stem (``name`` or ``namex{scale}``).

    Raises ``FileNotFoundError`` naming the first HR file that has no LR partner.
    """
    hr_paths = list_images(hr_folder)
    lr_by_stem = {p.stem: p for p in list_images(lr_folder)}
    pairs = []
    for hr_path in hr_paths:
        stems = _lr_name_candidates(hr_path.stem, scale)
        match = next((lr_by_stem[s] for s in stems if s in lr_by_stem), None)
        if match is None:
            raise FileNotFoundError(
                f"no LR image for {hr_path} in {lr_folder} (looked for {stems[0]}.* and {stems[1]}.*)"
            )
        pairs.append((hr_path, match))
    return pairs


def _read_pair(hr_path: Path, lr_path: Path, scale: int) -> tuple[Tensor, Tensor]:
    hr, lr = read_image(hr_path), read_image(lr_path)
    if hr.shape[-2] != lr.shape[-2] * scale or hr.shape[-1] != lr.shape[-1] * scale:
        raise ValueError(
            f"HR {hr_path} is {hr.shape[-2]}x{hr.shape[-1]} but LR {lr_path} is "
            f"{lr.shape[-2]}x{lr.shape[-1]}; expected exactly x{scale}"
        )
    return hr, lr


class PairedRandomCropDataset(_CropDataset):
    """Random aligned crops of paired HR/LR images (same symmetry applied to both).

    Args as :class:`RandomCropDataset`, with ``hr_folder`` / ``lr_folder`` matched by
    :func:`pair_folders`. HR must be exactly ``scale`` times the LR size.
    """

    def __init__(
        self,
        hr_folder: str | os.PathLike[str],
        lr_folder: str | os.PathLike[str],
        scale: int = 4,
        hr_crop: int = 192,
        hflip: bool = True,
        vflip: bool = True,
        rot90: bool = True,
        repeat: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(scale, hr_crop, hflip, vflip, rot90, repeat, seed)
        self.pairs = pair_folders(hr_folder, lr_folder, scale)

    def __len__(self) -> int:
        return len(self.pairs) * self.repeat

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Tensor | str]:
        index, seed = _split_key(key, self.seed)
        hr_path, lr_path = self.pairs[index % len(self.pairs)]
        generator = torch.Generator().manual_seed(seed)
        hr, lr = _read_pair(hr_path, lr_path, self.scale)
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
            hr, lr = _read_pair(hr_path, lr_path, s)
            y, x, ch, cw = _center_box(lr.shape[-2], lr.shape[-1], self.crop // s if self.crop else None, 1)
            lr = lr[:, y : y + ch, x : x + cw].float() / 255.0
            hr = hr[:, y * s : (y + ch) * s, x * s : (x + cw) * s].float() / 255.0
            return {"lr": lr, "hr": hr, "name": hr_path.stem}
        image = self.source.load(index)
        y, x, ch, cw = _center_box(image.shape[-2], image.shape[-1], self.crop, s)
        hr = image[:, y : y + ch, x : x + cw].float() / 255.0
        return {"lr": synthesize_lr(hr, s), "hr": hr, "name": self.source.name(index)}


class SeededSampler(DistributedSampler):
    """A ``DistributedSampler`` (same partition of each epoch's permutation across ranks) that
    yields ``(index, sample_seed)`` pairs and can start at an offset within the epoch.

    ``set_epoch(e)`` picks the epoch; ``set_start(k)`` skips this rank's first ``k`` samples
    (resume). Works without an initialised process group when ``num_replicas`` and ``rank`` are
    given.
    """

    def __init__(
        self,
        dataset: Sequence | Dataset,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False
        )
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` samples of this rank's share of the current epoch."""
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(super().__iter__())
        for k in range(self.start, len(indices)):
            position = self.rank + k * self.num_replicas
            yield indices[k], sample_seed(self.seed, self.epoch, position)

    def __len__(self) -> int:
        return max(self.num_samples - self.start, 0)
