"""Evaluate a generator on SR test sets: ``python -m gramgan.evaluate``.

Example::

    python -m gramgan.evaluate --checkpoint runs/gan/last.pt --data datasets/Set5/HR datasets/Set14/HR

Each ``--data`` folder holds HR images. By default the LR input is made as in training
(:func:`gramgan.data.datasets.synthesize_lr`: MATLAB-style bicubic ×1/scale, clamped, rounded to
8 bits) from the HR image cropped to a multiple of the scale ("modcrop"). With ``--lr-data`` (one
folder per ``--data`` folder) the LR images are read instead, matched by file stem (``name`` or
``namex4``); an HR image up to scale − 1 pixels larger than LR × scale is cropped to fit.

Scores (see docs/evaluation.md): PSNR and SSIM on Y (BT.601), 8-bit, border of ``scale`` pixels cropped, SSIM with
an 11×11 Gaussian window (σ 1.5); LPIPS (AlexNet, on the same crop) when the ``lpips`` package and
its weights can be loaded. A bicubic row (``imresize`` of the LR image) comes with every data set.
Results go to ``results.md`` and ``results.json`` in ``--output-dir`` (default
``runs/eval/<checkpoint stem>``) and the table is printed. An existing result is never replaced
without ``--overwrite``: the new one is written beside it as ``results-2.md`` / ``results-2.json``
(see :mod:`gramgan.eval_report`); a ``--save-images`` folder that already holds SR images of a data
set is refused before any work.

Exit status: 0 done; 2 usage or input error (bad option, missing folder, unreadable image or
checkpoint), one line on stderr naming the problem; 1 any other failure.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from gramgan.data.lr import synthesize_lr
from gramgan.data.pairing import pair_folders
from gramgan.data.resize import imresize
from gramgan.eval_report import results_markdown, write_results
from gramgan.images import list_images
from gramgan.images import read_rgb8 as read_image
from gramgan.inference import ImageData, load_generator, pick_device, super_resolve, write_image
from gramgan.metrics import psnr_y, quantize_8bit, ssim_y

__all__ = [
    "EvalConfig",
    "dataset_name",
    "evaluate",
    "evaluate_dataset",
    "load_lpips",
    "main",
    "modcrop",
    "results_markdown",
]

logger = logging.getLogger(__name__)

LpipsFn = Callable[[Tensor, Tensor], Tensor]
# Folder names that say nothing about the data set: the parent's name is used instead.
_GENERIC_NAMES = {"hr", "gt", "gtmod12", "original", "originals", "images", "image", "img", "imgs"}
_METRICS = ("psnr", "ssim", "lpips")


@dataclass
class EvalConfig:
    """Options of ``python -m gramgan.evaluate``.

    Attributes:
        checkpoint: generator checkpoint (ours, BasicSR/Real-ESRGAN, or a bare RRDBNet state dict).
        data: folders of HR images, one per data set.
        lr_data: folders of LR images matching ``data`` one to one; None makes LR as in training.
        scale: expected model scale; None accepts the checkpoint's. Also the cropped border.
        save_images: folder to save SR images in (``<save_images>/<data set>/<stem>.png``); None: don't.
        output_dir: folder for ``results.md`` / ``results.json``; None: ``runs/eval/<checkpoint stem>``.
        device: "auto" (CUDA if available, else CPU) or a torch device string.
        use_ema: take the EMA weights when the checkpoint has them.
        tile: tile size for the network (0: whole images), see ``gramgan.inference.tiling``.
        tile_overlap: input pixels shared by adjacent tiles.
        lpips: compute LPIPS when the ``lpips`` package and its weights are available.
        overwrite: replace ``results.md``/``.json`` and saved SR images; without it results go
            beside (``results-2.md``) and a ``save_images`` folder already holding images is refused.
    """

    checkpoint: str
    data: list[str]
    lr_data: list[str] | None = None
    scale: int | None = None
    save_images: str | None = None
    output_dir: str | None = None
    device: str = "auto"
    use_ema: bool = True
    tile: int = 0
    tile_overlap: int = 16
    lpips: bool = True
    overwrite: bool = False


def modcrop(img: Tensor, scale: int) -> Tensor:
    """Crop ``(..., H, W)`` at the bottom/right to multiples of ``scale`` (the SR literature's modcrop)."""
    h, w = img.shape[-2:]
    return img[..., : h - h % scale, : w - w % scale]


def dataset_name(folder: str | os.PathLike[str]) -> str:
    """A data set's display name: the folder's, or its parent's for generic ones (``Set5/HR`` → Set5)."""
    path = Path(folder).resolve()
    return path.parent.name if path.name.lower() in _GENERIC_NAMES and path.parent.name else path.name


def load_lpips(device: torch.device) -> tuple[LpipsFn | None, str]:
    """LPIPS (AlexNet) as a function of two [0, 1] image batches, or None and the reason it is not
    available (package missing, weights not loadable, e.g. offline without torchvision's AlexNet)."""
    try:
        import lpips  # type: ignore[import-not-found]
    except ImportError:
        return None, "the lpips package is not installed (pip install lpips)"
    try:
        net = lpips.LPIPS(net="alex", verbose=False).to(device).eval()
    except Exception as err:  # any failure to build it means "no LPIPS", not a crash
        return None, f"its weights could not be loaded ({type(err).__name__}: {err})"

    @torch.inference_mode()
    def score(sr: Tensor, hr: Tensor) -> Tensor:
        return net(sr * 2 - 1, hr * 2 - 1).flatten()

    return score, "LPIPS v0.1, AlexNet"


def _load_pair(hr_path: Path, lr_path: Path | None, scale: int) -> tuple[Tensor, Tensor]:
    """HR and LR as float (3, H, W) in [0, 1], HR cropped so that it is exactly LR × scale."""
    hr = read_image(hr_path).float() / 255.0
    if lr_path is None:
        hr = modcrop(hr, scale)
        if min(hr.shape[-2:]) == 0:
            raise ValueError(f"HR image {hr_path} is smaller than the scale {scale}")
        return hr, synthesize_lr(hr, scale)
    lr = read_image(lr_path).float() / 255.0
    (H, W), (h, w) = hr.shape[-2:], lr.shape[-2:]
    if not (0 <= H - h * scale < scale and 0 <= W - w * scale < scale):
        raise ValueError(
            f"HR {hr_path} is {H}x{W} but LR {lr_path} is {h}x{w}: x{scale} of it is {h * scale}x{w * scale}"
        )
    return hr[..., : h * scale, : w * scale], lr


def evaluate_dataset(
    model: nn.Module,
    hr_dir: str | os.PathLike[str],
    lr_dir: str | os.PathLike[str] | None,
    *,
    scale: int,
    device: torch.device,
    tile: int = 0,
    tile_overlap: int = 16,
    lpips_fn: LpipsFn | None = None,
    save_dir: Path | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Score the model and bicubic on one folder; returns per-image scores and their means.

    ``name`` (default :func:`dataset_name`) labels the results and the folder of saved images.
    """
    hr_dir = Path(hr_dir)
    name = name or dataset_name(hr_dir)
    # Metrics run in float64: on the model's device where it has float64, else on the CPU.
    metric_device = device if device.type in ("cpu", "cuda") else torch.device("cpu")
    pairs: list[tuple[Path, Path | None]]
    if lr_dir is None:
        pairs = [(p, None) for p in list_images(hr_dir)]
    else:
        pairs = list(pair_folders(hr_dir, lr_dir, scale))
    images = []
    for hr_path, lr_path in tqdm(pairs, desc=name, unit="img"):
        hr, lr = _load_pair(hr_path, lr_path, scale)
        hr, lr = hr.to(metric_device), lr.to(device)
        sr = super_resolve(model, lr[None], scale=scale, tile=tile, tile_overlap=tile_overlap)[0]
        sr = quantize_8bit(sr.to(metric_device))
        bicubic = quantize_8bit(imresize(lr, size=tuple(hr.shape[-2:])).to(metric_device))
        entry: dict[str, Any] = {"name": hr_path.stem, "size": list(hr.shape[-2:])}
        for method, out in (("model", sr), ("bicubic", bicubic)):
            scores = {
                "psnr": float(psnr_y(out, hr, crop_border=scale)),
                "ssim": float(ssim_y(out, hr, crop_border=scale)),
            }
            if lpips_fn is not None:
                c = slice(scale, -scale)
                scores["lpips"] = float(lpips_fn(out[None, :, c, c], hr[None, :, c, c])[0])
            entry[method] = scores
        images.append(entry)
        if save_dir is not None:
            write_image(save_dir / name / f"{hr_path.stem}.png", ImageData(sr.cpu()))
    means = {
        method: {m: _mean([img[method][m] for img in images]) for m in _METRICS if m in images[0][method]}
        for method in ("model", "bicubic")
    }
    return {
        "name": name,
        "hr_dir": str(hr_dir),
        "lr_dir": None if lr_dir is None else str(lr_dir),
        "lr": "given" if lr_dir is not None else "bicubic x1/scale as in training",
        "num_images": len(images),
        "mean": means,
        "images": images,
    }


def _mean(values: list[float]) -> float:
    """Mean over images (as SR papers average per-image PSNR); inf if an image scored inf."""
    if any(math.isnan(v) for v in values):
        return math.nan
    return math.fsum(values) / len(values) if all(math.isfinite(v) for v in values) else math.inf


def _dataset_names(folders: list[str]) -> list[str]:
    """Display names of the data sets, made distinct (``Set5``, ``Set5-2``) when two folders share one."""
    names: list[str] = []
    for folder in folders:
        name, n = dataset_name(folder), 1
        while name in names:
            n += 1
            name = f"{dataset_name(folder)}-{n}"
        names.append(name)
    return names


def _refuse_to_replace_saved_images(save_root: Path, names: list[str]) -> None:
    """``FileExistsError`` if a data set's folder of saved SR images already holds images."""
    for name in names:
        folder = save_root / name
        if folder.is_dir() and any(folder.glob("*.png")):
            raise FileExistsError(
                f"{folder} already holds SR images: choose another --save-images folder or pass --overwrite"
            )


def evaluate(config: EvalConfig) -> dict[str, Any]:
    """Run the whole evaluation of ``config``; returns the results (what ``results.json`` holds)."""
    if config.lr_data is not None and len(config.lr_data) != len(config.data):
        raise ValueError(
            f"--lr-data needs one folder per --data folder: got {len(config.lr_data)} for {len(config.data)}"
        )
    names = _dataset_names(config.data)
    save_root = None if config.save_images is None else Path(config.save_images)
    if save_root is not None and not config.overwrite:
        _refuse_to_replace_saved_images(save_root, names)
    device = pick_device(config.device)
    model, weights = load_generator(config.checkpoint, scale=config.scale, prefer_ema=config.use_ema, device=device)
    scale = weights.arch["scale"]
    logger.info("loaded %s (x%d) from %s", weights.description, scale, config.checkpoint)
    for note in weights.notes:
        logger.warning("%s", note)
    lpips_fn, lpips_info = load_lpips(device) if config.lpips else (None, "disabled (--no-lpips)")
    if lpips_fn is None:
        print(f"LPIPS skipped: {lpips_info}", file=sys.stderr)
    lr_dirs: list[str | None] = list(config.lr_data) if config.lr_data is not None else [None] * len(config.data)
    datasets: list[dict[str, Any]] = []
    for hr_dir, lr_dir, name in zip(config.data, lr_dirs, names, strict=True):
        result = evaluate_dataset(
            model,
            hr_dir,
            lr_dir,
            scale=scale,
            device=device,
            tile=config.tile,
            tile_overlap=config.tile_overlap,
            lpips_fn=lpips_fn,
            save_dir=save_root,
            name=name,
        )
        datasets.append(result)
    return {
        "checkpoint": str(config.checkpoint),
        "weights": weights.description,
        "arch": weights.arch,
        "scale": scale,
        "crop_border": scale,
        "metrics": "PSNR/SSIM on Y (BT.601, MATLAB rgb2ycbcr), 8-bit, SSIM Gaussian 11x11 sigma 1.5",
        "lpips": lpips_info if lpips_fn is not None else f"skipped: {lpips_info}",
        "datasets": datasets,
    }


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m gramgan.evaluate``."""
    p = argparse.ArgumentParser(
        prog="python -m gramgan.evaluate",
        description="PSNR/SSIM (Y channel) and LPIPS of an RRDB generator on folders of test images",
    )
    p.add_argument("--checkpoint", required=True, help="generator checkpoint (.pt/.pth/.safetensors)")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="folders of HR images")
    p.add_argument(
        "--lr-data", nargs="+", default=None, metavar="DIR", help="LR folders, one per --data (default: made)"
    )
    p.add_argument("--scale", type=int, default=None, help="expected model scale (default: the checkpoint's)")
    p.add_argument("--save-images", default=None, metavar="OUT", help="save SR images to OUT/<dataset>/")
    p.add_argument("--output-dir", default=None, help="where results.md/json go (default runs/eval/<ckpt>)")
    p.add_argument("--device", default="auto", help="'auto' (CUDA if available), 'cpu', 'cuda:0', ...")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator weights, not the EMA ones")
    p.add_argument("--tile", type=int, default=0, help="tile size in LR pixels (default 0: whole images)")
    p.add_argument("--tile-overlap", type=int, default=16, help="pixels shared by adjacent tiles")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS even if it is available")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace results.md/json and saved images (default: results-N.md/json beside; saved images refused)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    config = EvalConfig(
        checkpoint=args.checkpoint,
        data=list(args.data),
        lr_data=args.lr_data,
        scale=args.scale,
        save_images=args.save_images,
        output_dir=args.output_dir,
        device=args.device,
        use_ema=not args.no_ema,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        lpips=not args.no_lpips,
        overwrite=args.overwrite,
    )
    try:
        results = evaluate(config)
    except (ValueError, OSError) as err:  # bad input: checkpoint, folders, options
        print(f"error: {err}", file=sys.stderr)
        return 2
    output_dir = Path(config.output_dir or Path("runs") / "eval" / Path(config.checkpoint).stem)
    md, js = write_results(results, output_dir, overwrite=config.overwrite)
    print(results_markdown(results))
    if md.stem != "results":
        print(f"{output_dir / 'results.md'} exists: kept it (--overwrite replaces it)")
    print(f"wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
