"""Benchmark of the texture loss and the candidate selection on every backend this machine has.

    python -m benchmarks.gram_select [--device cpu|cuda] [--quick] [--out DIR]

Times ``gram_texture_loss`` forward, forward+backward and ``gram_select`` for the local scope (K = 6:
HR, HR down x2 re-tiled, 4 warps; docs/candidates.md) and the global scope (HR, HR down x2, HR down x4 and 4 warps,
gt_weight = 1), at the paper's size (B = 8, 192 x 192, C = 3) and over a sweep of B x H x W and of K.
Inputs are random images of the right sizes (the timings do not depend on the values). Backends: the
eager ``reference``, ``compile`` (``torch.compile`` of the reference), ``cpu``, ``triton``, ``cuda``;
those that cannot run here are listed with the reason.

The roofline column is per case (gramgan/benchmarking/roofline.py): the read floor (least bytes over the
bandwidth of the fastest pass reading exactly the case's inputs, warm, timed like the ops) and the
compute floor (the op's FLOPs over a matmul's rate), both measured in the run; "% floor" is of the larger
(binding) one. No kernel can beat its floor: a row timed faster shows "error" there and a note under the
table (a measurement error, not a percentage above 100). Writes ``gram_select.{txt,json,png}`` under
``benchmarks/results/<device>-<date>/`` (or ``--out``) and prints the table and the targets.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import gramgan.ops as ops
from gramgan import benchmarking as harness
from gramgan.benchmarking import roofline
from gramgan.ops import reference as R

PATCH = 4  # k
CHANNELS = 3
LOCAL_K = 6  # K = 2 + J candidates (docs/candidates.md)
WARPS = 4  # J
GLOBAL_GT_WEIGHT = 1.0  # docs/candidates.md: the global scope uses Beby-GAN's gt_weight = 1
PAPER = harness.PAPER  # (B, H = W)
OPS = ("loss_fwd", "loss_fwd_bwd", "select")
OP_LABELS = {"loss_fwd": "loss fwd", "loss_fwd_bwd": "loss fwd+bwd", "select": "gram_select"}
COMPILE_NOTE = "torch.compile is timed at the paper and roofline sizes only (each shape is a 10-60 s compile)"
COMPILE_GLOBAL_NOTE = (
    "torch.compile of the global reference unrolls its per-image, per-chunk Python loop (minutes to "
    "compile); pass --compile-global to time it"
)

# Sweeps of (B, H) for the local loss forward+backward, and of K at the paper's size.
SWEEPS = {
    ("cuda", False): {"pixels": [(1, 96), (1, 192), (8, 96), (8, 384), (32, 384)], "K": [1, 2, 4, 8, 12, 16]},
    ("cuda", True): {"pixels": [(1, 192), (8, 384)], "K": [2, 12]},
    ("cpu", False): {"pixels": [(1, 96), (2, 192), (4, 384)], "K": [1, 2, 4, 12]},
    ("cpu", True): {"pixels": [(1, 96)], "K": [2, 12]},
}
ROOFLINE = (64, 384)  # the size of the bandwidth target (GPU only)
QUICK_CPU_GLOBAL = (2, 96)  # on the CPU, --quick times the global scope here instead of the paper size


# ----------------------------------------------------------------------------------------------------
# What is timed
# ----------------------------------------------------------------------------------------------------


def _reference_loss(sr: torch.Tensor, candidates: Any, scope: str, gt_weight: float) -> torch.Tensor:
    """The eager reference's mean texture loss; module level so torch.compile caches one wrapper."""
    return R.texture_loss(sr, candidates, PATCH, scope, gt_weight, "gram", "mse").mean()


def _reference_select(sr: torch.Tensor, candidates: Any, scope: str, gt_weight: float) -> torch.Tensor:
    return R.gram_select(sr, candidates, PATCH, scope, gt_weight)


def global_sizes(h: int) -> list[int]:
    """Side lengths of the global candidate list: HR, HR/2, HR/4, then the warps at HR size."""
    return [h, h // 2, h // 4] + [h] * WARPS


def make_inputs(
    scope: str, b: int, h: int, kk: int, device: torch.device, dtype: torch.dtype, seed: int = 0
) -> tuple[torch.Tensor, Any]:
    """Random SR (requires grad) and candidates: a (B, K, C, H, H) stack or the global list."""
    gen = torch.Generator(device=device).manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen, device=device).to(dtype)

    sr = rand(b, CHANNELS, h, h).requires_grad_(True)
    if scope == "local":
        return sr, rand(b, kk, CHANNELS, h, h)
    return sr, [rand(b, CHANNELS, s, s) for s in global_sizes(h)]


