"""Scores of one generator on the ablation's test sets: PSNR-Y, SSIM-Y and LPIPS as
``python -m gramgan.evaluate`` computes them, plus the mean patch Gram distance to HR.

The Gram distance is the always-available texture score: the mean over the k x k patches of an
image of ``||G(SR) - G(HR)||_F``, with ``G`` the patch Gram matrix of ``gramgan.ops.patch_gram``
(RGB in [0, 1], the 8-bit SR image, a border of ``scale`` pixels cropped as for PSNR), averaged over
the images. Lower is closer to HR's texture statistics (see ``docs/ablation.md``).

SR images are saved (``<dir>/<test set>/<stem>.png``): the pictures are cut from them. Bicubic is
scored the same way through :class:`Bicubic`, a module that upsamples like ``evaluate`` does.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gramgan import ops
from gramgan.ablation.plan import BUILTIN_TEST_SET, EvalSettings, TestSet
from gramgan.atomic import atomic_write_bytes
from gramgan.data.datasets import list_images, read_image
from gramgan.data.resize import imresize
from gramgan.evaluate import evaluate_dataset, load_lpips

__all__ = [
    "ALEXNET_FILENAME",
    "Bicubic",
    "ResolvedTestSet",
    "gram_distance",
    "lpips_scorer",
    "resolve_test_sets",
    "score_generator",
    "sr_image_path",
]

ALEXNET_FILENAME = "alexnet-owt-7be5be79.pth"  # torchvision's file, which lpips builds its network from
LpipsFn = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class ResolvedTestSet:
    """A test set with real folders (the built-in photos written out as PNGs)."""

    name: str
    hr: Path
    lr: Path | None
    description: str


class Bicubic(nn.Module):
    """``imresize`` ×scale (MATLAB bicubic), scored like a generator: the table's bicubic row."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.anchor = nn.Parameter(torch.zeros(()), requires_grad=False)  # gives super_resolve a device and dtype

    def forward(self, lr: Tensor) -> Tensor:
        return imresize(lr, scale=self.scale)


def resolve_test_sets(settings: EvalSettings, root: Path) -> list[ResolvedTestSet]:
    """Folders of every test set; the built-in held-out photos are written once under ``root``."""
    resolved = []
    for test_set in settings.test_sets:
        resolved.append(_resolve(test_set, root))
    return resolved


def _resolve(test_set: TestSet, root: Path) -> ResolvedTestSet:
    if test_set.hr is not None:
        hr = Path(test_set.hr)
        if not hr.is_dir():
            raise FileNotFoundError(f"test set {test_set.name!r}: HR folder {hr} does not exist")
        lr = Path(test_set.lr) if test_set.lr else None
        return ResolvedTestSet(test_set.name, hr, lr, str(hr) + (f" (LR {lr})" if lr else ""))
    from PIL import Image

    from gramgan.data.samples import SAMPLE_VAL, load_samples

    folder = root / "test_sets" / test_set.name / "hr"
    for name, array in load_samples(SAMPLE_VAL).items():
        path = folder / f"{name}.png"
        if not path.is_file():
            buffer = io.BytesIO()
            Image.fromarray(array).save(buffer, format="PNG")
            atomic_write_bytes(path, buffer.getvalue())
    return ResolvedTestSet(test_set.name, folder, None, f"{BUILTIN_TEST_SET} ({', '.join(SAMPLE_VAL)})")


def lpips_scorer(enabled: bool, device: torch.device) -> tuple[LpipsFn | None, str]:
    """LPIPS when asked, the ``lpips`` package is installed and AlexNet's weights are already in torch
    hub's cache (nothing is downloaded); else None and the reason."""
    if not enabled:
        return None, "off (eval.lpips=false)"
    import importlib.util

    if importlib.util.find_spec("lpips") is None:
        return None, "not available: the lpips package is not installed"
    weights = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILENAME
    if not weights.is_file():
        return None, f"not available: AlexNet weights not found at {weights} (never downloaded here)"
    fn, info = load_lpips(device)
    return fn, info if fn is not None else f"not available: {info}"


def sr_image_path(sr_dir: Path, set_name: str, stem: str) -> Path:
    """Where :func:`score_generator` saved one SR image (``evaluate``'s layout)."""
    return sr_dir / set_name / f"{stem}.png"


def gram_distance(sr: Tensor, hr: Tensor, k: int = 4, border: int = 0) -> float:
    """Mean over k x k patches of ``||G(SR) - G(HR)||_F`` for two ``(3, H, W)`` images in [0, 1]."""
    if sr.shape != hr.shape:
        raise ValueError(f"SR {tuple(sr.shape)} and HR {tuple(hr.shape)} must have the same shape")
    if border:
        sr, hr = sr[..., border:-border, border:-border], hr[..., border:-border, border:-border]
    h, w = sr.shape[-2] // k * k, sr.shape[-1] // k * k
    if h == 0 or w == 0:
        raise ValueError(f"image of {tuple(sr.shape[-2:])} pixels (after the border) is smaller than one {k}x{k} patch")
    grams = ops.patch_gram(torch.stack([sr[..., :h, :w], hr[..., :h, :w]]).float().contiguous(), k)
    return float(torch.linalg.matrix_norm(grams[0] - grams[1]).mean())


def _as_float(image: Tensor) -> Tensor:
    return image.float() / 255.0


def score_generator(
    model: nn.Module,
    test_sets: list[ResolvedTestSet],
    sr_dir: Path,
    *,
    scale: int,
    device: torch.device,
    settings: EvalSettings,
    lpips_fn: LpipsFn | None,
) -> dict[str, Any]:
    """``{test set: {"num_images", "mean": {psnr, ssim, [lpips], gram}, "images": [...]}}``; SR images
    are saved under ``sr_dir``."""
    out: dict[str, Any] = {}
    for test_set in test_sets:
        result = evaluate_dataset(
            model,
            test_set.hr,
            test_set.lr,
            scale=scale,
            device=device,
            tile=settings.tile,
            lpips_fn=lpips_fn,
            save_dir=sr_dir,
            name=test_set.name,
        )
        hr_paths = {p.stem: p for p in list_images(test_set.hr)}
        images = []
        for entry in result["images"]:
            sr = _as_float(read_image(sr_image_path(sr_dir, test_set.name, entry["name"])))
            hr = _as_float(read_image(hr_paths[entry["name"]]))[..., : sr.shape[-2], : sr.shape[-1]]
            images.append(
                {"name": entry["name"], **entry["model"], "gram": gram_distance(sr, hr, settings.gram_patch, scale)}
            )
        metrics = [m for m in ("psnr", "ssim", "lpips", "gram") if m in images[0]] if images else []
        out[test_set.name] = {
            "num_images": len(images),
            "mean": {m: _mean([img[m] for img in images]) for m in metrics},
            "images": images,
        }
    return out


def _mean(values: list[float]) -> float:
    finite = all(math.isfinite(v) for v in values)
    return math.fsum(values) / len(values) if finite else math.inf
