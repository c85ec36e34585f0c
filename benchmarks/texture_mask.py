"""Benchmark of the texture mask (grid and sliding) and of mask_pair on every backend this machine has.

    python -m benchmarks.texture_mask [--device cpu|cuda] [--quick] [--out DIR]

Times ``texture_mask`` in ``grid`` mode (k = 4, offset (1, 2): the clipped border cells are exercised)
and ``sliding`` mode (window 11, Beby-GAN's), and ``mask_pair`` forward+backward (the call the
training step makes), at the paper's size (B = 8, 192 x 192, C = 3) and over a sweep of B x H x W.
Backends as in gram_select.py. Writes ``texture_mask.{txt,json,png}`` under
``benchmarks/results/<device>-<date>/`` (or ``--out``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

import gramgan.ops as ops
from gramgan import benchmarking as harness
from gramgan.ops import reference as R

PATCH = 4
CHANNELS = 3
THRESHOLD = 0.005  # docs/ops.md ε; the timings do not depend on it
OFFSET = (1, 2)
WINDOW = 11
PAPER = harness.PAPER
OPS = {
    "mask_grid": "texture_mask grid",
    "mask_sliding": "texture_mask sliding",
    "pair_fwd_bwd": "mask_pair grid fwd+bwd",
}
SWEEPS = {
    ("cuda", False): [(1, 192), (8, 384), (32, 384), (64, 384)],
    ("cuda", True): [(64, 384)],
    ("cpu", False): [(1, 96), (2, 192), (4, 384)],
    ("cpu", True): [(1, 96)],
}
COMPILE_NOTE = "torch.compile is timed at the paper size only (each shape is a separate compile)"


def _reference_mask(x: torch.Tensor, mode: str) -> torch.Tensor:
    """The eager reference mask; module level so torch.compile caches one wrapper."""
    return R.texture_mask(x, PATCH, THRESHOLD, OFFSET, mode, WINDOW)


def _reference_pair(sr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return R.mask_pair(sr, hr, PATCH, THRESHOLD, OFFSET, "grid", WINDOW)


def bytes_moved(op: str, b: int, h: int, element_size: int) -> int:
    """Least traffic: the mask reads the image and writes a one-channel mask; mask_pair forward reads
    SR and HR and writes both products, backward reads the output gradient and writes SR's."""
    image = b * CHANNELS * h * h * element_size
    if op == "pair_fwd_bwd":
        return 6 * image
    return image + b * h * h * element_size


def make_case(group: str, op: str, b: int, h: int, device: torch.device, dtype: torch.dtype, compile_here: bool):
    params = {
        "op": op,
        "batch": b,
        "height": h,
        "width": h,
        "channels": CHANNELS,
        "shape": f"{b}x{h}x{h}",
        "dtype": str(dtype).replace("torch.", ""),
    }
    case = harness.Case(
        group=group,
        label=OPS[op],
        params=params,
        bytes_moved=bytes_moved(op, b, h, torch.empty((), dtype=dtype).element_size()),
        build=lambda backend: _build(case, backend),
        backends=None if compile_here else [name for name in harness.ALL_BACKENDS if name != "compile"],
        note=COMPILE_NOTE,
        compare=harness.fraction_differing if op != "pair_fwd_bwd" else None,
    )
    case.extra["spec"] = (op, b, h, device, dtype)
    return case


def _build(case: harness.Case, backend: str) -> Callable[[], Any]:
    op, b, h, device, dtype = case.extra["spec"]
    if "inputs" not in case.extra:
        gen = torch.Generator(device=device).manual_seed(0)
        shape = (b, CHANNELS, h, h)
        # Noise amplitude rising over the batch from 0.001 (flat: std under the threshold) to 1 (textured).
        amplitude = torch.linspace(0.001, 1, b, device=device).view(-1, 1, 1, 1)
        hr = torch.rand(shape, generator=gen, device=device) * amplitude
        sr = torch.rand(shape, generator=gen, device=device)
        grad = torch.rand(shape, generator=gen, device=device)
        case.extra["inputs"] = (sr.to(dtype).requires_grad_(True), hr.to(dtype), grad.to(dtype))
    sr, hr, grad = case.extra["inputs"]
    if op in ("mask_grid", "mask_sliding"):
        mode = "grid" if op == "mask_grid" else "sliding"
        if backend == "compile":
            mask = harness.compiled(_reference_mask)
            return lambda: mask(hr, mode)
        return lambda: ops.texture_mask(hr, PATCH, THRESHOLD, OFFSET, mode, WINDOW, backend=backend)

    if backend == "compile":
        compiled_pair = harness.compiled(_reference_pair)

        def pair() -> tuple[torch.Tensor, torch.Tensor]:
            return compiled_pair(sr, hr)
    else:

        def pair() -> tuple[torch.Tensor, torch.Tensor]:
            return ops.mask_pair(sr, hr, PATCH, THRESHOLD, OFFSET, "grid", WINDOW, backend=backend)

    def forward_backward() -> torch.Tensor:
        sr.grad = None
        masked_sr, _ = pair()
        masked_sr.backward(grad)
        return sr.grad

    return forward_backward


def plan(
    device: torch.device, dtype: torch.dtype, quick: bool, paper: tuple[int, int], sweep: bool
) -> list[harness.Case]:
    b, h = paper
    cases = [make_case("paper", op, b, h, device, dtype, True) for op in OPS]
    if sweep:
        for sb, sh in SWEEPS[(device.type, quick)]:
            for op in ("mask_grid", "mask_sliding"):
                cases.append(make_case("sweep-BHW", op, sb, sh, device, dtype, False))
    return cases


def plot(rows: Sequence[dict[str, Any]], copy_bytes_per_s: float, title: str, path: Path) -> None:
    """Two panels: paper-size speedups over the reference; achieved bandwidth over B*H*W."""
    plt, fig, axes, backends, colors = harness.start_figure(rows, 2, (13, 4.8))
    labels = list(OPS.values())
    cases = [("paper", label) for label in labels]
    harness.speedup_bars(axes[0], rows, backends, colors, cases, labels, "paper size (B=8, 192x192)")
    ax = axes[1]
    for name in backends:
        for op, style in (("mask_grid", "-"), ("mask_sliding", ":")):
            pts = harness.bandwidth_points(rows, name, op=op)
            if pts:
                ax.plot(*zip(*pts), style, marker="o", color=colors[name], label=f"{name} {op[5:]}")
    harness.roofline_axes(ax, copy_bytes_per_s, "texture_mask", legend_size=7)
    harness.finish_figure(plt, fig, title, path)


SHAPE_COLUMNS = [("group", "group"), ("label", "what"), ("shape", "BxHxW")]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = harness.op_parser(__doc__)
    args = parser.parse_args(argv)
    if args.size <= 0 or args.batch <= 0 or args.size <= WINDOW // 2:
        parser.error(f"--batch must be positive and --size larger than {WINDOW // 2} (reflect padding)")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark; returns what it wrote to JSON."""
    args = parse_args(argv)

    def cases(device: torch.device, dtype: torch.dtype) -> list[harness.Case]:
        return plan(device, dtype, args.quick, (args.batch, args.size), not args.no_sweep)

    notes = [f"grid: k={PATCH}, offset={OFFSET}; sliding: window={WINDOW}; threshold={THRESHOLD}"]
    return harness.run_op_benchmark("texture_mask", "texture_mask / mask_pair", args, cases, SHAPE_COLUMNS, notes, plot)


if __name__ == "__main__":
    main()
