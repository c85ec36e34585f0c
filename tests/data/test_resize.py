"""MATLAB-style imresize: known values, an independent loop transcription of MATLAB's algorithm,
PIL's bicubic as a third-party check of the interior, and the API's edges."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from gramgan.data.resize import imresize, imresize_uint8


# --- an independent, deliberately literal transcription of MATLAB's imresize (1-based) ---------
def _kernel(t: float) -> float:
    a = abs(t)
    if a <= 1:
        return 1.5 * a**3 - 2.5 * a**2 + 1
    if a <= 2:
        return -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2
    return 0.0


def _resize_vector(v: list[float], out_len: int, scale: float, antialias: bool = True) -> list[float]:
    n = len(v)
    aux = list(range(1, n + 1)) + list(range(n, 0, -1))  # MATLAB's [1:n, n:-1:1]
    shrink = scale < 1 and antialias
    width = 4 / scale if shrink else 4
    out = []
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        total, acc = 0.0, 0.0
        for p in range(math.ceil(width) + 2):
            j = left + p
            w = scale * _kernel(scale * (u - j)) if shrink else _kernel(u - j)
            src = aux[(j - 1) % (2 * n)]  # MATLAB: aux(mod(j-1, 2n) + 1)
            total += w
            acc += w * v[src - 1]
        out.append(acc / total)
    return out


def _matlab_like(a: np.ndarray, out_size: tuple[int, int], scales: tuple[float, float], rnd: bool = False):
    a = a.astype(np.float64)
    dims = (0, 1) if scales[0] <= scales[1] else (1, 0)
    for d in dims:
        if d == 0:
            a = np.array([_resize_vector(list(a[:, c]), out_size[0], scales[0]) for c in range(a.shape[1])]).T
        else:
            a = np.array([_resize_vector(list(a[r, :]), out_size[1], scales[1]) for r in range(a.shape[0])])
        if rnd:
            a = np.floor(np.clip(a, 0, 255) + 0.5)
    return a


def _ours(a: np.ndarray, **kw) -> np.ndarray:
    return imresize(torch.from_numpy(a.astype(np.float64))[None], **kw)[0].numpy()


# --- known values ------------------------------------------------------------------------------
def test_ramp_downscale_by_two_known_values():
    # Worked by hand: x=1 samples u=1.5 with the 8-wide kernel; the taps left of the edge mirror
    # to values 3, 2, 1, so the mean is pulled up from 1.5 to 1.44921875 ... (dyadic, exact).
    out = _ours(np.arange(1, 9, dtype=np.float64)[None, :], scale=0.5)
    assert out.shape == (1, 4)
    np.testing.assert_allclose(out[0], [1.44921875, 3.48828125, 5.51171875, 7.55078125], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out[0], _resize_vector(list(range(1, 9)), 4, 0.5), atol=1e-12)


def test_ramp_upscale_by_two_known_values():
    # 1x4 -> 2x8 like MATLAB's imresize(1:4, 2); first value by hand: taps 2,1,1,2 weighted
    # -0.0234375, 0.2265625, 0.8671875, -0.0703125 -> 0.90625.
    out = _ours(np.arange(1, 5, dtype=np.float64)[None, :], scale=2)
    assert out.shape == (2, 8)
    expected = _resize_vector([1, 2, 3, 4], 8, 2.0)
    np.testing.assert_allclose(out[0], expected, atol=1e-12)
    np.testing.assert_allclose(out[1], out[0], atol=0)
    assert out[0, 0] == pytest.approx(0.90625, abs=1e-12)
    np.testing.assert_allclose(out[0] + out[0, ::-1], 5.0, atol=1e-12)  # symmetric mapping


@pytest.mark.parametrize(
    ("shape", "kw"),
    [
        ((8, 8), {"scale": 0.25}),
        ((4, 4), {"scale": 2}),
        ((9, 7), {"scale": 0.5}),
        ((6, 10), {"scale": 3}),
        ((13, 11), {"scale": 0.3}),
        ((12, 10), {"size": (5, 17)}),  # shrink rows, grow columns: columns go second
        ((10, 12), {"size": (23, 4)}),  # grow rows, shrink columns: columns go first
    ],
)
def test_matches_independent_transcription(shape, kw):
    a = np.random.default_rng(1).random(shape) * 255
    if "scale" in kw:
        s = float(kw["scale"])
        out_size, scales = (math.ceil(s * shape[0]), math.ceil(s * shape[1])), (s, s)
    else:
        out_size = kw["size"]
        scales = (out_size[0] / shape[0], out_size[1] / shape[1])
    ours = _ours(a, **kw)
    assert ours.shape == out_size
    np.testing.assert_allclose(ours, _matlab_like(a, out_size, scales), rtol=0, atol=1e-9)


@pytest.mark.parametrize("scale", [0.25, 0.5, 2.0, 4.0])
def test_interior_matches_pil_bicubic(scale):
    # PIL's bicubic uses the same kernel (a=-0.5), support widening and pixel-centre mapping but
    # clips at the borders instead of mirroring, so only the interior must agree.
    a = np.random.default_rng(2).random((64, 80)).astype(np.float32)
    oh, ow = int(64 * scale), int(80 * scale)
    pil = np.asarray(Image.fromarray(a, mode="F").resize((ow, oh), Image.BICUBIC))
    ours = _ours(a, scale=scale)
    m = math.ceil(2 * max(1.0, 1 / scale) * scale) + 1
    np.testing.assert_allclose(ours[m:-m, m:-m], pil[m:-m, m:-m], rtol=0, atol=1e-5)
    assert np.abs(ours - pil).max() > 1e-3  # the borders do differ: mirroring is not clipping


@pytest.mark.parametrize("kw", [{"scale": 0.25}, {"scale": 2}, {"size": (5, 3)}, {"scale": 1 / 3}])
def test_constant_image_stays_constant(kw):
    x = torch.full((2, 3, 12, 9), 0.37, dtype=torch.float64)
    out = imresize(x, **kw)
    torch.testing.assert_close(out, torch.full_like(out, 0.37), rtol=0, atol=1e-12)


def test_batch_and_channels_are_independent_and_3d_works():
    x = torch.rand(2, 3, 16, 12, dtype=torch.float64)
    out = imresize(x, scale=0.5)
    assert out.shape == (2, 3, 8, 6)
    torch.testing.assert_close(imresize(x[1], scale=0.5), out[1])
    torch.testing.assert_close(out[1, 2].numpy(), _ours(x[1, 2].numpy(), scale=0.5))


def test_scale_one_is_identity_and_output_is_not_clamped():
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(imresize(x, scale=1.0), x, rtol=0, atol=0)
    step = torch.zeros(1, 1, 8, 8)
    step[..., 4:] = 1.0
    up = imresize(step, scale=2)
    assert up.max() > 1.0 and up.min() < 0.0  # bicubic overshoot is kept


def test_uint8_helper_rounds_between_passes_like_matlab():
    a = np.random.default_rng(3).integers(0, 256, (20, 14, 3), dtype=np.uint8)
    out = imresize_uint8(a, scale=0.25)
    assert out.dtype == np.uint8 and out.shape == (5, 4, 3)
    for c in range(3):
        expected = _matlab_like(a[..., c], (5, 4), (0.25, 0.25), rnd=True)
        np.testing.assert_array_equal(out[..., c], expected.astype(np.uint8))
    for size in ((7, 9), (30, 5)):  # rows first, then columns first
        gray = imresize_uint8(a[..., 0], size=size)
        scales = (size[0] / 20, size[1] / 14)
        np.testing.assert_array_equal(gray, _matlab_like(a[..., 0], size, scales, rnd=True))


def test_dtypes_and_gradients():
    x = torch.rand(1, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize(t, scale=0.5), (x,))
    h = torch.rand(1, 3, 8, 8).half()
    out = imresize(h, scale=0.5)
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(), imresize(h.float(), scale=0.5), rtol=0, atol=2e-3)


@pytest.mark.parametrize(
    ("x", "kw", "err", "match"),
    [
        (torch.rand(3, 4, 4), {}, ValueError, "exactly one"),
        (torch.rand(3, 4, 4), {"scale": 0.5, "size": (2, 2)}, ValueError, "exactly one"),
        (torch.rand(4, 4), {"scale": 0.5}, ValueError, "shape"),
        (torch.zeros(3, 4, 4, dtype=torch.uint8), {"scale": 0.5}, TypeError, "imresize_uint8"),
        (torch.rand(3, 4, 4), {"scale": -1.0}, ValueError, "positive"),
        (torch.rand(3, 4, 4), {"size": (2, 0)}, ValueError, "positive"),
    ],
)
def test_bad_input(x, kw, err, match):
    with pytest.raises(err, match=match):
        imresize(x, **kw)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    x = torch.rand(2, 3, 40, 36)
    for kw in ({"scale": 0.25}, {"scale": 4}):
        torch.testing.assert_close(imresize(x.cuda(), **kw).cpu(), imresize(x, **kw), rtol=1e-5, atol=1e-5)
