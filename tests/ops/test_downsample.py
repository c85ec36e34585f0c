"""``downsample_half`` on every backend against MATLAB-style ``imresize(x, 0.5)`` (gramgan.data.resize)."""

from __future__ import annotations

import pytest
import torch

import gramgan.ops as ops
from gramgan.data.resize import imresize

# (B, C, H, W): B = 1, non-square, tiny images whose taps mirror more than once (W/2 = 1 to 5), C = 1..4.
SHAPES = [(1, 3, 16, 16), (2, 1, 6, 10), (1, 4, 2, 4), (3, 2, 24, 8), (1, 2, 6, 6), (2, 1, 4, 2)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_downsample_half_matches_imresize(backend, device, rng, shape, dtype):
    x = torch.rand(shape, generator=rng, dtype=torch.float64).to(dtype)
    out = ops.downsample_half(x.to(device), backend=backend).cpu()
    expected = imresize(x.double(), scale=0.5)
    assert out.shape == expected.shape
    assert out.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(out.double(), expected, rtol=tol, atol=tol)


def test_downsample_half_edges_and_nan(backend, device):
    """A one-hot image: every output is the weight its taps give that pixel, mirrored taps included; a
    NaN there reaches exactly the outputs whose taps read it."""
    x = torch.zeros(1, 1, 8, 12, dtype=torch.float64)
    x[0, 0, 0, 11] = 1.0  # a corner: its taps are mirrored at both edges
    out = ops.downsample_half(x.to(device), backend=backend).cpu().double()
    torch.testing.assert_close(out, imresize(x, scale=0.5), rtol=0, atol=1e-7)
    assert out[0, 0, 0, 5] > 0.15 and out[0, 0, 3, 0] == 0
    reads_corner = out != 0
    x[0, 0, 0, 11] = float("nan")
    out = ops.downsample_half(x.float().to(device), backend=backend).cpu()
    assert torch.equal(out.isnan(), reads_corner)  # not everywhere, as a dense resize matrix would spread it


def test_downsample_half_rejects_odd_sizes():
    with pytest.raises(ValueError, match="multiples of the patch size k=2"):
        ops.downsample_half(torch.rand(1, 3, 7, 8))
