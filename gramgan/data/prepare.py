"""Cut HR images (DIV2K train) into non-overlapping square crops and write each crop's LR.

    python -m gramgan.data.prepare SRC DST [--crop 192] [--scale 4] [--workers N]
    python -m gramgan.data.prepare SRC DST --packed     # one memory-mappable file instead (below)

Rule (docs/training.md): for an H x W image, crops of ``crop`` x ``crop`` at top-left corners
``(y, x) = (i * crop, j * crop)`` for ``i < floor(H / crop)``, ``j < floor(W / crop)``: a sliding
window with stride = crop, starting at the top-left pixel, the right and bottom remainders dropped.
So an image gives ``floor(H/crop) * floor(W/crop)`` crops, numbered ``_s001``, ``_s002``, ...
row-major. The paper reports 44,226 crops for DIV2K's 800 training images at 192.

Each crop's LR is ``synthesize_lr(crop, scale)`` (MATLAB-style bicubic of the crop itself, clamped
and rounded to 8 bits), the same LR that on-the-fly training makes for that crop.

Output: ``DST/hr/<stem>_sNNN.png`` and ``DST/lr_x<scale>/<stem>_sNNN.png`` (train with
``data.train_hr=DST/hr data.train_lr=DST/lr_x4``), plus ``DST/prepare.json`` with the counts.
Safe to re-run: a crop whose two PNGs exist with the right sizes is skipped; files are written to
a temporary name and renamed (:mod:`gramgan.atomic`), so an interrupted run never leaves a half-written
PNG behind.

``--packed`` writes no crops: it decodes every image of SRC once into ``DST/hr.npy`` and its index
``DST/hr.json`` (:mod:`gramgan.data.packed`; train with ``data.train_hr=DST/hr.npy``). Training then takes
random crops with LR made on the fly exactly as from the PNG folder (the same crops for the same seed),
without decoding a whole image per crop.

A source image that cannot be read stops the run before anything is written, with one line naming the
file (exit status 2, like every usage or input error); with ``--skip-broken`` such images are skipped,
each named in a warning, and counted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gramgan.atomic import atomic_path, atomic_write_text
from gramgan.data.lr import synthesize_lr
from gramgan.images import ImageReadError, list_images, read_rgb8

__all__ = ["PrepareResult", "crop_boxes", "main", "prepare", "prepare_packed"]


@dataclass
class PrepareResult:
    """Counts of one ``prepare`` run."""

    images: int
    crops: int
    written: int
    skipped: int
    hr_dir: Path
    lr_dir: Path
    broken: list[Path]


def crop_boxes(height: int, width: int, crop: int) -> list[tuple[int, int]]:
    """Top-left corners of the non-overlapping crops, row-major (see the module docstring)."""
    return [(i * crop, j * crop) for i in range(height // crop) for j in range(width // crop)]


def _png_size(path: Path) -> tuple[int, int] | None:
    """(height, width) from a PNG's header, or None if missing or unreadable."""
    try:
        with Image.open(path) as img:
            return img.height, img.width
    except (OSError, ValueError):
        return None


def save_png_atomic(array: np.ndarray, path: Path) -> None:
    """Write an (H, W, 3) uint8 array as PNG, atomically."""
    with atomic_path(path, suffix=".tmp.png") as tmp:
        Image.fromarray(array).save(tmp, format="PNG", compress_level=3)


def _to_hwc_uint8(x: torch.Tensor) -> np.ndarray:
    if x.dtype != torch.uint8:
        x = torch.round(x.clamp(0, 1) * 255).to(torch.uint8)
    return np.ascontiguousarray(x.permute(1, 2, 0).numpy())


