"""``python -m gramgan.integrations.basicsr -opt options.yml [BasicSR's train.py options]``.

Registers gramgan's parts in BasicSR's registries, checks the Gram-GAN entries of the options file
(:func:`~gramgan.integrations.basicsr.options.check_options`), then hands over to BasicSR's own
``basicsr.train.train_pipeline`` with the same arguments (``--launcher``, ``--auto_resume``, ``--debug``,
``--force_yml`` are BasicSR's). Experiments are written under ``./experiments/<name>`` (the current
folder stands for BasicSR's repository root) unless ``path.experiments_root`` says otherwise.
``--example`` prints the shipped example options (the built-in sample photos) instead of training.

Exit status: 0 when training finished, 2 for a usage or options error (one ``error:`` line naming the
key, before BasicSR starts), 1 for a failure while training.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import yaml


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gramgan.integrations.basicsr",
        description="Train with BasicSR's train_pipeline and gramgan's GramGANModel, GramTextureLoss and "
        "GramGANDiscriminator registered (docs/basicsr.md). Other arguments go to BasicSR's train.py.",
    )
    parser.add_argument("-opt", help="BasicSR options YAML file")
    parser.add_argument("--example", action="store_true", help="print the example options file and exit")
    return parser


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, _ = _parser().parse_known_args(argv)
    try:
        import gramgan.integrations.basicsr as integration
    except ImportError as err:
        return _fail(str(err))
    if args.example:
        sys.stdout.write(integration.example_options_path().read_text(encoding="utf-8"))
        return 0
    if not args.opt:
        return _fail("-opt OPTIONS.yml is required (--example prints an example)")
    if not os.path.isfile(args.opt):
        return _fail(f"options file not found: {args.opt}")
    try:
        with open(args.opt, encoding="utf-8") as handle:
            opt = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as err:
        return _fail(f"cannot read options file {args.opt}: {err}")
    if not isinstance(opt, dict):
        return _fail(f"{args.opt}: expected a mapping of options, got {type(opt).__name__}")
    try:
        integration.check_options(opt)
    except integration.OptionsError as err:
        return _fail(f"{args.opt}: {err}")

    from basicsr.train import train_pipeline

    sys.argv = [sys.argv[0], *(a for a in argv if a != "--example")]
    train_pipeline(os.getcwd())
    return 0


if __name__ == "__main__":
    sys.exit(main())
