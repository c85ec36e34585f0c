"""The command-line options every benchmark script shares, and the device and thread set-up they ask for."""

from __future__ import annotations

import argparse

import torch

from gramgan.benchmarking.backends import ALL_BACKENDS
from gramgan.devices import pick_device as _pick_device


def base_parser(doc: str | None, backends_help: str | None = None) -> argparse.ArgumentParser:
    """The options every benchmark script shares."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if present")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and sweeps, shorter timings")
    parser.add_argument("--out", default=None, help="output folder (default benchmarks/results/<device>-<date>)")
    parser.add_argument("--backends", default=None, help=backends_help or "comma list of " + ",".join(ALL_BACKENDS))
    parser.add_argument("--min-time", type=float, default=None, help="seconds of timed runs per measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory probe")
    parser.add_argument("--no-plot", action="store_true", help="no PNG chart")
    parser.add_argument("--quiet", action="store_true", help="no per-row progress on stderr")
    return parser


def pick_device(name: str | None) -> torch.device:
    """``--device``: ``cuda`` or ``cpu``, or None for CUDA when present (gramgan's one device picker)."""
    return _pick_device("auto" if name is None else name)


def apply_threads(threads: int | None) -> None:
    """``torch.set_num_threads`` when asked (on a loaded machine 1 thread gives steadier CPU numbers)."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