def _prepare_one(args: tuple[Path, tuple[int, int], Path, Path, int, int, bool]) -> tuple[int, int, int, bool]:
    """Crop one image of the given (height, width); returns (crops, written, skipped, broken)."""
    src, (height, width), hr_dir, lr_dir, crop, scale, skip_broken = args
    try:
        return (*_crop_image(src, height, width, hr_dir, lr_dir, crop, scale), False)
    except ImageReadError as err:
        if not skip_broken:
            raise
        print(f"warning: skipped {err}", file=sys.stderr)
        return 0, 0, 0, True


def _crop_image(
    src: Path, height: int, width: int, hr_dir: Path, lr_dir: Path, crop: int, scale: int
) -> tuple[int, int, int]:
    """Write the crops of one image that are missing or incomplete; returns (crops, written, skipped)."""
    boxes = crop_boxes(height, width, crop)
    names = [f"{src.stem}_s{k + 1:03d}.png" for k in range(len(boxes))]
    lr_size = crop // scale
    todo = [
        k
        for k, name in enumerate(names)
        if _png_size(hr_dir / name) != (crop, crop) or _png_size(lr_dir / name) != (lr_size, lr_size)
    ]
    if todo:
        image = read_rgb8(src)
        hr = torch.stack([image[:, y : y + crop, x : x + crop] for y, x in (boxes[k] for k in todo)])
        lr = synthesize_lr(hr.float() / 255.0, scale)
        for row, k in enumerate(todo):
            save_png_atomic(_to_hwc_uint8(lr[row]), lr_dir / names[k])
            save_png_atomic(_to_hwc_uint8(hr[row]), hr_dir / names[k])
    return len(boxes), len(todo), len(boxes) - len(todo)


def _image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the image header; errors name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as img:
            return img.height, img.width
    except (OSError, ValueError) as err:
        raise ImageReadError(path, "not an image file, or an image format Pillow cannot read") from err


def _source_sizes(sources: list[Path], skip_broken: bool) -> tuple[dict[Path, tuple[int, int]], list[Path]]:
    """Every readable source's (height, width) from its header, and the unreadable ones (which raise
    :class:`ImageReadError` unless ``skip_broken``): checked before anything is written."""
    sizes, broken = {}, []
    for path in sources:
        try:
            sizes[path] = _image_size(path)
        except ImageReadError as err:
            if not skip_broken:
                raise
            print(f"warning: skipped {err}", file=sys.stderr)
            broken.append(path)
    return sizes, broken


def _init_worker() -> None:
    torch.set_num_threads(1)


def prepare(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    crop: int = 192,
    scale: int = 4,
    workers: int = 0,
    progress: bool = True,
    skip_broken: bool = False,
) -> PrepareResult:
    """Cut every image of ``src`` into crops under ``dst`` (see the module docstring).

    ``workers`` > 0 uses that many processes. Raises ``FileNotFoundError`` / ``ImageReadError``
    naming the file for a missing or corrupt image (before writing anything, when its header is
    unreadable); ``skip_broken`` skips such images instead and lists them in ``PrepareResult.broken``.
    """
    from tqdm import tqdm

    if crop < scale or crop % scale:
        raise ValueError(f"crop ({crop}) must be a positive multiple of the scale ({scale})")
    sources = list_images(src)
    sizes, broken = _source_sizes(sources, skip_broken)
    hr_dir, lr_dir = Path(dst) / "hr", Path(dst) / f"lr_x{scale}"
    hr_dir.mkdir(parents=True, exist_ok=True)
    lr_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(path, size, hr_dir, lr_dir, crop, scale, skip_broken) for path, size in sizes.items()]
    totals = [0, 0, 0]
    bar = tqdm(total=len(jobs), unit="img", desc="prepare", disable=not progress)
    executor = ProcessPoolExecutor(workers, initializer=_init_worker) if workers > 0 else None
    try:
        results = executor.map(_prepare_one, jobs) if executor else map(_prepare_one, jobs)
        for (path, *_), (*counts, unreadable) in zip(jobs, results):
            totals = [a + b for a, b in zip(totals, counts)]
            broken += [path] if unreadable else []
            bar.update(1)
            bar.set_postfix(crops=totals[0], written=totals[1])
    finally:
        bar.close()
        if executor:
            executor.shutdown(cancel_futures=True)
    result = PrepareResult(len(sources) - len(broken), totals[0], totals[1], totals[2], hr_dir, lr_dir, broken)
    manifest = {
        "source": str(Path(src).resolve()),
        "crop": crop,
        "scale": scale,
        "images": result.images,
        "crops": result.crops,
        "broken": [str(path) for path in broken],
        "rule": "non-overlapping crop x crop windows, stride = crop, from the top-left, remainder dropped",
    }
    atomic_write_text(Path(dst) / "prepare.json", json.dumps(manifest, indent=2))
    return result


