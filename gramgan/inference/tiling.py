"""Running a super-resolution network on images of any size: padding and tiled inference.

Padding: a network may need H and W divisible by some number, and a convolutional network pads
with zeros at the image border, which on a tiny image (10×10) reaches most pixels and darkens or
tints them. Inputs are therefore mirrored out to a minimum size and the output cropped back.

Tiling: the input is cut into ``tile``×``tile`` tiles, adjacent ones sharing ``overlap`` pixels.
Across a shared band the outputs are cross-faded: the outermost ``margin`` pixels of a tile's
interior edge (default ``overlap // 4``) get weight 0, they only give the network context; the
rest of the band fades linearly from one tile to the other (the blended output is divided by the
summed weights, which are 1 wherever at most two tiles overlap, i.e. ``overlap <= tile / 2``). So a
network whose receptive field reaches at most ``margin`` input pixels gives exactly its untiled
output, and a deep one (RRDBNet's field is far wider than any practical overlap) shows no seams.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["axis_plan", "blend_weights", "mirror_pad", "run_padded", "run_tiled", "tile_starts"]

SRFunction = Callable[[Tensor], Tensor]


def mirror_pad(x: Tensor, top: int, bottom: int, left: int, right: int) -> Tensor:
    """Pad ``(B, C, H, W)`` by reflection, as far as needed: a pad wider than the image is reached
    by reflecting repeatedly; an axis of one pixel (nothing to reflect) is replicated instead."""
    pads = [left, right, top, bottom]
    while any(pads):
        h, w = x.shape[-2:]
        step = [min(p, w - 1) for p in pads[:2]] + [min(p, h - 1) for p in pads[2:]]
        if not any(step):  # a 1-pixel axis: replicate what is left
            return F.pad(x, tuple(pads), mode="replicate")
        x = F.pad(x, tuple(step), mode="reflect")
        pads = [p - s for p, s in zip(pads, step, strict=True)]
    return x


def run_padded(fn: SRFunction, x: Tensor, scale: int, multiple: int = 1, min_size: int = 0) -> Tensor:
    """``fn(x)`` for a network that needs H and W divisible by ``multiple`` and, to keep its zero
    padding away from the picture, at least ``min_size``: pad by reflection (:func:`mirror_pad`,
    a smaller image evenly on both sides, the rest bottom/right), run, and crop the output back to
    ``scale`` × the input's size."""
    h, w = x.shape[-2:]

    def split(size: int) -> tuple[int, int]:
        grow = max(min_size - size, 0)
        before = grow // 2
        after = grow - before + (-(size + grow) % multiple)
        return before, after

    (top, bottom), (left, right) = split(h), split(w)
    if top or bottom or left or right:
        x = mirror_pad(x, top, bottom, left, right)
    out = fn(x)
    return out[..., top * scale : (top + h) * scale, left * scale : (left + w) * scale]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start positions of tiles along one axis: stride ``tile - overlap``, the last tile flush with
    the end (it may overlap its neighbour by more than ``overlap``)."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile - overlap))
    starts.append(length - tile)
    return starts


def blend_weights(length: int, left_overlap: int, right_overlap: int, margin: int) -> Tensor:
    """1-D weights of one tile of ``length`` pixels whose neighbours overlap it by ``left_overlap``
    and ``right_overlap`` pixels (0: no neighbour on that side). Within each overlap: 0 over the
    ``margin`` pixels at the tile's edge, then a linear ramp up to 1 where the overlap ends, so that
    the two tiles' weights sum to 1 across it."""
    t = torch.arange(length, dtype=torch.float64)
    w = torch.ones(length, dtype=torch.float64)
    for overlap, dist in ((left_overlap, t), (right_overlap, length - 1 - t)):
        if overlap > 0:
            w = w * ((dist - margin + 0.5) / (overlap - 2 * margin)).clamp(0.0, 1.0)
    return w


def axis_plan(length: int, tile: int, overlap: int, margin: int, scale: int = 1) -> list[tuple[int, Tensor]]:
    """For one axis: each tile's start (input pixels) and its blend weights (output pixels, ×scale)."""
    starts = tile_starts(length, tile, overlap)
    size = min(tile, length)
    plan = []
    for i, start in enumerate(starts):
        left = starts[i - 1] + size - start if i > 0 else 0
        right = start + size - starts[i + 1] if i + 1 < len(starts) else 0
        plan.append((start, blend_weights(size * scale, left * scale, right * scale, margin * scale)))
    return plan


def run_tiled(
    fn: SRFunction,
    x: Tensor,
    scale: int,
    tile: int,
    overlap: int = 16,
    margin: int | None = None,
    out_device: torch.device | str | None = None,
) -> Tensor:
    """Apply ``fn`` (an ×``scale`` network on ``(B, C, h, w)``) tile by tile and blend the outputs.

    ``x`` may live on another device than the network (e.g. a large image on the CPU); each tile
    is passed to ``fn`` as is, so ``fn`` moves it where it needs. The result is float32 on
    ``out_device`` (default: ``x``'s device).
    """
    if tile <= 0:
        raise ValueError(f"tile must be positive, got {tile}")
    if not 0 <= overlap < tile:
        raise ValueError(f"tile overlap must be in [0, tile={tile}), got {overlap}")
    margin = overlap // 4 if margin is None else margin
    if not 0 <= 2 * margin < max(overlap, 1):
        raise ValueError(f"tile margin must satisfy 0 <= 2 * margin < overlap={overlap}, got {margin}")
    b, _, h, w = x.shape
    out_device = x.device if out_device is None else torch.device(out_device)
    th, tw = min(tile, h), min(tile, w)
    out: Tensor | None = None
    weight_sum = torch.zeros(1, 1, h * scale, w * scale, dtype=torch.float32, device=out_device)
    for y0, wy in axis_plan(h, tile, overlap, margin, scale):
        for x0, wx in axis_plan(w, tile, overlap, margin, scale):
            weight = torch.outer(wy, wx).to(device=out_device, dtype=torch.float32)[None, None]
            result = fn(x[..., y0 : y0 + th, x0 : x0 + tw]).to(device=out_device, dtype=torch.float32)
            if out is None:
                out = torch.zeros(b, result.shape[1], h * scale, w * scale, device=out_device)
            region = (..., slice(y0 * scale, (y0 + th) * scale), slice(x0 * scale, (x0 + tw) * scale))
            out[region] += result * weight
            weight_sum[region] += weight
    assert out is not None
    return out / weight_sum
