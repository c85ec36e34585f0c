"""Validation: PSNR / SSIM on Y of the generator (its EMA) against bicubic, and comparison PNGs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import Dataset

__all__ = ["comparison_strip", "validate"]

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


def _save_png(array: np.ndarray, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.png")
    Image.fromarray(array).save(tmp)
    os.replace(tmp, path)


@torch.no_grad()
def validate(
    model: nn.Module,
    dataset: Dataset,
    device: torch.device,
    scale: int,
    save_dir: str | os.PathLike[str] | None = None,
    num_save: int = 4,
    autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
) -> dict[str, float]:
    """Mean PSNR-Y / SSIM-Y (border ``scale`` cropped, 8-bit rounding: SPEC §6) of ``model`` and of
    bicubic upscaling over ``dataset``; writes ``bicubic | SR | HR`` PNGs of the first ``num_save``
    images to ``save_dir``. ``autocast`` makes the forward pass's context (e.g. bf16). The model is
    run in eval mode and restored to its previous mode."""
    from gramgan.data.resize import imresize
    from gramgan.metrics import psnr_y, ssim_y

    was_training = model.training
    model.eval()
    totals = {"psnr_y": 0.0, "ssim_y": 0.0, "bicubic_psnr_y": 0.0, "bicubic_ssim_y": 0.0}
    if save_dir is not None:
        Path(save_dir).mkdir(parents=True, exist_ok=True)
    try:
        for index in range(len(dataset)):
            sample = dataset[index]
            lr = sample["lr"].unsqueeze(0).to(device)
            hr = sample["hr"].unsqueeze(0).to(device)
            with autocast() if autocast is not None else contextlib.nullcontext():
                sr = model(lr)
            sr = sr.float().clamp(0, 1)
            bicubic = imresize(lr, scale=scale).clamp(0, 1)
            totals["psnr_y"] += float(psnr_y(sr, hr, scale).mean())
            totals["ssim_y"] += float(ssim_y(sr, hr, scale).mean())
            totals["bicubic_psnr_y"] += float(psnr_y(bicubic, hr, scale).mean())
            totals["bicubic_ssim_y"] += float(ssim_y(bicubic, hr, scale).mean())
            if save_dir is not None and index < num_save:
                strip = comparison_strip([bicubic[0], sr[0], hr[0]])
                _save_png(strip, Path(save_dir) / f"{sample['name']}.png")
    finally:
        model.train(was_training)
    n = max(len(dataset), 1)
    return {key: value / n for key, value in totals.items()}
