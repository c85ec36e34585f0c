"""Image-quality metrics with the conventions of the super-resolution literature (docs/evaluation.md).

PSNR and SSIM are computed on the luminance (Y) channel of BT.601 YCbCr, as MATLAB's ``rgb2ycbcr``
defines it, after rounding both images to 8 bits and cropping a border of ``crop_border`` pixels
(the scale factor, by convention). SSIM uses an 11×11 Gaussian window with σ = 1.5, the constants
of Wang et al. (C1 = (0.01·255)², C2 = (0.03·255)²) and 'valid' filtering: only windows that lie
wholly inside the cropped image count. Everything is computed in float64 on [0, 255] values, so the
numbers are comparable to published tables (and match scikit-image's ``structural_similarity`` with
``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255``).

Images are torch tensors ``(C, H, W)`` or ``(B, C, H, W)``: float in [0, 1] (values outside are
clamped by the 8-bit rounding) or uint8 in [0, 255]. C = 3 is RGB; C = 1 is taken as Y already (the
MATLAB scripts' convention for grey images).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["gaussian_window", "psnr_y", "quantize_8bit", "rgb_to_y", "ssim_y"]

# BT.601 luma weights on [0, 1] RGB giving Y on the [0, 255] scale (MATLAB rgb2ycbcr).
_Y_WEIGHTS = (65.481, 128.553, 24.966)
_Y_OFFSET = 16.0


def rgb_to_y(img: torch.Tensor) -> torch.Tensor:
    """Y of BT.601 YCbCr for RGB in [0, 1], like MATLAB ``rgb2ycbcr`` on double input.

    ``(..., 3, H, W) -> (..., 1, H, W)`` with Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255,
    i.e. in [16/255, 235/255]. Multiply by 255 for the [0, 255] scale that PSNR tables use.
    """
    if not img.is_floating_point():
        raise TypeError(f"rgb_to_y expects a float tensor in [0, 1], got dtype {img.dtype}")
    if img.dim() < 3 or img.shape[-3] != 3:
        raise ValueError(f"rgb_to_y expects (..., 3, H, W), got shape {tuple(img.shape)}")
    weights = torch.tensor(_Y_WEIGHTS, dtype=img.dtype, device=img.device).view(3, 1, 1)
    return ((img * weights).sum(dim=-3, keepdim=True) + _Y_OFFSET) / 255.0


def quantize_8bit(img: torch.Tensor) -> torch.Tensor:
    """Round a [0, 1] float image to the 256 levels of an 8-bit image (clamped), same dtype."""
    return torch.round(img.clamp(0.0, 1.0) * 255.0) / 255.0


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Normalised 2-D Gaussian window ``(size, size)``: the outer product of a sampled 1-D Gaussian."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"window size must be a positive odd number, got {size}")
    coords = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def _as_batch(img: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(img, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(img).__name__}")
    if img.dim() == 3:
        img = img.unsqueeze(0)
    if img.dim() != 4 or img.shape[1] not in (1, 3):
        raise ValueError(f"{name} must be (C, H, W) or (B, C, H, W) with C in (1, 3), got {tuple(img.shape)}")
    return img


def _y_255(img: torch.Tensor, crop_border: int, quantize: bool) -> torch.Tensor:
    """Batch ``(B, C, H, W)`` → Y on the [0, 255] scale, float64, ``(B, 1, H', W')`` after the crop."""
    if img.dtype == torch.uint8:
        img = img.to(torch.float64) / 255.0
    elif img.is_floating_point():
        img = img.to(torch.float64)
        if quantize:
            img = quantize_8bit(img)
    else:
        raise TypeError(f"images must be float in [0, 1] or uint8, got dtype {img.dtype}")
    if img.shape[1] == 3:
        weights = torch.tensor(_Y_WEIGHTS, dtype=torch.float64, device=img.device).view(1, 3, 1, 1)
        y = (img * weights).sum(dim=1, keepdim=True) + _Y_OFFSET
    else:
        y = img * 255.0
    if crop_border > 0:
        y = y[..., crop_border:-crop_border, crop_border:-crop_border]
    return y


def _prepare_pair(
    sr: torch.Tensor, hr: torch.Tensor, crop_border: int, quantize: bool
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    squeeze = sr.dim() == 3
    sr_b, hr_b = _as_batch(sr, "sr"), _as_batch(hr, "hr")
    if sr_b.shape != hr_b.shape:
        raise ValueError(f"sr and hr shapes differ: {tuple(sr.shape)} vs {tuple(hr.shape)}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    h, w = sr_b.shape[-2:]
    if 2 * crop_border >= min(h, w):
        raise ValueError(f"crop_border {crop_border} leaves nothing of a {h}x{w} image")
    return _y_255(sr_b, crop_border, quantize), _y_255(hr_b, crop_border, quantize), squeeze


def psnr_y(sr: torch.Tensor, hr: torch.Tensor, crop_border: int, *, quantize: bool = True) -> torch.Tensor:
    """PSNR in dB on the Y channel (peak 255), per image: float64 ``(B,)``, or a scalar for 3-D input.

    ``crop_border`` pixels are removed on each side first (use the scale factor). ``quantize`` rounds
    float inputs to 8 bits as saved images would be; identical images give ``inf``.
    """
    y_sr, y_hr, squeeze = _prepare_pair(sr, hr, crop_border, quantize)
    mse = ((y_sr - y_hr) ** 2).mean(dim=(1, 2, 3))
    psnr = 10.0 * torch.log10(255.0**2 / mse)
    return psnr[0] if squeeze else psnr


def ssim_y(
    sr: torch.Tensor,
    hr: torch.Tensor,
    crop_border: int,
    *,
    quantize: bool = True,
    window_size: int = 11,
    sigma: float = 1.5,
) -> torch.Tensor:
    """Mean SSIM on the Y channel, per image: float64 ``(B,)``, or a scalar for 3-D input.

    Wang et al.'s SSIM with a Gaussian window (11×11, σ = 1.5), population (co)variances, constants
    C1 = (0.01·255)², C2 = (0.03·255)², averaged over the 'valid' positions of the cropped Y image.
    """
    y_sr, y_hr, squeeze = _prepare_pair(sr, hr, crop_border, quantize)
    h, w = y_sr.shape[-2:]
    if min(h, w) < window_size:
        raise ValueError(f"SSIM needs at least {window_size}x{window_size} pixels after cropping, got {h}x{w}")
    window = gaussian_window(window_size, sigma).to(y_sr.device).view(1, 1, window_size, window_size)

    def filt(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window)

    c1 = (0.01 * 255.0) ** 2
    c2 = (0.03 * 255.0) ** 2
    mu_x, mu_y = filt(y_sr), filt(y_hr)
    var_x = filt(y_sr * y_sr) - mu_x**2
    var_y = filt(y_hr * y_hr) - mu_y**2
    cov_xy = filt(y_sr * y_hr) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    ssim = (numerator / denominator).mean(dim=(1, 2, 3))
    return ssim[0] if squeeze else ssim
