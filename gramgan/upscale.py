"""Upscale image files with a trained generator: ``python -m gramgan.upscale``.

Example::

    python -m gramgan.upscale photos/ extra.png --checkpoint runs/gan/last.pt --output out/ \\
        --tile 256 --tile-overlap 16 --outscale 3.5 --half

Inputs are files or folders (their images, not recursive); each result is written to ``--output``
as ``<stem><suffix>.<ext>``. Grey images go through the network as three equal channels and come
back grey (BT.601 luma of the output); the alpha channel is upscaled on its own, with bicubic
``imresize`` by default or with the network (``--alpha-upsampler model``: alpha replicated to three
channels, the output's channel mean taken). 16-bit PNGs stay 16-bit. ``--outscale`` resizes the
network's output with MATLAB-style bicubic to the requested overall scale. Images smaller than
64 pixels are mirror-padded for the network and cropped back (see ``gramgan.inference.tiling``).

Exit status: 0 when every image was written; 1 when some could not be read, upscaled or written
(the others are, and each failure is listed at the end with its reason); 2 for a usage or input
error found before any work (bad option, missing input, unusable checkpoint): nothing is written.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm import tqdm

from gramgan.data.resize import imresize
from gramgan.inference import (
    ImageData,
    collect_images,
    load_generator,
    pick_device,
    read_image,
    super_resolve,
    write_image,
)

__all__ = ["UpscaleConfig", "UpscaleReport", "main", "output_path", "upscale_files", "upscale_image"]

logger = logging.getLogger(__name__)

_LUMA = (0.299, 0.587, 0.114)
_PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class UpscaleConfig:
    """Options of ``python -m gramgan.upscale``.

    Attributes:
        inputs: image files and/or folders of images.
        checkpoint: generator checkpoint (ours, BasicSR/Real-ESRGAN, or a bare RRDBNet state dict).
        output: folder for the results (created if missing).
        scale: expected model scale; None accepts the checkpoint's. A mismatch is an error.
        outscale: overall output scale; None means the model's scale.
        tile: tile size in input pixels; 0 runs each image whole.
        tile_overlap: input pixels shared by adjacent tiles (see ``gramgan.inference.tiling``).
        precision: "fp32", or "fp16" / "bf16" (CUDA only).
        device: "auto" (CUDA if available, else CPU), or any torch device string.
        use_ema: take the EMA weights when the checkpoint has them.
        alpha_upsampler: "bicubic" (imresize) or "model" for the alpha channel.
        suffix: appended to each output file's stem.
        ext: output extension: "auto" keeps the input's (PNG for 16-bit or alpha into JPEG), or
            "png", "jpg", "webp".
    """

    inputs: list[str]
    checkpoint: str
    output: str
    scale: int | None = None
    outscale: float | None = None
    tile: int = 0
    tile_overlap: int = 16
    precision: str = "fp32"
    device: str = "auto"
    use_ema: bool = True
    alpha_upsampler: str = "bicubic"
    suffix: str = ""
    ext: str = "auto"


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    return x if tuple(x.shape[-2:]) == size else imresize(x, size=size)


def upscale_image(
    model: nn.Module,
    image: ImageData,
    *,
    scale: int,
    outscale: float | None = None,
    tile: int = 0,
    tile_overlap: int = 16,
    alpha_upsampler: str = "bicubic",
    device: torch.device | str = "cpu",
) -> ImageData:
    """Super-resolve one image; colour layout, alpha and bit depth are kept (see module docs)."""
    if alpha_upsampler not in ("bicubic", "model"):
        raise ValueError(f"alpha_upsampler must be 'bicubic' or 'model', got {alpha_upsampler!r}")
    h, w = image.size
    factor = scale if outscale is None else outscale
    if factor <= 0:
        raise ValueError(f"outscale must be positive, got {outscale}")
    out_size = (max(1, round(h * factor)), max(1, round(w * factor)))

    def run(rgb: Tensor) -> Tensor:
        # Tiled: the image stays on the CPU and only tiles visit the device, so any size fits.
        x = rgb[None] if tile > 0 else rgb[None].to(device)
        sr = super_resolve(model, x, scale=scale, tile=tile, tile_overlap=tile_overlap)
        return _resize(sr[0].clamp(0.0, 1.0), out_size).clamp(0.0, 1.0).cpu()

    grey = image.color.shape[0] == 1
    sr = run(image.color.expand(3, -1, -1) if grey else image.color)
    if grey:
        luma = torch.tensor(_LUMA, dtype=sr.dtype).view(3, 1, 1)
        sr = (sr * luma).sum(0, keepdim=True)
    alpha = None
    if image.alpha is not None:
        if alpha_upsampler == "model":
            alpha = run(image.alpha.expand(3, -1, -1)).mean(0, keepdim=True)
        else:
            alpha = _resize(image.alpha.to(device), out_size).clamp(0.0, 1.0).cpu()
    return ImageData(sr, alpha, image.bit_depth)


def output_path(src: Path, image: ImageData, output: Path, suffix: str, ext: str) -> Path:
    """Where the result for ``src`` goes: ``output/<stem><suffix>.<ext>`` (see :class:`UpscaleConfig`)."""
    if ext == "auto":
        chosen = src.suffix.lower()
        if image.bit_depth == 16 or (image.alpha is not None and chosen in (".jpg", ".jpeg")):
            chosen = ".png"
    else:
        chosen = "." + ext.lower().lstrip(".")
    return output / f"{src.stem}{suffix}{chosen}"


@dataclass
class UpscaleReport:
    """What :func:`upscale_files` did: the files written and, for each input that failed, its reason."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def _check_options(config: UpscaleConfig, device: torch.device) -> None:
    """Usage errors, raised as ``ValueError`` before any work is done."""
    if config.precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(_PRECISIONS)}, got {config.precision!r}")
    if config.precision != "fp32" and device.type != "cuda":
        raise ValueError(
            f"{config.precision} inference needs a CUDA device, but the device is {device}; "
            "drop --half/--bf16 to run in float32"
        )
    if config.tile < 0 or config.tile_overlap < 0:
        raise ValueError("--tile and --tile-overlap must be >= 0")
    if config.tile and config.tile_overlap >= config.tile:
        raise ValueError(f"--tile-overlap ({config.tile_overlap}) must be smaller than --tile ({config.tile})")


