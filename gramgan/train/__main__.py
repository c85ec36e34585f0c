"""``python -m gramgan.train``: train a Gram-GAN super-resolution model.

    python -m gramgan.train                                   # the demo (built-in photos, CPU, minutes)
    python -m gramgan.train --preset paper model.pretrained=RRDB_PSNR_x4.pth data.train_hr=...
    python -m gramgan.train --config my.yaml train.batch_size=4 loss.texture_weight=1.0
    python -m gramgan.train --output runs/demo --resume       # continue from the latest checkpoint
    torchrun --nproc_per_node=4 -m gramgan.train --preset paper ...

With ``--resume`` and no ``--config``/``--preset``, the checkpoint's own configuration is used
(overrides still apply); with one, that configuration is used and differences are listed.
``--resume`` (auto) skips unreadable checkpoints with a warning; resuming a finished run changes
nothing. Overrides may stand anywhere on the line. Exit status: 0 done, 2 a usage or input error
(one line naming the key or file), 75 stopped by a signal of ``train.stop_signals`` (SIGTERM, SIGUSR1)
after writing a checkpoint (requeue, then ``--resume auto``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gramgan.train.checkpoint import CheckpointError, latest_readable_checkpoint, list_checkpoints, load_checkpoint
from gramgan.train.config import ConfigError, config_to_dict, diff_configs, load_config
from gramgan.train.data_check import DataError
from gramgan.train.preemption import EXIT_PREEMPTED, Preempted
from gramgan.train.renamed_keys import with_current_keys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gramgan.train",
        description="Train a Gram-GAN SR model. With no arguments: the demo preset (small RRDB, built-in "
        "sample photos, a few minutes on a CPU).",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", help="YAML config file (keys and defaults: gramgan/train/config_schema.py)")
    source.add_argument("--preset", help="a shipped preset (gramgan/configs/): demo (default), paper, paper_psnr, ...")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        metavar="auto|PATH",
        help="continue from a checkpoint; 'auto' (or no value): the latest readable one in the output folder",
    )
    parser.add_argument("--output", help="output folder (default: runs/<name>)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="dotted overrides, anywhere on the line: train.batch_size=4"
    )
    return parser


def _resolve_resume(arg: str | None, output: Path) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint ``--resume`` names and its (memory-mapped) state; None for a new run."""
    if arg is None:
        return None
    if arg != "auto":
        return Path(arg), load_checkpoint(arg, mmap=True)
    folder = output / "checkpoints"
    found = latest_readable_checkpoint(folder, say=lambda message: print(message, file=sys.stderr, flush=True))
    if found is None and list_checkpoints(folder):
        raise CheckpointError(f"--resume: none of the checkpoints in {folder} can be read")
    if found is None:
        print(f"--resume auto: no checkpoint in {folder}, starting a new run", flush=True)
    return found


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(argv)
    if args.resume not in (None, "auto") and "=" in args.resume and not Path(args.resume).exists():
        args.overrides.insert(0, args.resume)  # "--resume key=value ...": the value is an override
        args.resume = "auto"
    try:
        cfg = load_config(args.config, args.preset, args.overrides)
        if args.output:
            output = Path(args.output)
        elif args.resume not in (None, "auto") and Path(args.resume).parent.name == "checkpoints":
            output = Path(args.resume).parent.parent
        else:
            output = cfg.resolved_output_dir()
        resume = _resolve_resume(args.resume, output)
        if resume is not None:
            saved = resume[1]["config"]
            if args.config is None and args.preset is None:
                cfg = load_config(base=saved, overrides=args.overrides)
            else:
                changed = [k for k in diff_configs(with_current_keys(saved), config_to_dict(cfg)) if k != "output_dir"]
                if changed:
                    print(f"NOTE: resuming with a config that differs from the checkpoint's in: {', '.join(changed)}")
        if args.print_config:
            import yaml

            print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
            return 0
        from gramgan.train.loop import train

        train(cfg, output_dir=output, resume=resume[0] if resume else None)
    except (ConfigError, CheckpointError, DataError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Preempted:  # the loop has said where it stopped
        return EXIT_PREEMPTED
    except KeyboardInterrupt:
        print("interrupted; continue with --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
