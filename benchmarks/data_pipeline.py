"""Benchmark of the training data pipeline alone: does one data-loader worker keep up with the GPU step?

    python -m benchmarks.data_pipeline [--hr DIR] [--hr-crop 128] [--batch 16] [--step-ms 154,58] [--quick]
    python benchmarks/data_pipeline.py ...          (the same)

What one worker does for one batch, on one thread (as a ``DataLoader`` worker runs): read the image,
take a random ``--hr-crop`` square, flip/rotate it, make its LR (MATLAB bicubic x1/4, 8 bits), and
collate ``--batch`` samples. Three ways to store the training images, timed on the same samples:

* ``png``: a folder of whole HR images, decoded for every crop (``data.train_hr=DIR``);
* ``packed``: the same images decoded once into one memory-mapped file (``prepare --packed``); the
  crops are the same as ``png``'s;
* ``crops``: ``prepare``'s 192 px sub-images with their LR PNGs (``data.train_hr/train_lr``): a small
  decode, no LR synthesis; other crops than ``png``'s (a random ``--hr-crop`` inside each sub-image).

Each row gives the time per sample of each stage (read, crop + flip, LR, collate per sample), the
samples/s of one worker, and the workers needed per GPU for each ``--step-ms`` step time:
``ceil(batch / (samples/s x step))``. Times are CPU seconds of this one-thread process (on an idle
core the same as wall time; on a shared, busy machine wall time would mostly measure the others).
Without ``--hr``, DIV2K-sized images (2040 x 1356) are made from the built-in sample photos (bicubic
upscaled, so they compress and decode like photographs).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from PIL import Image
from torch.utils.data import default_collate

from gramgan import benchmarking as harness
from gramgan.data.augment import apply_dihedral, random_crop_box, random_dihedral
from gramgan.data.datasets import FolderSource, PairedRandomCropDataset, RandomCropDataset
from gramgan.data.lr import synthesize_lr
from gramgan.data.packed import PackedSource
from gramgan.data.prepare import prepare, prepare_packed
from gramgan.data.sampler import SeededSampler

DIV2K_SIZE = (1356, 2040)  # (height, width) of most DIV2K training images
PREPARED_CROP = 192  # the paper's sub-images (docs/training.md)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hr", help="a folder of HR training images (default: DIV2K-sized images made here)")
    parser.add_argument("--images", type=int, default=6, help="how many images to make without --hr (6)")
    parser.add_argument("--hr-crop", type=int, default=128, help="HR crop size (128, the fast-path recipe)")
    parser.add_argument("--batch", type=int, default=16, help="samples per batch (16)")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--step-ms", default="154,58", help="GPU step times to keep up with, ms (154,58)")
    parser.add_argument("--batches", type=int, default=8, help="batches timed per storage (8)")
    parser.add_argument("--quick", action="store_true", help="2 small images, 2 batches (a smoke run)")
    parser.add_argument("--out", help="output folder (default benchmarks/results/<device>-<date>)")
    return parser.parse_args(argv)


def make_images(folder: Path, count: int, size: tuple[int, int]) -> Path:
    """``count`` PNGs of ``size`` (h, w), bicubic upscales of the built-in sample photos."""
    from gramgan.data.samples import sample_source

    photos = sample_source("train")
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        photo = photos.load(k % len(photos)).permute(1, 2, 0).numpy()
        image = Image.fromarray(photo).resize((size[1], size[0]), Image.BICUBIC)
        image.save(folder / f"{k:04d}.png")
    return folder


def _clock() -> float:
    """The process's CPU time: one thread works, so on an idle core this is the wall time, and a busy
    shared machine does not inflate it."""
    return time.process_time()


def _timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = _clock()
    result = function()
    return _clock() - start, result


def stage_times(dataset: RandomCropDataset | PairedRandomCropDataset, keys: list[tuple[int, int]]) -> dict[str, float]:
    """Seconds per sample of each stage, by running the stages one at a time over ``keys`` (a random-crop
    dataset over whole images; the paired one reads its LR instead of making it)."""
    totals = dict.fromkeys(("read", "crop_flip", "lr", "collate"), 0.0)
    samples = []
    paired = isinstance(dataset, PairedRandomCropDataset)
    for index, seed in keys:
        generator = torch.Generator().manual_seed(seed)
        if paired:  # reading the pair, cropping and flipping both: one call
            t, sample = _timed(lambda key=(index, seed): dataset[key])
            totals["read"] += t
            samples.append(sample)
            continue
        t, image = _timed(lambda index=index: dataset.source.load(index % len(dataset.source)))
        totals["read"] += t

        def crop_flip(image=image, generator=generator):
            y, x = random_crop_box(image.shape[-2], image.shape[-1], dataset.hr_crop, generator, align=dataset.scale)
            crop = image[:, y : y + dataset.hr_crop, x : x + dataset.hr_crop]
            return apply_dihedral(crop, random_dihedral(generator, *dataset.flips)).float() / 255.0

        t, hr = _timed(crop_flip)
        totals["crop_flip"] += t
        t, lr = _timed(lambda hr=hr: synthesize_lr(hr, dataset.scale))
        totals["lr"] += t
        samples.append({"lr": lr, "hr": hr, "name": ""})
    batch = len(samples)  # one collate of all samples, per sample
    totals["collate"], _ = _timed(lambda: default_collate(samples))
    times = {stage: seconds / batch for stage, seconds in totals.items()}
    return {**times, "crop_flip": None, "lr": None} if paired else times


def pipeline_rate(dataset: Any, keys: list[tuple[int, int]], batch: int) -> float:
    """Samples per second of the whole pipeline (``dataset[key]`` and collate), batch by batch."""
    start = _clock()
    for first in range(0, len(keys) - batch + 1, batch):
        default_collate([dataset[key] for key in keys[first : first + batch]])
    return (len(keys) // batch * batch) / (_clock() - start)


def workers_needed(rate: float, batch: int, step_s: float) -> int:
    """Workers that together make one batch per step, each at ``rate`` samples/s."""
    return math.ceil(batch / (rate * step_s))


def measure(name: str, dataset: Any, args: argparse.Namespace, steps_s: list[float]) -> dict[str, Any]:
    sampler = SeededSampler(dataset, seed=0)
    keys = list(sampler)[: args.batches * args.batch]
    while len(keys) < args.batches * args.batch:  # a small set: more epochs
        sampler.set_epoch(sampler.epoch + 1)
        keys += list(sampler)[: args.batches * args.batch - len(keys)]
    pipeline_rate(dataset, keys[: args.batch], args.batch)  # warm-up: page cache, first-call costs
    stages = stage_times(dataset, keys)
    rate = pipeline_rate(dataset, keys, args.batch)
    row = {"storage": name, **{f"{stage}_ms": s and 1e3 * s for stage, s in stages.items()}, "samples_per_s": rate}
    row.update({f"workers_{1e3 * s:.0f}ms": workers_needed(rate, args.batch, s) for s in steps_s})
    return row


def format_rows(rows: list[dict[str, Any]], steps_s: list[float]) -> str:
    steps = [f"{1e3 * s:.0f}ms" for s in steps_s]
    header = ["storage", "read", "crop+flip", "LR", "collate", "samples/s", *[f"workers @{s}" for s in steps]]
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for r in rows:
        stages = ("read_ms", "crop_flip_ms", "lr_ms", "collate_ms")
        cells = [r["storage"], *("(in read)" if r[k] is None else f"{r[k]:.2f}" for k in stages)]
        cells += [f"{r['samples_per_s']:.0f}", *(str(r[f"workers_{s}"]) for s in steps)]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark; returns what it wrote to JSON."""
    args = parse_args(argv)
    if args.quick:
        args.images, args.batches = 2, 2
    steps_s = [float(ms) / 1e3 for ms in args.step_ms.split(",")]
    torch.set_num_threads(1)  # what a DataLoader worker uses
    device = torch.device("cpu")
    out_dir = harness.results_dir(args.out, device)
    size = (384, 512) if args.quick else DIV2K_SIZE
    common = {"scale": args.scale, "hr_crop": args.hr_crop, "seed": 0}
    with tempfile.TemporaryDirectory(prefix="data_pipeline_") as tmp:
        work = Path(tmp)
        folder = Path(args.hr) if args.hr else make_images(work / "hr", args.images, size)
        array, _, _ = prepare_packed(folder, work / "packed", progress=False)
        crop = max(PREPARED_CROP, args.hr_crop)
        prepared = prepare(folder, work / "crops", crop=crop, scale=args.scale, progress=False)
        datasets = {
            "png": RandomCropDataset(FolderSource(folder), **common),
            "packed": RandomCropDataset(PackedSource(array), **common),
            "crops": PairedRandomCropDataset(prepared.hr_dir, prepared.lr_dir, **common),
        }
        rows = [measure(name, dataset, args, steps_s) for name, dataset in datasets.items()]
        images = len(datasets["png"].source)
        sizes = sorted({tuple(datasets["png"].source.load(k).shape[1:]) for k in range(images)})
    env = harness.environment(device)
    title = (
        f"data pipeline, one worker (1 thread) on {env['device']}: {images} images {sizes[0][1]}x{sizes[0][0]}"
        f"{' ...' if len(sizes) > 1 else ''}, HR crop {args.hr_crop}, x{args.scale}, batch {args.batch}"
    )
    table = f"{title}\nCPU ms per sample by stage; workers per GPU for each step time\n\n{format_rows(rows, steps_s)}\n"
    print(table)
    result = {"title": title, "environment": env, "args": vars(args), "rows": rows, "partial": False}
    harness.write_text(out_dir / "data_pipeline.txt", table)
    harness.write_json(out_dir / "data_pipeline.json", result)
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