def _refuse_to_overwrite_inputs(files: list[Path], config: UpscaleConfig) -> None:
    """``FileExistsError`` if an output could land on an input (either extension ``auto`` may pick)."""
    sources = {f.resolve() for f in files}
    output = Path(config.output)
    for src in files:
        exts = (src.suffix.lower(), ".png") if config.ext == "auto" else ("." + config.ext,)
        for ext in exts:
            if (output / f"{src.stem}{config.suffix}{ext}").resolve() in sources:
                raise FileExistsError(f"refusing to overwrite input {src}: choose another --output or --suffix")


def upscale_files(config: UpscaleConfig) -> UpscaleReport:
    """Run :func:`upscale_image` on every input of ``config``.

    Bad options, missing inputs and an unusable checkpoint raise (nothing is written); a file that
    cannot be read, upscaled or written is recorded in the report and the others go on.
    """
    device = pick_device(config.device)
    _check_options(config, device)
    files = collect_images(config.inputs)
    _refuse_to_overwrite_inputs(files, config)
    output = Path(config.output)
    model, weights = load_generator(config.checkpoint, scale=config.scale, prefer_ema=config.use_ema, device=device)
    model = model.to(_PRECISIONS[config.precision])
    scale = weights.arch["scale"]
    logger.info("loaded %s (x%d) from %s", weights.description, scale, config.checkpoint)
    for note in weights.notes:
        logger.warning("%s", note)
    output.mkdir(parents=True, exist_ok=True)
    report = UpscaleReport()
    for src in tqdm(files, desc="upscale", unit="img", disable=len(files) < 2):
        try:
            report.written.append(_upscale_file(model, src, scale, device, config))
        except (OSError, ValueError) as err:  # this file only: unreadable, unwritable, too large...
            logger.warning("%s: skipped: %s", src, err)
            report.failed.append((src, str(err)))
    return report


def _upscale_file(model: nn.Module, src: Path, scale: int, device: torch.device, config: UpscaleConfig) -> Path:
    """Read, upscale and write one file; returns the path written."""
    image = read_image(src)
    dst = output_path(src, image, Path(config.output), config.suffix, config.ext)
    result = upscale_image(
        model,
        image,
        scale=scale,
        outscale=config.outscale,
        tile=config.tile,
        tile_overlap=config.tile_overlap,
        alpha_upsampler=config.alpha_upsampler,
        device=device,
    )
    if result.bit_depth == 16 and dst.suffix != ".png":
        logger.warning("%s: %s cannot hold 16 bits; writing 8-bit", src, dst.suffix)
        result.bit_depth = 8
    if result.alpha is not None and dst.suffix in (".jpg", ".jpeg"):
        logger.warning("%s: JPEG has no alpha channel; dropping it", src)
        result.alpha = None
    write_image(dst, result)
    return dst


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m gramgan.upscale``."""
    p = argparse.ArgumentParser(
        prog="python -m gramgan.upscale",
        description="Super-resolve image files with an RRDB generator (ours or a public ESRGAN/BasicSR one)",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    p.add_argument("--checkpoint", required=True, help="generator checkpoint (.pt/.pth/.safetensors)")
    p.add_argument("--output", "-o", required=True, help="output folder")
    p.add_argument("--scale", type=int, default=None, help="expected model scale (error if it differs)")
    p.add_argument("--outscale", type=float, default=None, help="overall output scale (default: model's)")
    p.add_argument("--tile", type=int, default=0, help="tile size in input pixels; 0: whole images (default)")
    p.add_argument("--tile-overlap", type=int, default=16, help="pixels shared by adjacent tiles (default 16)")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--half", action="store_true", help="run in float16 (CUDA only)")
    precision.add_argument("--bf16", action="store_true", help="run in bfloat16 (CUDA only)")
    p.add_argument("--device", default="auto", help="'auto' (CUDA if available), 'cpu', 'cuda:0', ...")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator weights, not the EMA ones")
    p.add_argument("--alpha-upsampler", choices=("bicubic", "model"), default="bicubic", help="how to upscale alpha")
    p.add_argument("--suffix", default="", help="appended to output file stems (default: none)")
    p.add_argument("--ext", default="auto", choices=("auto", "png", "jpg", "webp"), help="output format")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    config = UpscaleConfig(
        inputs=list(args.inputs),
        checkpoint=args.checkpoint,
        output=args.output,
        scale=args.scale,
        outscale=args.outscale,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        precision="fp16" if args.half else "bf16" if args.bf16 else "fp32",
        device=args.device,
        use_ema=not args.no_ema,
        alpha_upsampler=args.alpha_upsampler,
        suffix=args.suffix,
        ext=args.ext,
    )
    try:
        report = upscale_files(config)
    except (ValueError, OSError) as err:  # bad input: options, checkpoint, missing files
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(report.written)} image(s) to {config.output}")
    if report.failed:
        total = len(report.failed) + len(report.written)
        print(f"error: {len(report.failed)} of {total} image(s) failed:", file=sys.stderr)
        for src, reason in report.failed:
            print(f"  {reason}" if str(src) in reason else f"  {src}: {reason}", file=sys.stderr)
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main())