def candidate_count(scope: str, h: int, kk: int) -> int:
    """K for the local scope; M (candidate patches per image) for the global scope."""
    if scope == "local":
        return kk
    return sum((s // PATCH) ** 2 for s in global_sizes(h))


def bytes_moved(op: str, scope: str, b: int, h: int, kk: int, element_size: int) -> int:
    """Least traffic: every image read once, plus the gradient written (fwd+bwd) or the index (select)."""
    image = b * CHANNELS * h * h * element_size
    if scope == "local":
        read = image * (1 + kk)
    else:
        read = image + sum(b * CHANNELS * s * s * element_size for s in global_sizes(h))
    if op == "loss_fwd_bwd":
        return read + image
    if op == "select":
        return read + b * (h // PATCH) ** 2 * 8
    return read


@dataclass
class RunFloors:
    """Each (case, backend)'s floors, measured right before that backend is timed on the case (the
    machine may be shared: the floor and the timing should see the same load)."""

    cases: dict[tuple[Any, ...], roofline.Floors] = field(default_factory=dict)


def flops(op: str, scope: str, b: int, h: int, kk: int) -> float:
    """Least arithmetic (a multiply-add counts 2): the Grams of every image read (C(C+1)/2 products
    per pixel), the scores (one multiply-add per unique Gram entry and candidate, as in
    |a|^2 + |b|^2 - 2 a.b whose norms are per patch, twice with the ground-truth term), and for fwd+bwd
    both Grams of a patch again and dx = D x. A floor must not count more than the cheapest way does."""
    pairs = CHANNELS * (CHANNELS + 1) // 2
    gram = 2 * pairs  # per pixel
    n = b * (h // PATCH) ** 2
    if scope == "local":
        total = b * (1 + kk) * h * h * gram + n * kk * 2 * pairs
    else:
        terms = 2 if GLOBAL_GT_WEIGHT else 1
        pixels = b * (h * h + sum(s * s for s in global_sizes(h)))
        total = pixels * gram + n * candidate_count(scope, h, kk) * 2 * pairs * terms
    if op == "loss_fwd_bwd":
        total += b * h * h * (2 * gram + 2 * CHANNELS**2)
    return float(total)


def make_case(
    group: str,
    op: str,
    scope: str,
    b: int,
    h: int,
    kk: int,
    device: torch.device,
    dtype: torch.dtype,
    compile_here: bool,
    floors: RunFloors,
    compile_note: str = COMPILE_NOTE,
) -> harness.Case:
    """One (op, scope, size) to time on every backend; its floors go to ``floors`` when built."""
    gt_weight = GLOBAL_GT_WEIGHT if scope == "global" else 0.0
    params = {
        "op": op,
        "scope": scope,
        "batch": b,
        "height": h,
        "width": h,
        "channels": CHANNELS,
        "shape": f"{b}x{h}x{h}",
        "candidates": candidate_count(scope, h, kk),
        "dtype": str(dtype).replace("torch.", ""),
    }
    case = harness.Case(
        group=group,
        label=f"{OP_LABELS[op]} {scope}",
        params=params,
        bytes_moved=bytes_moved(op, scope, b, h, kk, torch.empty((), dtype=dtype).element_size()),
        build=lambda backend: _build(case, backend),
        backends=None if compile_here else [name for name in harness.ALL_BACKENDS if name != "compile"],
        note=compile_note,
    )
    case.extra["spec"] = (op, scope, b, h, kk, device, dtype, gt_weight)
    case.extra["floors"] = floors
    return case


def _build(case: harness.Case, backend: str) -> Callable[[], Any]:
    op, scope, b, h, kk, device, dtype, gt_weight = case.extra["spec"]
    if "inputs" not in case.extra:
        case.extra["inputs"] = make_inputs(scope, b, h, kk, device, dtype)
    _measure_floors(case, backend)
    sr, candidates = case.extra["inputs"]
    if op == "select":
        if backend == "compile":
            select = harness.compiled(_reference_select)
            return lambda: select(sr.detach(), candidates, scope, gt_weight)
        return lambda: ops.gram_select(sr.detach(), candidates, PATCH, scope, gt_weight, backend=backend)

    if backend == "compile":
        compiled_loss = harness.compiled(_reference_loss)

        def loss() -> torch.Tensor:
            return compiled_loss(sr, candidates, scope, gt_weight)
    else:

        def loss() -> torch.Tensor:
            return ops.gram_texture_loss(sr, candidates, PATCH, scope, gt_weight, backend=backend)

    if op == "loss_fwd":
        return loss

    def forward_backward() -> torch.Tensor:
        sr.grad = None
        loss().backward()
        return sr.grad

    return forward_backward


def _measure_floors(case: harness.Case, backend: str) -> None:
    """The case's floors for `backend`: a read pass over the case's own inputs and the matmul rate."""
    op, scope, b, h, kk, device, dtype, _ = case.extra["spec"]
    sr, candidates = case.extra["inputs"]
    images = [candidates] if isinstance(candidates, torch.Tensor) else list(candidates)
    min_time = 0.1 if device.type == "cuda" else 0.2
    rate = roofline.flop_rate(device, dtype, min_time)
    bandwidth = roofline.read_bandwidth([sr, *images], device, min_time)
    key = floor_key(case.group, case.label, case.params, backend)
    case.extra["floors"].cases[key] = roofline.floors(case.bytes_moved, bandwidth, flops(op, scope, b, h, kk), rate)


def floor_key(group: str, label: str, params: dict[str, Any], backend: str) -> tuple[Any, ...]:
    """What tells one case's floors from another's: every parameter of its inputs (the sweep over K has
    cases of one label and shape that differ only in K), and the backend they were measured before."""
    return (group, label, params["shape"], params["candidates"], params["dtype"], backend)


def annotate_floors(rows: list[dict[str, Any]], floors: RunFloors) -> None:
    """Adds each row's floors (measured when its case was built for its backend) to the row."""
    for row in rows:
        case_floors = floors.cases.get(floor_key(row["group"], row["label"], row, row["backend"]))
        if case_floors is not None:
            roofline.add_floors(row, case_floors)


def plan(
    device: torch.device,
    dtype: torch.dtype,
    quick: bool,
    paper: tuple[int, int],
    sweep: bool,
    compile_global: bool,
    floors: RunFloors,
) -> list[harness.Case]:
    """The cases of one run, in table order; each case's floors go to ``floors`` when it runs."""
    gpu = device.type == "cuda"
    b, h = paper
    cases: list[harness.Case] = []
    for op in OPS:
        cases.append(make_case("paper", op, "local", b, h, LOCAL_K, device, dtype, True, floors))
    small = QUICK_CPU_GLOBAL[0] * QUICK_CPU_GLOBAL[1] ** 2 >= b * h * h  # --quick never makes it larger
    gb, gh = (b, h) if gpu or not quick or small else QUICK_CPU_GLOBAL
    group = "paper" if (gb, gh) == (b, h) else "global-small"
    for op in OPS:
        cases.append(
            make_case(group, op, "global", gb, gh, LOCAL_K, device, dtype, compile_global, floors, COMPILE_GLOBAL_NOTE)
        )
    if not sweep:
        return cases
    sizes = SWEEPS[(device.type, quick)]
    for sb, sh in sizes["pixels"]:
        cases.append(make_case("sweep-BHW", "loss_fwd_bwd", "local", sb, sh, LOCAL_K, device, dtype, False, floors))
    if gpu:
        rb, rh = ROOFLINE
        cases.append(make_case("roofline", "loss_fwd_bwd", "local", rb, rh, LOCAL_K, device, dtype, True, floors))
    for kk in sizes["K"]:
        cases.append(make_case("sweep-K", "loss_fwd_bwd", "local", b, h, kk, device, dtype, False, floors))
    return cases


# ----------------------------------------------------------------------------------------------------
# Targets and chart
# ----------------------------------------------------------------------------------------------------


def targets(rows: Sequence[dict[str, Any]], device: torch.device) -> list[harness.Target]:
    """The goals of benchmarks/README.md that this run measures."""
    found: list[harness.Target] = []
    paper = {"group": "paper", "op": "loss_fwd_bwd", "scope": "local"}
    if device.type == "cuda":
        for name in ("cuda", "triton"):
            row = harness.find_row(rows, backend=name, **paper) or {}
            found.append(harness.Target(f"{name} loss fwd+bwd paper vs reference", row.get("speedup_vs_reference"), 30))
            found.append(harness.Target(f"{name} loss fwd+bwd paper vs compile", row.get("speedup_vs_compile"), 3))
            roof = harness.find_row(rows, backend=name, group="roofline") or {}
            found.append(_floor_target(f"{name} loss fwd+bwd B=64 384x384 of its floor", roof, 75))
    else:
        row = harness.find_row(rows, backend="cpu", **paper) or {}
        found.append(harness.Target("cpu loss fwd+bwd paper vs reference", row.get("speedup_vs_reference"), 5))
        found.append(harness.Target("cpu loss fwd+bwd paper vs compile", row.get("speedup_vs_compile"), 1.5))
        found.append(_floor_target("cpu loss fwd+bwd paper of its floor", row, 100 / 3))
    return found


def _floor_target(name: str, row: dict[str, Any], goal_percent: float) -> harness.Target:
    """A row's % of its binding floor against ``goal_percent``: not measured when the row was not
    timed, a measurement error when it timed faster than its floor."""
    fraction = row.get("fraction_of_floor")
    value = None if fraction is None else 100 * fraction
    return harness.Target(name, value, goal_percent, "%", error=row.get("floor_error"))


def plot(rows: Sequence[dict[str, Any]], copy_bytes_per_s: float, title: str, path: Path) -> None:
    """Three panels: paper-size speedups, bandwidth over B*H*W, time over K."""
    plt, fig, axes, backends, colors = harness.start_figure(rows, 3, (17, 4.8))
    groups = ("paper", "global-small")
    cases = list(dict.fromkeys((r["group"], r["label"], r["shape"]) for r in rows if r["group"] in groups))
    ticks = [label if group == "paper" else f"{label} ({shape})" for group, label, shape in cases]
    paper_shape = next((shape for group, _, shape in cases if group == "paper"), "?")
    pairs = [(group, label) for group, label, _ in cases]
    harness.speedup_bars(axes[0], rows, backends, colors, pairs, ticks, f"paper size ({paper_shape}, C=3)", rotation=25)

    ax = axes[1]
    for name in backends:
        pts = harness.bandwidth_points(rows, name, op="loss_fwd_bwd", scope="local", candidates=LOCAL_K)
        if pts:
            ax.plot(*zip(*pts), marker="o", label=name, color=colors[name])
    harness.roofline_axes(ax, copy_bytes_per_s, f"local loss fwd+bwd, K={LOCAL_K}")

    ax = axes[2]
    for name in backends:
        pts = sorted(
            (r["candidates"], r["median_ms"])
            for r in rows
            if r["backend"] == name
            and r["status"] == "ok"
            and r["op"] == "loss_fwd_bwd"
            and r["scope"] == "local"
            and r["group"] in ("paper", "sweep-K")
        )
        if pts:
            ax.plot(*zip(*pts), marker="o", label=name, color=colors[name])
    ax.set_yscale("log")
    ax.set_xlabel("K candidates")
    ax.set_ylabel("median ms")
    ax.set_title("local loss fwd+bwd at the paper size, over K", fontsize=10)
    ax.legend(fontsize=8)

    harness.finish_figure(plt, fig, title, path)


# ----------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------

SHAPE_COLUMNS = [("group", "group"), ("label", "what"), ("shape", "BxHxW"), ("candidates", "K / M")]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = harness.op_parser(__doc__)
    parser.add_argument("--compile-global", action="store_true", help=COMPILE_GLOBAL_NOTE.split(";")[0])
    args = parser.parse_args(argv)
    if args.size % (4 * PATCH) or args.size <= 0 or args.batch <= 0:
        parser.error(f"--size must be a positive multiple of {4 * PATCH} (HR/4 must hold whole patches)")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark; returns what it wrote to JSON."""
    args = parse_args(argv)
    floors = RunFloors()
    return harness.run_op_benchmark(
        "gram_select",
        "gram_texture_loss / gram_select",
        args,
        lambda device, dtype: plan(
            device, dtype, args.quick, (args.batch, args.size), not args.no_sweep, args.compile_global, floors
        ),
        SHAPE_COLUMNS,
        [
            "x ref / x compile: speedup over the eager reference / torch.compile of it (same run); "
            "GB/s: least traffic / median; diff: max rel. error vs the reference (selection: fraction differing)",
            "% floor: the binding floor over the median, and which binds: read (least bytes at the bandwidth of a "
            "pass over the case's own inputs) or compute (FLOPs at a matmul's rate), both measured in this run",
        ],
        plot,
        targets=targets,
        annotate=lambda rows: annotate_floors(rows, floors),
    )


if __name__ == "__main__":
    main()
