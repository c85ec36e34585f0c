"""The command-line options every benchmark script shares, and the device and thread set-up they ask for."""

from __future__ import annotations

import argparse

import torch

from gramgan.benchmarking.backends import ALL_BACKENDS
from gramgan.devices import pick_device as _pick_device

PAPER = (8, 192)  # (B, H = W): the paper's training batch and HR crop, the op benchmarks' headline case
# The sizes drop-in users train with, (B, H = W), where the paper's size is launch-bound on a GPU.
LARGE_SIZES = ((32, 256), (64, 384))


def base_parser(doc: str | None, backends_help: str | None = None) -> argparse.ArgumentParser:
    """The options every benchmark script shares."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if present")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and sweeps, shorter timings")
    parser.add_argument("--backends", default=None, help=backends_help or "comma list of " + ",".join(ALL_BACKENDS))
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory probe")
    add_run_options(parser)
    return parser


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """``--out``, ``--min-time``, ``--threads``, ``--no-plot`` and ``--quiet``: where a benchmark writes, how
    long it times each measurement, and what it shows."""
    parser.add_argument("--out", default=None, help="output folder (default benchmarks/results/<device>-<date>)")
    parser.add_argument("--min-time", type=float, default=None, help="seconds of timed runs per measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--no-plot", action="store_true", help="no PNG chart")
    parser.add_argument("--quiet", action="store_true", help="no per-measurement progress on stderr")


def pick_device(name: str | None) -> torch.device:
    """``--device``: ``cuda`` or ``cpu``, or None for CUDA when present (gramgan's one device picker)."""
    return _pick_device("auto" if name is None else name)


def apply_threads(threads: int | None) -> None:
    """``torch.set_num_threads`` when asked (on a loaded machine 1 thread gives steadier CPU numbers)."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)


def add_size_options(parser: argparse.ArgumentParser, large_help: str) -> None:
    """``--batch`` / ``--size`` (the paper's size by default), ``--large`` (``large_help``; None when not
    given, for the script's own default) and ``--large-sizes`` (default :data:`LARGE_SIZES`)."""
    parser.add_argument("--batch", type=int, default=PAPER[0], help=f"B (default {PAPER[0]})")
    parser.add_argument("--size", type=int, default=PAPER[1], help=f"H = W (default {PAPER[1]})")
    parser.add_argument("--large", action=argparse.BooleanOptionalAction, default=None, help=large_help)
    shown = ",".join(f"{b}x{h}" for b, h in LARGE_SIZES)
    parser.add_argument("--large-sizes", type=parse_sizes, default=LARGE_SIZES, metavar="BxH,...",
                        help=f"the large sizes (default {shown})")  # fmt: skip


def check_sizes(parser: argparse.ArgumentParser, args: argparse.Namespace, multiple: int) -> None:
    """Exits through ``parser.error`` unless every size of :func:`add_size_options` has a batch >= 1 and a
    side that is a positive multiple of ``multiple`` (HR/4 must hold whole patches: 4k)."""
    for b, h in [(args.batch, args.size), *args.large_sizes]:
        if b < 1 or h < multiple or h % multiple:
            parser.error(f"batches must be >= 1 and sizes multiples of {multiple} (HR/4 must hold whole patches)")


def parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    """``"32x256,64x384"`` -> ``((32, 256), (64, 384))``: batch x side (an argparse ``type``)."""
    try:
        return tuple((int(b), int(h)) for b, h in (part.lower().split("x") for part in text.split(",")))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected sizes as BxH,BxH (e.g. 32x256,64x384), got {text!r}") from error
