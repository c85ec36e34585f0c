"""Benchmark of one GAN training iteration (G step + D step) with and without the Gram-GAN terms.

    python -m benchmarks.train_step [--device cpu|cuda] [--quick] [--out DIR]

Variants, all on the same models, optimisers and batch:

* ``esrgan``: the iteration without the Gram-GAN terms: L1 content + VGG perceptual + RaGAN on
  unmasked images (G), RaGAN on unmasked images (D). No texture loss, no discriminator perceptual
  loss, no texture mask.
* ``gramgan[<backend>]``: the full ``GramGANLoss`` (texture loss with its candidate database, the
  discriminator perceptual loss, the mask) with the ops on ``<backend>``: every backend that runs here.
* ``gramgan[best] -texture``, ``-disc_perceptual`` and ``mask only``: the full loss with one term off,
  so that each new term's share is visible.

The share of the Gram-GAN terms is ``(t[gramgan best] - t[esrgan]) / t[gramgan best]`` (goal < 5 %).
Sizes: on a GPU the paper's (RRDB 23 blocks, batch 8, 48 -> 192); on the CPU a reduced default
(``--quick``: smaller still), every size a flag. VGG19 runs on random weights (no download): the
timing does not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from gramgan import benchmarking as harness
from gramgan.benchmarking.training import Size, Trainer
from gramgan.losses import GramGANLossConfig

OP_BACKENDS = ("reference", "cpu", "triton", "cuda")

SIZES = {
    ("cuda", False): Size(blocks=23, features=64, batch=8, lr_size=48),  # the paper's
    ("cuda", True): Size(blocks=23, features=64, batch=8, lr_size=48),
    ("cpu", False): Size(blocks=4, features=64, batch=2, lr_size=32),
    ("cpu", True): Size(blocks=1, features=32, batch=2, lr_size=16),  # BatchNorm needs batch >= 2 at 64 px
}


def variants(best: str, runnable: Sequence[str], short: bool = False) -> list[tuple[str, GramGANLossConfig | None]]:
    """(name, loss config or None for the baseline), in table order; ``short``: the first two only."""
    full = GramGANLossConfig(backend=best)
    found: list[tuple[str, GramGANLossConfig | None]] = [("esrgan (no Gram-GAN terms)", None)]
    found.append((f"gramgan[{best}] (best here)", full))
    if short:
        return found
    found += [(f"gramgan[{name}]", replace(full, backend=name)) for name in runnable if name != best]
    found.append((f"gramgan[{best}] -texture", replace(full, texture_weight=0.0)))
    found.append((f"gramgan[{best}] -disc_perceptual", replace(full, disc_perceptual_weight=0.0)))
    found.append((f"gramgan[{best}] mask only", replace(full, texture_weight=0.0, disc_perceptual_weight=0.0)))
    return found


def time_variants(
    trainer: Trainer,
    named: Sequence[tuple[str, GramGANLossConfig | None]],
    device: torch.device,
    config: harness.RunConfig,
    repeats: int = 3,
) -> list[dict[str, Any]]:
    """Times one iteration of every variant: median over at least ``repeats`` iterations."""
    rows: list[dict[str, Any]] = []
    trainer.iteration(None)  # untimed: creates the optimisers' state, so no variant's memory counts it
    harness.synchronize(device)
    for name, loss_config in named:
        row: dict[str, Any] = {"variant": name, "backend": loss_config.backend if loss_config else None}
        loss_fn = trainer.gramgan_loss(loss_config) if loss_config is not None else None
        fn: Callable[[], Any] = lambda loss_fn=loss_fn: trainer.iteration(loss_fn)  # noqa: E731
        try:
            _, first_s, _ = harness.probe_call(fn, device, track_memory=False)  # may JIT / autotune kernels
            _, call_s, peak = harness.probe_call(fn, device, config.track_memory)
            # At least `repeats` iterations per variant (an iteration is seconds long on the CPU).
            timing = harness.time_function(fn, device, max(config.min_time_s, repeats * call_s))
        except Exception as error:  # noqa: BLE001 - a failing variant is a result, not a crash
            row.update(status="failed", reason=harness.failure_reason(error))
        else:
            row.update(status="ok", **timing.fields(), first_call_ms=first_s * 1e3, peak_mem_bytes=peak)
        if config.verbose:
            shown = f"{row['median_ms']:.1f} ms" if row["status"] == "ok" else row["status"] + ": " + row["reason"]
            print(f"  {name:<36} {shown}", file=sys.stderr, flush=True)
        rows.append(row)
        harness.free_memory(device)
    return rows


def shares(rows: Sequence[dict[str, Any]], best: str) -> dict[str, float | None]:
    """Each new term's cost as a fraction of the full iteration (with the best backend)."""
    ms = {row["variant"]: row.get("median_ms") for row in rows if row["status"] == "ok"}
    full = ms.get(f"gramgan[{best}] (best here)")

    def share(without: str) -> float | None:
        other = ms.get(without)
        return None if full is None or other is None else (full - other) / full

    mask_only, base = ms.get(f"gramgan[{best}] mask only"), ms.get("esrgan (no Gram-GAN terms)")
    return {
        "all Gram-GAN terms": share("esrgan (no Gram-GAN terms)"),
        "texture loss (incl. candidates)": share(f"gramgan[{best}] -texture"),
        "disc. perceptual": share(f"gramgan[{best}] -disc_perceptual"),
        "texture mask": None if full is None or mask_only is None or base is None else (mask_only - base) / full,
    }


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    base = next((r["median_ms"] for r in rows if r["variant"].startswith("esrgan") and r["status"] == "ok"), None)
    header = f"{'variant':<36}  {'median ms':>10}  {'p20-p80 ms':>17}  {'vs esrgan':>9}  {'peak MiB':>9}"
    lines = [header, "-" * len(header)]
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"{row['variant']:<36}  {row['status']}: {row['reason']}")
            continue
        ratio = f"{row['median_ms'] / base:.3f}x" if base else "-"
        peak = row.get("peak_mem_bytes")
        lines.append(
            f"{row['variant']:<36}  {row['median_ms']:>10.1f}  {row['p20_ms']:>8.1f}-{row['p80_ms']:<8.1f}  "
            f"{ratio:>9}  {'n/a' if peak is None else f'{peak / 2**20:.0f}':>9}"
        )
    return "\n".join(lines)


