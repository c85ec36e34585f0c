"""PSNR / SSIM on Y (docs/evaluation.md): hand-made cases and agreement with scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from gramgan.metrics import gaussian_window, psnr_y, quantize_8bit, rgb_to_y, ssim_y


def _images(seed: int = 0, batch: int = 2, size: tuple[int, int] = (40, 52)) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth-plus-noise 'HR' batch and a distorted 'SR' batch, float in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(batch, 3, size[0] // 4, size[1] // 4, generator=g)
    hr = torch.nn.functional.interpolate(base, size=size, mode="bilinear", align_corners=False)
    hr = (hr + 0.05 * torch.randn(hr.shape, generator=g)).clamp(0, 1)
    sr = (hr + 0.08 * torch.randn(hr.shape, generator=g)).clamp(0, 1)
    return sr, hr


def _y_numpy(img: torch.Tensor, crop: int) -> np.ndarray:
    """Independent Y: 8-bit rounding in numpy, MATLAB's rgb2ycbcr luma, border crop."""
    x = np.round(np.clip(img.double().numpy(), 0, 1) * 255) / 255
    y = 16 + 65.481 * x[0] + 128.553 * x[1] + 24.966 * x[2]
    return y[crop:-crop, crop:-crop] if crop else y


def test_identical_images_give_inf_psnr_and_unit_ssim() -> None:
    _, hr = _images()
    assert torch.isinf(psnr_y(hr, hr, crop_border=4)).all()
    assert torch.allclose(ssim_y(hr, hr, crop_border=4), torch.ones(2, dtype=torch.float64), atol=1e-12)
    assert math.isinf(float(psnr_y(hr[0], hr[0], crop_border=2)))  # 3-D input gives a scalar
    assert psnr_y(hr[0], hr[0], crop_border=2).dim() == 0


def test_rgb_to_y_matches_matlab_rgb2ycbcr_range() -> None:
    img = torch.zeros(3, 1, 3, dtype=torch.float64)
    img[:, 0, 1] = 1.0  # white
    img[0, 0, 2] = 1.0  # pure red
    y = rgb_to_y(img)[0, 0] * 255
    assert y.tolist() == pytest.approx([16.0, 235.0, 16.0 + 65.481])


def test_grey_offset_of_one_level_gives_20log10_255() -> None:
    hr = torch.full((1, 1, 30, 30), 100 / 255, dtype=torch.float64)
    sr = hr + 1 / 255
    assert float(psnr_y(sr, hr, crop_border=0)) == pytest.approx(20 * math.log10(255), abs=1e-9)


def test_rgb_offset_of_one_level_shifts_y_by_219_over_255() -> None:
    hr = torch.full((3, 24, 24), 80 / 255)
    sr = hr + 1 / 255
    expected = 10 * math.log10(255**2 / (219 / 255) ** 2)  # dY = (65.481 + 128.553 + 24.966) / 255
    assert float(psnr_y(sr, hr, crop_border=4)) == pytest.approx(expected, abs=1e-6)


def test_crop_border_is_honoured() -> None:
    _, hr = _images(batch=1)
    sr = hr.clone()
    sr[..., :3, :] = 1 - sr[..., :3, :]  # damage only the top 3 rows and the right 3 columns
    sr[..., :, -3:] = 0
    assert torch.isinf(psnr_y(sr, hr, crop_border=3)).all()
    assert float(ssim_y(sr, hr, crop_border=3)) == pytest.approx(1.0, abs=1e-12)
    assert torch.isfinite(psnr_y(sr, hr, crop_border=2)).all()
    assert float(ssim_y(sr, hr, crop_border=0)) < 0.99


def test_rounding_to_8_bits_happens_before_the_metric() -> None:
    hr = quantize_8bit(_images(batch=1)[1])
    sr = hr + 0.3 / 255  # rounds back onto hr
    assert torch.isinf(psnr_y(sr, hr, crop_border=4)).all()
    assert torch.isfinite(psnr_y(sr, hr, crop_border=4, quantize=False)).all()


def test_uint8_input_equals_float_input() -> None:
    sr, hr = _images()
    sr8, hr8 = (torch.round(t * 255).to(torch.uint8) for t in (sr, hr))
    assert torch.equal(psnr_y(sr8, hr8, 4), psnr_y(sr, hr, 4))
    assert torch.allclose(ssim_y(sr8, hr8, 4), ssim_y(sr, hr, 4), rtol=0, atol=1e-15)


@pytest.mark.parametrize("crop", [0, 2, 4])
def test_agrees_with_scikit_image(crop: int) -> None:
    sr, hr = _images(seed=crop, batch=3, size=(48, 61))
    psnr, ssim = psnr_y(sr, hr, crop_border=crop), ssim_y(sr, hr, crop_border=crop)
    for i in range(3):
        y_sr, y_hr = _y_numpy(sr[i], crop), _y_numpy(hr[i], crop)
        ref_psnr = peak_signal_noise_ratio(y_hr, y_sr, data_range=255)
        ref_ssim = structural_similarity(
            y_hr, y_sr, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
        )
        assert float(psnr[i]) == pytest.approx(ref_psnr, rel=1e-9)
        assert float(ssim[i]) == pytest.approx(ref_ssim, rel=1e-9)
    assert 0.2 < float(ssim.min()) < 0.99  # a real distortion, not a degenerate case


def test_batched_equals_one_by_one() -> None:
    sr, hr = _images(batch=3)
    batched = ssim_y(sr, hr, 4)
    single = torch.stack([ssim_y(sr[i], hr[i], 4) for i in range(3)])
    assert torch.allclose(batched, single, rtol=0, atol=1e-15)


def test_gaussian_window_is_normalised_and_symmetric() -> None:
    w = gaussian_window(11, 1.5)
    assert w.shape == (11, 11)
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-15)
    assert torch.equal(w, w.T) and torch.equal(w, w.flip(0))
    assert float(w[5, 5] / w[5, 6]) == pytest.approx(math.exp(1 / (2 * 1.5**2)))


def test_bad_input_is_rejected() -> None:
    sr, hr = _images()
    with pytest.raises(ValueError, match="shapes differ"):
        psnr_y(sr, hr[..., :-1], 4)
    with pytest.raises(ValueError, match="crop_border"):
        psnr_y(sr, hr, 30)
    with pytest.raises(ValueError, match="11x11"):
        ssim_y(sr[..., :20, :20], hr[..., :20, :20], 5)
    with pytest.raises(ValueError, match="C in"):
        psnr_y(sr[:, :2], hr[:, :2], 4)
    with pytest.raises(TypeError, match="dtype"):
        psnr_y(sr.to(torch.int32), hr.to(torch.int32), 4)
