"""The shared body of the op benchmarks (``gram_select``, ``texture_mask``): set up, time every case,
write ``<name>.{txt,json,png}``, saving partial results after each case."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from gramgan.benchmarking.backends import backend_reasons, parse_backends
from gramgan.benchmarking.cases import Case, RunConfig, add_roofline, run_cases
from gramgan.benchmarking.cli import PAPER, apply_threads, base_parser, pick_device
from gramgan.benchmarking.environment import environment
from gramgan.benchmarking.results import results_dir, write_json, write_text
from gramgan.benchmarking.tables import Target, format_table
from gramgan.benchmarking.timing import copy_bandwidth

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def op_parser(doc: str | None) -> argparse.ArgumentParser:
    """The shared options plus those of every op benchmark: dtype, the 'paper' case's size, no sweep,
    no torch.compile."""
    parser = base_parser(doc)
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    parser.add_argument("--batch", type=int, default=PAPER[0], help="B of the 'paper' cases (default 8)")
    parser.add_argument("--size", type=int, default=PAPER[1], help="H = W of the 'paper' cases (default 192)")
    parser.add_argument("--no-sweep", action="store_true", help="paper-size cases only")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile of the reference")
    return parser


def run_op_benchmark(
    name: str,
    what: str,
    args: argparse.Namespace,
    plan: Callable[[torch.device, torch.dtype], list[Case]],
    shape_columns: Sequence[tuple[str, str]],
    notes: Sequence[str],
    plot: Callable[[list[dict[str, Any]], float, str, Path], None],
    targets: Callable[[list[dict[str, Any]], torch.device], list[Target]] | None = None,
    annotate: Callable[[list[dict[str, Any]]], None] | None = None,
) -> dict[str, Any]:
    """The shared body of the op benchmarks: set up, time every case, write ``name``.{txt,json,png}.

    ``plan(device, dtype)`` gives the cases; ``notes`` are printed under the title; ``targets`` turns
    the rows into the goals the benchmark tracks; ``annotate(rows)`` adds fields to the rows (e.g. the
    per-case floors of harness.roofline) before the table and targets. Returns what was written to JSON.
    """
    apply_threads(args.threads)
    device = pick_device(args.device)
    min_time = args.min_time if args.min_time is not None else (0.1 if device.type == "cuda" or args.quick else 0.3)
    reasons = backend_reasons(device, parse_backends(args.backends), compile_ok=not args.no_compile)
    out_dir = results_dir(args.out, device)
    env = environment(device)

    copy_bw = copy_bandwidth(device, (1 << 30) if device.type == "cuda" else (128 << 20), min_time)
    cases = plan(device, DTYPES[args.dtype])
    title = f"{what} on {env['device']}, {args.dtype}, {env['date_utc'][:10]}"
    meta = {"benchmark": name, "environment": env, "args": vars(args), "backends": reasons}
    save_partial = partial_saver(out_dir, name, title, shape_columns, copy_bw, meta, annotate)
    config = RunConfig(min_time, not args.no_memory, not args.quiet)
    rows = run_cases(cases, reasons, device, config, on_case_done=save_partial)
    add_roofline(rows, copy_bw)
    if annotate is not None:
        annotate(rows)
    goals = targets(rows, device) if targets is not None else []

    lines = [
        title,
        f"copy bandwidth (read + write) measured in this run: {copy_bw / 1e9:.1f} GB/s",
        *notes,
        "",
        format_table(rows, shape_columns),
    ]
    if goals:
        lines += ["", *[goal.line() for goal in goals]]
    text = "\n".join(lines)
    print(text)
    result = {
        **meta,
        "partial": False,
        "dtype": args.dtype,
        "copy_bytes_per_s": copy_bw,
        "targets": [goal.as_dict() for goal in goals],
        "rows": rows,
    }
    write_text(out_dir / f"{name}.txt", text + "\n")
    write_json(out_dir / f"{name}.json", result)
    if not args.no_plot:
        plot(rows, copy_bw, title, out_dir / f"{name}.png")
    print(f"\nwrote {out_dir}/{name}.{{txt,json{'' if args.no_plot else ',png'}}}")
    return result


def partial_saver(
    out_dir: Path,
    name: str,
    title: str,
    shape_columns: Sequence[tuple[str, str]],
    copy_bytes_per_s: float,
    meta: dict[str, Any],
    annotate: Callable[[list[dict[str, Any]]], None] | None = None,
) -> Callable[[list[dict[str, Any]]], None]:
    """An ``on_case_done`` callback that saves ``<name>.json`` (``"partial": true``) and the table so
    far, so that a run killed by a time limit still leaves what it measured."""

    def save(rows_so_far: list[dict[str, Any]]) -> None:
        add_roofline(rows_so_far, copy_bytes_per_s)
        if annotate is not None:
            annotate(rows_so_far)
        saved = {**meta, "partial": True, "copy_bytes_per_s": copy_bytes_per_s, "rows": rows_so_far}
        write_json(out_dir / f"{name}.json", saved)
        table = format_table(rows_so_far, shape_columns)
        write_text(out_dir / f"{name}.txt", f"{title}\nPARTIAL (the run stopped or is still going)\n\n{table}\n")

    return save