def plot(rows: Sequence[dict[str, Any]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [row for row in rows if row["status"] == "ok"]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(ok) + 1.5))
    names = [row["variant"] for row in ok][::-1]
    values = [row["median_ms"] for row in ok][::-1]
    ax.barh(names, values, color=["C1" if n.startswith("esrgan") else "C0" for n in names])
    if ok and ok[0]["variant"].startswith("esrgan"):
        ax.axvline(ok[0]["median_ms"], color="gray", ls="--", lw=1)
    ax.set_xlabel("median ms per iteration (G step + D step)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    harness.save_figure(fig, path)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = harness.base_parser(__doc__, "op backends for the gramgan variants (comma list)")
    parser.add_argument("--blocks", type=int, default=None, help="RRDB blocks (GPU default 23)")
    parser.add_argument("--features", type=int, default=None, help="RRDB width (default 64)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (GPU default 8)")
    parser.add_argument("--lr-size", type=int, default=None, help="LR crop; HR is 4x (GPU default 48; HR >= 64)")
    parser.add_argument("--disc-features", type=int, default=64, help="discriminator nf (default 64, docs/networks.md)")
    parser.add_argument("--no-perceptual", action="store_true", help="drop the VGG term from every variant")
    parser.add_argument("--short", action="store_true", help="only the baseline and the full loss (best backend)")
    parser.add_argument("--repeats", type=int, default=3, help="at least this many timed iterations per variant")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark; returns what it wrote to JSON."""
    args = parse_args(argv)
    harness.apply_threads(args.threads)
    device = harness.pick_device(args.device)
    default = SIZES[(device.type, args.quick)]
    size = Size(
        blocks=args.blocks or default.blocks,
        features=args.features or default.features,
        batch=args.batch or default.batch,
        lr_size=args.lr_size or default.lr_size,
        disc_features=args.disc_features,
    )
    if size.hr_size < 64 or size.hr_size % 32:
        raise SystemExit(f"HR size {size.hr_size} (4 x --lr-size) must be a multiple of 32 from 64 up")
    min_time = args.min_time if args.min_time is not None else (1.0 if device.type == "cuda" else 0.5)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    wanted = [name for name in harness.parse_backends(args.backends) if name in OP_BACKENDS]
    reasons = harness.backend_reasons(device, wanted)
    runnable = [name for name, reason in reasons.items() if reason is None]
    best = harness.auto_backend(device) if args.backends is None else runnable[-1]
    out_dir = harness.results_dir(args.out, device)
    env = harness.environment(device)

    trainer = Trainer(size, device, perceptual=not args.no_perceptual)
    named = variants(best, runnable, args.short)
    config = harness.RunConfig(min_time, not args.no_memory, not args.quiet)
    rows = time_variants(trainer, named, device, config, max(1, args.repeats))
    share = shares(rows, best)
    all_terms = share["all Gram-GAN terms"]
    target = harness.Target(
        f"Gram-GAN terms share of an iteration ({best})",
        None if all_terms is None else 100 * all_terms,
        5,
        "%",
        lower_is_better=True,
    )
    title = (
        f"one G+D iteration on {env['device']}: RRDB {size.blocks} blocks x {size.features}, batch {size.batch}, "
        f"{size.lr_size}->{size.hr_size}, D nf {size.disc_features}{', no VGG' if args.no_perceptual else ''}, "
        f"{env['date_utc'][:10]}"
    )
    skipped = [f"  {name} skipped: {reason}" for name, reason in reasons.items() if reason is not None]
    text = "\n".join(
        [
            title,
            "",
            format_rows(rows),
            *([""] + skipped if skipped else []),
            "",
            "share of the full iteration (t[full] - t[without]) / t[full]:",
            *[f"  {name:<32} {'-' if v is None else f'{100 * v:.1f} %'}" for name, v in share.items()],
            "",
            target.line(),
        ]
    )
    print(text)
    result = {
        "benchmark": "train_step",
        "partial": False,
        "environment": env,
        "args": vars(args),
        "size": {**vars(size), "hr_size": size.hr_size},
        "best_backend": best,
        "backends": reasons,
        "shares": share,
        "targets": [target.as_dict()],
        "rows": rows,
    }
    harness.write_text(out_dir / "train_step.txt", text + "\n")
    harness.write_json(out_dir / "train_step.json", result)
    if not args.no_plot:
        plot(rows, title, out_dir / "train_step.png")
    print(f"\nwrote {out_dir}/train_step.{{txt,json{'' if args.no_plot else ',png'}}}")
    return result


if __name__ == "__main__":
    main()
