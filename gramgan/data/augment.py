"""Random crops and the eight flips/rotations of SR training, driven by an explicit generator.

Every random draw takes a ``torch.Generator`` so that a sample depends only on its seed (see
:mod:`gramgan.data.datasets`), never on global RNG state, worker count or how far a run got.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Dihedral", "apply_dihedral", "random_crop_box", "random_dihedral"]


@dataclass(frozen=True)
class Dihedral:
    """One of the eight symmetries of the square: horizontal flip, vertical flip, then transpose.

    ``transpose`` swaps H and W; combined with the flips it gives the 90° rotations (BasicSR's
    ``augment`` uses the same three switches).
    """

    hflip: bool = False
    vflip: bool = False
    transpose: bool = False


def random_dihedral(
    generator: torch.Generator, hflip: bool = True, vflip: bool = True, rot90: bool = True
) -> Dihedral:
    """Draw each enabled switch with probability 1/2 (three draws always, so that turning one
    switch off does not change the others' draws)."""
    coins = torch.rand(3, generator=generator) < 0.5
    return Dihedral(hflip and bool(coins[0]), vflip and bool(coins[1]), rot90 and bool(coins[2]))


def apply_dihedral(x: Tensor, t: Dihedral) -> Tensor:
    """Apply ``t`` to a ``(..., H, W)`` tensor; returns a contiguous tensor."""
    if t.hflip:
        x = x.flip(-1)
    if t.vflip:
        x = x.flip(-2)
    if t.transpose:
        x = x.transpose(-1, -2)
    return x.contiguous()


def random_crop_box(
    height: int, width: int, size: int, generator: torch.Generator, align: int = 1
) -> tuple[int, int]:
    """Top-left corner ``(y, x)`` of a uniformly random ``size``x``size`` crop whose corner is a
    multiple of ``align`` (the scale factor, so that the LR crop lands on whole LR pixels).

    Raises ``ValueError`` when the image is smaller than the crop.
    """
    if height < size or width < size:
        raise ValueError(f"image of {height}x{width} is smaller than the {size}x{size} crop")
    ny = (height - size) // align + 1
    nx = (width - size) // align + 1
    y = int(torch.randint(ny, (), generator=generator)) * align
    x = int(torch.randint(nx, (), generator=generator)) * align
    return y, x
