"""Validation: PSNR / SSIM on Y of the generator (its EMA) against bicubic, and labelled comparison PNGs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor, nn
from torch.utils.data import Dataset

from gramgan.atomic import atomic_path

__all__ = ["comparison_strip", "labelled_comparison", "validate"]

_GAP = 4  # white pixels between the panels of a comparison picture


def comparison_strip(panels: list[Tensor], gap: int = _GAP) -> np.ndarray:
    """Side-by-side ``(H, W_total, 3)`` uint8 picture of equally tall ``(3, H, W)`` [0, 1] images."""
    height = panels[0].shape[-2]
    white = torch.ones(3, height, gap)
    pieces: list[Tensor] = []
    for i, panel in enumerate(panels):
        if i:
            pieces.append(white)
        pieces.append(panel.detach().float().cpu().clamp(0, 1))
    strip = torch.cat(pieces, dim=-1)
    return torch.round(strip * 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def labelled_comparison(panels: list[Tensor], labels: Sequence[str], gap: int = _GAP) -> Image.Image:
    """:func:`comparison_strip` with a white band below it holding each panel's label, centred under
    the panel (lines split at ``\\n``; PIL's built-in font, so nothing is downloaded)."""
    strip = comparison_strip(panels, gap)
    font = ImageFont.load_default()
    line_height = font.getbbox("Ag")[3] + 2
    lines = max(label.count("\n") + 1 for label in labels)
    height, width = strip.shape[:2]
    picture = Image.new("RGB", (width, height + lines * line_height + 4), "white")
    picture.paste(Image.fromarray(strip), (0, 0))
    draw = ImageDraw.Draw(picture)
    left = 0
    for panel, label in zip(panels, labels):
        panel_width = panel.shape[-1]
        for row, text in enumerate(label.split("\n")):
            x = left + max((panel_width - draw.textlength(text, font=font)) / 2, 0)
            draw.text((x, height + 2 + row * line_height), text, fill="black", font=font)
        left += panel_width + gap
    return picture


def _labels(image: dict[str, float], width: int) -> list[str]:
    """The panels' labels; below 128 pixels a panel has room for the number only."""
    psnr = "PSNR-Y {:.2f} dB" if width >= 128 else "{:.2f} dB"
    hr_note = "(ground truth)" if width >= 128 else ""
    return [f"bicubic\n{psnr.format(image['bicubic_psnr_y'])}", f"SR\n{psnr.format(image['psnr_y'])}", f"HR\n{hr_note}"]


@torch.no_grad()
def validate(
    model: nn.Module,
    dataset: Dataset,
    device: torch.device,
    scale: int,
    save_dir: str | os.PathLike[str] | None = None,
    num_save: int = 4,
) -> dict[str, float]:
    """Mean PSNR-Y / SSIM-Y (border ``scale`` cropped, 8-bit rounding: ``docs/evaluation.md``) of
    ``model`` and of bicubic upscaling over ``dataset``; writes ``bicubic | SR | HR`` PNGs of the first
    ``num_save`` images to ``save_dir``, each panel labelled (with its PSNR-Y). The model runs in eval mode
    (restored afterwards) and in float32 with autocast off, even inside an autocast region: the reported
    numbers do not depend on the training precision (``train.precision``, ``train.fast``)."""
    from gramgan.data.resize import imresize
    from gramgan.metrics import psnr_y, ssim_y

    device = torch.device(device)
    was_training = model.training
    model.eval()
    totals = {"psnr_y": 0.0, "ssim_y": 0.0, "bicubic_psnr_y": 0.0, "bicubic_ssim_y": 0.0}
    try:
        with torch.autocast(device.type, enabled=False):  # float32 throughout, even inside autocast
            for index in range(len(dataset)):
                sample = dataset[index]
                lr = sample["lr"].unsqueeze(0).to(device)
                hr = sample["hr"].unsqueeze(0).to(device)
                sr = model(lr).float().clamp(0, 1)
                bicubic = imresize(lr, scale=scale).clamp(0, 1)
                image = {
                    "psnr_y": float(psnr_y(sr, hr, scale).mean()),
                    "ssim_y": float(ssim_y(sr, hr, scale).mean()),
                    "bicubic_psnr_y": float(psnr_y(bicubic, hr, scale).mean()),
                    "bicubic_ssim_y": float(ssim_y(bicubic, hr, scale).mean()),
                }
                for key, value in image.items():
                    totals[key] += value
                if save_dir is not None and index < num_save:
                    picture = labelled_comparison([bicubic[0], sr[0], hr[0]], _labels(image, hr.shape[-1]))
                    with atomic_path(Path(save_dir) / f"{sample['name']}.png", suffix=".tmp.png") as tmp:
                        picture.save(tmp)
    finally:
        model.train(was_training)
    n = max(len(dataset), 1)
    return {key: value / n for key, value in totals.items()}
