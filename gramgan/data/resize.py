"""MATLAB-style bicubic ``imresize`` in PyTorch (the SR literature's way of making LR images).

MATLAB's ``imresize(A, scale)`` with its defaults (``'bicubic'``, antialiasing on) is the reference:

- cubic kernel with a = -0.5, width 4; when shrinking (scale < 1) the kernel is stretched by
  1/scale (and scaled by ``scale``) so it also low-pass filters: that is the antialiasing;
- output pixel x (1-based) samples input coordinate ``u = x / scale + 0.5 * (1 - 1 / scale)``;
- taps falling outside the image are mirrored back in (symmetric padding, edge pixel repeated);
- each output pixel's weights are normalised to sum to 1;
- the output size is ``ceil(scale * input size)``; with an explicit size the scale of each
  dimension is ``out / in``;
- the two dimensions are resized one after the other, the one with the smaller scale first
  (rows first on a tie), as MATLAB does. For float input the order changes results only by
  rounding; for uint8 input MATLAB rounds to uint8 between the two passes, which
  :func:`imresize_uint8` reproduces.

:func:`imresize` works on float tensors (C, H, W) or (B, C, H, W) on any device, is differentiable
in its input, and does NOT clamp its output: bicubic overshoots slightly outside the input's range
near edges, so callers clamp (and round, for 8-bit images) as they need.

The taps themselves (:func:`resize_weights`, :func:`cubic`) are defined in ``gramgan._resize_taps``, which
``gramgan.ops`` reads too, and re-exported here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from gramgan._resize_taps import cubic, resize_weights

__all__ = ["cubic", "imresize", "imresize_uint8", "resize_matrix", "resize_weights"]

@functools.lru_cache(maxsize=256)
def resize_matrix(in_length: int, out_length: int, scale: float, antialias: bool = True) -> np.ndarray:
    """The ``(out_length, in_length)`` float64 matrix of one resize pass (mirrored taps summed)."""
    idx, w = resize_weights(in_length, out_length, scale, antialias)
    matrix = np.zeros((out_length, in_length), dtype=np.float64)
    np.add.at(matrix, (np.arange(out_length)[:, None], idx), w)
    matrix.flags.writeable = False  # cached: shared by every caller
    return matrix


@functools.lru_cache(maxsize=256)
def _matrix_on(
    in_length: int, out_length: int, scale: float, antialias: bool, device: torch.device, dtype: torch.dtype
) -> Tensor:
    matrix = resize_matrix(in_length, out_length, scale, antialias)
    return torch.tensor(matrix, device=device, dtype=dtype)


def _resize_dim(x: Tensor, dim: int, out_length: int, scale: float, antialias: bool) -> Tensor:
    """Resize ``x`` along ``dim`` (-2 rows or -1 columns) with one matrix product.

    A dense matrix is faster than a gather of the few taps at every size measured (192 px to
    2040 px, CPU), since the product runs in BLAS.
    """
    in_length = x.shape[dim]
    if out_length == in_length and scale == 1.0:
        return x  # MATLAB's weights are then the identity
    matrix = _matrix_on(in_length, out_length, float(scale), antialias, x.device, x.dtype)
    return torch.matmul(matrix, x) if dim == -2 else torch.matmul(x, matrix.T)


def _plan(
    in_size: tuple[int, int], scale: float | Sequence[float] | None, size: Sequence[int] | None
) -> tuple[tuple[int, int], tuple[float, float]]:
    """Output size and per-dimension scale, as MATLAB's ``fixupSizeAndScale``."""
    if (scale is None) == (size is None):
        raise ValueError("imresize needs exactly one of scale and size")
    if scale is not None:
        scales = tuple(float(s) for s in (scale if isinstance(scale, Sequence) else (scale, scale)))
        if len(scales) != 2 or not all(math.isfinite(s) and s > 0 for s in scales):
            raise ValueError(f"imresize scale must be a positive number or a pair of them, got {scale!r}")
        out = (math.ceil(scales[0] * in_size[0]), math.ceil(scales[1] * in_size[1]))
        return out, scales  # type: ignore[return-value]
    out = tuple(size)  # type: ignore[arg-type]
    if len(out) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in out):
        raise ValueError(f"imresize size must be two positive ints (height, width), got {size!r}")
    return (int(out[0]), int(out[1])), (out[0] / in_size[0], out[1] / in_size[1])


def _order(scales: tuple[float, float]) -> tuple[int, int]:
    """MATLAB resizes along the dimension with the smaller scale first (rows on a tie)."""
    return (-2, -1) if scales[0] <= scales[1] else (-1, -2)


def imresize(
    x: Tensor,
    scale: float | Sequence[float] | None = None,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> Tensor:
    """Resize a float image tensor exactly as MATLAB's ``imresize(x, scale)`` (bicubic).

    Args:
        x: ``(C, H, W)`` or ``(B, C, H, W)`` floating tensor, any device; values are not assumed
            to be in any range.
        scale: factor for both dimensions (or a pair ``(scale_h, scale_w)``); output size is
            ``ceil(scale * input size)``.
        size: ``(height, width)`` of the output instead of ``scale``.
        antialias: widen the kernel when shrinking (MATLAB's default, True).

    Returns the resized tensor in ``x``'s dtype (half precision is computed in float32),
    NOT clamped. Differentiable in ``x``.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"imresize expects a torch.Tensor, got {type(x).__name__}; see imresize_uint8")
    if x.dim() not in (3, 4):
        raise ValueError(f"imresize expects a (C, H, W) or (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(
            f"imresize expects a floating tensor, got {x.dtype}; use imresize_uint8 for 8-bit images"
        )
    if x.shape[-2] == 0 or x.shape[-1] == 0:
        raise ValueError(f"imresize got an empty image, shape {tuple(x.shape)}")
    out_size, scales = _plan((x.shape[-2], x.shape[-1]), scale, size)
    work = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    for dim in _order(scales):
        axis = 0 if dim == -2 else 1
        work = _resize_dim(work, dim, out_size[axis], scales[axis], antialias)
    return work.to(x.dtype)


def _round_uint8(a: np.ndarray) -> np.ndarray:
    """MATLAB's double -> uint8 conversion: saturate, round half away from zero."""
    return np.floor(np.clip(a, 0.0, 255.0) + 0.5).astype(np.uint8)


def imresize_uint8(
    img: np.ndarray,
    scale: float | Sequence[float] | None = None,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> np.ndarray:
    """MATLAB ``imresize`` of a uint8 ``(H, W)`` or ``(H, W, C)`` array, returning uint8.

    Computes in float64 and rounds to uint8 after each of the two passes, as MATLAB does
    (its intermediate result has the input's class).
    """
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim not in (2, 3):
        raise TypeError("imresize_uint8 expects a uint8 numpy array of shape (H, W) or (H, W, C)")
    chw = torch.from_numpy(np.ascontiguousarray(img.reshape(img.shape[0], img.shape[1], -1)))
    work = chw.permute(2, 0, 1).to(torch.float64)
    out_size, scales = _plan((img.shape[0], img.shape[1]), scale, size)
    for dim in _order(scales):
        axis = 0 if dim == -2 else 1
        work = _resize_dim(work, dim, out_size[axis], scales[axis], antialias)
        work = torch.from_numpy(_round_uint8(work.numpy()).astype(np.float64))
    out = work.to(torch.uint8).permute(1, 2, 0).numpy()
    return np.ascontiguousarray(out[:, :, 0] if img.ndim == 2 else out)