def prepare_packed(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    workers: int = 0,
    progress: bool = True,
    skip_broken: bool = False,
) -> tuple[Path, int, list[Path]]:
    """Decode every image of ``src`` into ``dst/hr.npy`` (:mod:`gramgan.data.packed`); returns the file,
    the number of images and the unreadable ones skipped (``skip_broken``; else they raise, before
    anything is written)."""
    from tqdm import tqdm

    from gramgan.data.packed import write_packed

    sizes, broken = _source_sizes(list_images(src), skip_broken)
    if not sizes:
        raise ValueError(f"no readable images in {src}")
    array_path = Path(dst) / "hr.npy"
    bar = tqdm(total=len(sizes), unit="img", desc="pack", disable=not progress)
    executor = ProcessPoolExecutor(workers, initializer=_init_worker) if workers > 0 else None
    try:
        decoded = executor.map(read_rgb8, sizes) if executor else None
        count = write_packed(src, array_path, sizes, decoded, progress=lambda: bar.update(1))
    finally:
        bar.close()
        if executor:
            executor.shutdown(cancel_futures=True)
    return array_path, count, broken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gramgan.data.prepare",
        description="Cut HR images into non-overlapping crops (stride = crop, remainder dropped) with their "
        "bicubic LR, for paired training.",
    )
    parser.add_argument("src", help="folder of HR images (e.g. DIV2K/DIV2K_train_HR)")
    parser.add_argument("dst", help="output folder; gets hr/ and lr_x<scale>/")
    parser.add_argument("--crop", type=int, default=192, help="HR crop size and stride (default 192)")
    parser.add_argument("--scale", type=int, default=4, help="downscaling factor for the LR (default 4)")
    parser.add_argument(
        "--workers", type=int, default=min(8, os.cpu_count() or 1), help="worker processes (0: in-process)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--skip-broken",
        action="store_true",
        help="skip unreadable images (named in a warning, counted) instead of stopping",
    )
    parser.add_argument(
        "--packed",
        action="store_true",
        help="instead of crops, decode every image once into DST/hr.npy, one memory-mappable file "
        "(train with data.train_hr=DST/hr.npy)",
    )
    args = parser.parse_args(argv)
    if args.packed:
        return _main_packed(args)
    try:
        result = prepare(
            args.src, args.dst, args.crop, args.scale, args.workers, not args.no_progress, args.skip_broken
        )
    except (OSError, ValueError) as err:  # input errors: one line, exit status 2 like a usage error
        print(f"error: {err}", file=sys.stderr)
        return 2
    broken = f", {len(result.broken)} unreadable images skipped" if result.broken else ""
    print(
        f"{result.crops} crops of {args.crop}x{args.crop} from {result.images} images "
        f"({result.written} written, {result.skipped} already complete{broken}) -> {result.hr_dir}, {result.lr_dir}"
    )
    return 0


def _main_packed(args: argparse.Namespace) -> int:
    try:
        path, count, broken = prepare_packed(args.src, args.dst, args.workers, not args.no_progress, args.skip_broken)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    skipped = f", {len(broken)} unreadable images skipped" if broken else ""
    print(f"{count} images packed into {path} ({path.stat().st_size / 2**20:.0f} MiB{skipped}); train with "
          f"data.train_hr={path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
