"""``python -m gramgan.ablation``: train, score and picture the loss-term ablation (see ``docs/ablation.md``).

Examples::

    python -m gramgan.ablation --preset tiny                 # about 15 minutes on a 2-core CPU
    python -m gramgan.ablation --preset paper --output runs/ablation data.train_hr=... data.train_lr=...
    python -m gramgan.ablation --preset tiny --only gramgan gan.train.total_iters=400
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from gramgan.ablation.experiment import run_ablation
from gramgan.ablation.plan import AblationError, ablation_presets, load_plan
from gramgan.ablation.report import loss_terms
from gramgan.ablation.runner import generator_path


def build_parser() -> argparse.ArgumentParser:
    presets = ", ".join(ablation_presets())
    p = argparse.ArgumentParser(
        prog="python -m gramgan.ablation",
        description="Train every loss-term variant from one shared psnr-stage generator, score them "
        "(PSNR-Y, SSIM-Y, LPIPS when available, Gram distance) and picture them side by side.",
    )
    p.add_argument("--preset", default=None, help=f"a shipped ablation ({presets}; default tiny)")
    p.add_argument("--config", default=None, metavar="FILE", help="an ablation YAML file instead of a preset")
    p.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="VARIANT",
        help="train only this variant (repeatable; the psnr stage too when it is missing)",
    )
    p.add_argument("--output", default=None, metavar="DIR", help="output folder (default: the preset's output)")
    p.add_argument("--list", action="store_true", help="list the variants, their iterations and loss terms, then exit")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="training keys for every variant (train.total_iters=50), or keys of the ablation "
        "file's sections (gan.train.total_iters=100, eval.picture_crop=96, shared_generator=PATH)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_intermixed_args(argv)
    try:
        plan = load_plan(preset=args.preset, path=args.config, overrides=args.overrides)
        for name in args.only or []:
            plan.variant(name)
        root = Path(args.output or plan.output)
        if args.list:
            psnr_generator = generator_path(plan, root, plan.psnr_variant)
            for variant in plan.variants:
                cfg = plan.train_config(variant, psnr_generator)
                print(f"{variant.name:16s} {cfg.train.total_iters:>7d} iterations  {loss_terms(cfg)}")
            return 0
        command = shlex.join(["python", "-m", "gramgan.ablation", *argv])
        results = run_ablation(plan, root, only=args.only, command=command)
    except (AblationError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print((root / "ablation.md").read_text())
    if results["not_run"]:
        print(f"not run yet: {', '.join(results['not_run'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
