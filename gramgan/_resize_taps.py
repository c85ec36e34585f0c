"""The filter taps of MATLAB's bicubic ``imresize``: which input pixels each output pixel reads, and how much.

This is the one definition of the resize weights. It sits below both of its users, so that neither
imports the other: ``gramgan.data.resize`` builds its resize matrices from it, and ``gramgan.ops``
(``downsample_half``'s reference and the Triton kernel's eight taps) reads the half-size filter from it.

MATLAB's rules, as its ``contributions`` function applies them:

- cubic kernel with a = -0.5, width 4; when shrinking (scale < 1) with antialiasing the kernel is
  stretched by 1/scale (and scaled by ``scale``) so that it also low-pass filters;
- output pixel x (1-based) samples input coordinate ``u = x / scale + 0.5 * (1 - 1 / scale)``;
- taps falling outside the image are mirrored back in (symmetric padding, edge pixel repeated);
- each output pixel's weights are normalised to sum to 1.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["KERNEL_WIDTH", "cubic", "resize_weights"]

KERNEL_WIDTH = 4.0


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


@functools.lru_cache(maxsize=256)
def resize_weights(
    in_length: int, out_length: int, scale: float, antialias: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's ``contributions``: for each output pixel, the input indices (0-based, mirrored into
    range) and their weights, as two ``(out_length, P)`` arrays (int64, float64).

    Columns whose weight is zero for every output pixel are dropped, as MATLAB does.
    """
    if scale < 1 and antialias:
        width = KERNEL_WIDTH / scale
        kernel = lambda t: scale * cubic(scale * t)  # noqa: E731
    else:
        width = KERNEL_WIDTH
        kernel = cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # Symmetric boundary: index sequence 1..L, L..1 repeated (MATLAB's mod trick on [1:L, L:-1:1]).
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    idx = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    keep = np.any(weights != 0, axis=0)
    idx, weights = np.ascontiguousarray(idx[:, keep]), np.ascontiguousarray(weights[:, keep])
    idx.flags.writeable = weights.flags.writeable = False  # cached: shared by every caller
    return idx, weights


def half_size_taps() -> np.ndarray:
    """The eight weights of ``imresize(x, 0.5)`` at an interior pixel (no mirrored taps), float64: the
    fixed filter the fused ``downsample_half`` kernels apply."""
    _, weights = resize_weights(16, 8, 0.5, True)
    return weights[2]
