"""HR and LR folders with matching file names: which LR goes with which HR, and reading a pair."""

from __future__ import annotations

import os
from pathlib import Path

from torch import Tensor

from gramgan.images import list_images, read_rgb8

__all__ = ["pair_folders", "read_pair"]


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


def read_pair(hr_path: Path, lr_path: Path, scale: int) -> tuple[Tensor, Tensor]:
    """Both images as ``(3, H, W)`` uint8; ``ValueError`` unless HR is exactly ``scale`` times the LR."""
    hr, lr = read_rgb8(hr_path), read_rgb8(lr_path)
    if hr.shape[-2] != lr.shape[-2] * scale or hr.shape[-1] != lr.shape[-1] * scale:
        raise ValueError(
            f"HR {hr_path} is {hr.shape[-2]}x{hr.shape[-1]} but LR {lr_path} is "
            f"{lr.shape[-2]}x{lr.shape[-1]}; expected exactly x{scale}"
        )
    return hr, lr
