"""Two op backends on the same inputs, op by op, in one run: each op's time on both and their ratio.

    python -m benchmarks.backend_compare [--device cuda] [--backends cuda,triton] [--quick] [--large] [--out DIR]

Every public op of ``gramgan.ops`` that both backends implement (all of them: the backends share one op
contract) is timed on backend A and backend B (default ``cuda`` and ``triton``) on the same input
tensors: ``patch_gram`` forward+backward, the local fused texture loss forward and forward+backward on a
prebuilt candidate stack (K = 6), the sampled texture loss forward+backward (candidates sampled in the
kernel from HR, its half-size image and J = 4 affine maps), the global texture loss forward+backward
(HR, HR down x2, HR down x4, 4 warps; gt_weight 1), ``gram_select`` local and global, ``texture_mask``
grid and sliding, ``mask_pair`` forward+backward and ``downsample_half``.

For each op, both backends are first warmed up (the first call: Triton's JIT compiles and autotuning;
its seconds are reported apart from the timings), then timed in alternating rounds (A then B, B then A,
...; ``harness.time_alternating``) so that the machine's drift weighs on both. Each op also gets its read
floor: the time to read its input tensors once (the fastest of a ``sum`` and an ``amax`` pass over exactly
those tensors, timed like the ops: ``harness.roofline.read_bandwidth``), and the result of B is compared
with A's. The goal is B within 1.5x of A on every op (issue: the Triton backend against the CUDA one):
one ``TARGET`` line per op and size.

Sizes: the paper's (B = 8, 192 x 192, C = 3, k = 4; ``--batch``, ``--size``) and, with ``--large`` (the
default on a GPU unless ``--quick``), B = 32 at 256 x 256 and B = 64 at 384 x 384 (``--large-sizes``).
``--quick`` (the GPU check): the paper's size only, shorter timings. Without a GPU, pick two backends that
run on the CPU, e.g. ``--device cpu --backends reference,cpu``. A backend that cannot run, or an op that
fails on it, is reported as ``n/a (reason)``; the script always exits 0. Writes
``backend_compare.{txt,json,png}`` under ``benchmarks/results/<device>-<date>/`` (or ``--out``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import gramgan.ops as ops
from gramgan import benchmarking as harness
from gramgan.benchmarking import roofline
from gramgan.losses.candidates import build_global_candidates, downsample_half, random_affine_thetas
from gramgan.losses.texture import build_candidates

CHANNELS, PATCH, WARPS = 3, 4, 4  # C, k, J (K = 2 + J local candidates)
MAGNITUDE = 0.003  # the affine maps' bound (the paper's)
GLOBAL_GT_WEIGHT = 1.0  # the global scope's default (Beby-GAN's regulariser)
GOAL = 1.5  # B's time over A's, at most
DEFAULT_BACKENDS = ("cuda", "triton")
OP_BACKENDS = ("reference", "cpu", "cuda", "triton")
ROUNDS = 6


# ----------------------------------------------------------------------------------------------------
# What is timed
# ----------------------------------------------------------------------------------------------------


@dataclass
class Inputs:
    """The tensors of one size, shared by both backends: SR (a leaf that takes gradients), HR, the local
    candidate stack, the global candidate list and the sources the sampled op reads."""

    sr: torch.Tensor
    hr: torch.Tensor
    local: torch.Tensor
    global_: list[torch.Tensor]
    hr_half: torch.Tensor
    thetas: torch.Tensor

    def read_sets(self) -> dict[str, list[torch.Tensor]]:
        """What each op reads, by name: the read floor of an op is one pass over its set."""
        sr = self.sr.detach()
        return {
            "sr": [sr],
            "hr": [self.hr],
            "sr+hr": [sr, self.hr],
            "sr+local stack": [sr, self.local],
            "sr+sampled sources": [sr, self.hr, self.hr_half, self.thetas],
            "sr+global list": [sr, *self.global_],
        }


def make_inputs(b: int, h: int, device: torch.device) -> Inputs:
    """Random HR, SR = HR + noise, and the candidates built from HR as training builds them."""
    gen = torch.Generator(device=device).manual_seed(0)
    hr = torch.rand(b, CHANNELS, h, h, generator=gen, device=device)
    sr = (hr + 0.05 * torch.randn(hr.shape, generator=gen, device=device)).requires_grad_(True)
    cpu_gen = torch.Generator().manual_seed(0)
    return Inputs(
        sr=sr,
        hr=hr,
        local=build_candidates(hr, "local", WARPS, MAGNITUDE, PATCH, generator=cpu_gen),
        global_=build_global_candidates(hr, WARPS, MAGNITUDE, PATCH, generator=cpu_gen),
        hr_half=downsample_half(hr),
        thetas=random_affine_thetas(b, WARPS, MAGNITUDE, generator=cpu_gen, device=device),
    )


def forward_backward(sr: torch.Tensor, loss: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
    """A call that runs ``loss()`` forward and backward and returns SR's gradient."""

    def run() -> torch.Tensor:
        sr.grad = None
        loss().backward()
        return sr.grad

    return run


def no_grad(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` under ``torch.no_grad()``: a forward alone, as inference would call it."""

    def run() -> Any:
        with torch.no_grad():
            return fn()

    return run


@dataclass(frozen=True)
class Op:
    """One public op as timed here: its name, the read set of its inputs (``Inputs.read_sets``), and
    ``call(inputs, backend)``, the zero-argument call to time; ``compare`` measures B's result against A's."""

    name: str
    reads: str
    call: Callable[[Inputs, str], Callable[[], Any]]
    compare: Callable[[Any, Any], float | None] = harness.compare_outputs


def _local_loss(x: Inputs, backend: str, sr: torch.Tensor | None = None) -> torch.Tensor:
    return ops.gram_texture_loss(x.sr if sr is None else sr, x.local, PATCH, backend=backend)


OPS: tuple[Op, ...] = (
    Op("patch_gram fwd+bwd", "sr",
       lambda x, be: forward_backward(x.sr, lambda: ops.patch_gram(x.sr, PATCH, backend=be).sum())),
    Op("gram_texture_loss local fwd", "sr+local stack", lambda x, be: no_grad(lambda: _local_loss(x, be))),
    Op("gram_texture_loss local fwd+bwd", "sr+local stack",
       lambda x, be: forward_backward(x.sr, lambda: _local_loss(x, be))),
    Op("gram_texture_loss_sampled fwd+bwd", "sr+sampled sources",
       lambda x, be: forward_backward(x.sr, lambda: ops.gram_texture_loss_sampled(
           x.sr, x.hr, x.hr_half, x.thetas, PATCH, backend=be))),
    Op("gram_texture_loss global fwd+bwd", "sr+global list",
       lambda x, be: forward_backward(x.sr, lambda: ops.gram_texture_loss(
           x.sr, x.global_, PATCH, "global", GLOBAL_GT_WEIGHT, backend=be))),
    Op("gram_select local", "sr+local stack",
       lambda x, be: lambda: ops.gram_select(x.sr.detach(), x.local, PATCH, backend=be)),
    Op("gram_select global", "sr+global list",
       lambda x, be: lambda: ops.gram_select(x.sr.detach(), x.global_, PATCH, "global", GLOBAL_GT_WEIGHT, backend=be)),
    Op("texture_mask grid", "hr", lambda x, be: lambda: ops.texture_mask(x.hr, PATCH, backend=be),
       harness.fraction_differing),
    Op("texture_mask sliding", "hr", lambda x, be: lambda: ops.texture_mask(x.hr, PATCH, mode="sliding", backend=be),
       harness.fraction_differing),
    Op("mask_pair fwd+bwd", "sr+hr",
       lambda x, be: forward_backward(x.sr, lambda: ops.mask_pair(x.sr, x.hr, PATCH, backend=be)[0].sum())),
    Op("downsample_half", "hr", lambda x, be: lambda: ops.downsample_half(x.hr, backend=be)),
)  # fmt: skip


# ----------------------------------------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------------------------------------


@dataclass
class Settings:
    """How one run measures: device, the two backends (A first), seconds of timed calls per op and backend,
    alternating rounds, and whether to print each op as it is done."""

    device: torch.device
    backends: tuple[str, str]
    min_time_s: float
    rounds: int
    verbose: bool


def size_label(b: int, h: int) -> str:
    return f"B={b} {h}x{h}"


def measure_op(op: Op, inputs: Inputs, floors: dict[str, dict[str, Any]], s: Settings, label: str) -> dict[str, Any]:
    """One op on both backends: warm-up, then alternating rounds; its read floor (measured once per read
    set and size, in ``floors``) and B's result against A's."""
    row: dict[str, Any] = {"op": op.name, "size": label, "reads": op.reads, "timings": {}}
    ready, expected, outputs = {}, {}, {}
    for backend in s.backends:
        try:
            fn = op.call(inputs, backend)
            outputs[backend], first_s, expected[backend] = harness.warm_up(fn, s.device)
        except Exception as error:  # noqa: BLE001 - an op a backend cannot run is a result, not a crash
            row["timings"][backend] = {"status": "n/a", "reason": harness.failure_reason(error)}
            continue
        ready[backend] = fn
        row["timings"][backend] = {"status": "ok", "first_call_ms": first_s * 1e3}
    if op.reads not in floors:
        tensors = inputs.read_sets()[op.reads]
        nbytes = sum(t.numel() * t.element_size() for t in tensors)
        bandwidth = roofline.read_bandwidth(tensors, s.device, s.min_time_s)
        floors[op.reads] = {"read_bytes": nbytes, "read_floor_ms": nbytes / bandwidth * 1e3}
    row.update(floors[op.reads])
    for backend, timing in harness.time_alternating(ready, s.device, s.min_time_s, expected, s.rounds).items():
        row["timings"][backend].update(timing.fields())
    a, b = s.backends
    a_ms, b_ms = (row["timings"][name].get("median_ms") for name in s.backends)
    row["ratio"] = b_ms / a_ms if a_ms and b_ms else None
    row["diff"] = op.compare(outputs[b], outputs[a]) if a in outputs and b in outputs else None
    if s.verbose:
        print(f"  {label:<16} {op.name:<36} {shown(row, a):>12} {shown(row, b):>12}  {ratio_text(row)}", flush=True)
    harness.free_memory(s.device)
    return row


def measure_size(b: int, h: int, s: Settings) -> Iterator[dict[str, Any]]:
    """Every op at one size, on one set of inputs: each op's row as soon as it is measured."""
    inputs = make_inputs(b, h, s.device)
    floors: dict[str, dict[str, Any]] = {}
    for op in OPS:
        yield measure_op(op, inputs, floors, s, size_label(b, h))
    del inputs
    harness.free_memory(s.device)


def unavailable_rows(sizes: Sequence[tuple[int, int]], reasons: dict[str, str | None]) -> list[dict[str, Any]]:
    """The rows of a run where a backend cannot run at all: every op ``n/a``, with the reason per backend."""
    a, b = reasons
    timings = {
        name: {"status": "n/a", "reason": f"cannot run here: {reason}" if reason else f"not timed: {other} cannot run"}
        for (name, reason), other in zip(reasons.items(), (b, a))
    }
    return [
        {"op": op.name, "size": size_label(bh[0], bh[1]), "reads": op.reads, "timings": timings, "ratio": None,
         "diff": None}
        for bh in sizes
        for op in OPS
    ]  # fmt: skip


# ----------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------


def shown(row: dict[str, Any], backend: str) -> str:
    timing = row["timings"][backend]
    return f"{timing['median_ms']:.3f}" if "median_ms" in timing else "n/a"


def ratio_text(row: dict[str, Any]) -> str:
    return "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"


def targets(rows: Sequence[dict[str, Any]], backends: tuple[str, str], device_name: str, paper: str) -> list:
    """One goal per op and size: B's median over A's at most GOAL."""
    a, b = backends
    found = []
    for row in rows:
        at = "" if row["size"] == paper else f" at {row['size']}"
        name = f"{row['op']} {b}/{a}{at} on {device_name}"
        found.append(harness.Target(name, row["ratio"], GOAL, lower_is_better=True))
    return found


def warm_up_seconds(rows: Sequence[dict[str, Any]], backends: Sequence[str]) -> dict[str, float]:
    """Each backend's first calls, added up over the run: its compile and autotuning cost."""
    return {
        name: sum(row["timings"][name].get("first_call_ms", 0.0) for row in rows) / 1e3 for name in backends
    }


def format_report(title: str, rows: Sequence[dict[str, Any]], goals: Sequence[harness.Target], s: Settings) -> str:
    a, b = s.backends
    warm = warm_up_seconds(rows, s.backends)
    headers = ["size", "op", f"{a} ms", f"{b} ms", f"{b}/{a}", "read floor ms", f"{a}/floor", f"{b}/floor",
               "diff", f"{a} 1st ms", f"{b} 1st ms"]  # fmt: skip
    cells = []
    notes: dict[tuple[str, str], list[str]] = {}  # (backend, reason) -> the ops it stopped
    for row in rows:
        line = [row["size"], row["op"], shown(row, a), shown(row, b), ratio_text(row), f"{row['read_floor_ms']:.4f}"
                if "read_floor_ms" in row else "-"]  # fmt: skip
        for name in s.backends:
            ms = row["timings"][name].get("median_ms")
            line.append(f"{ms / row['read_floor_ms']:.1f}x" if ms and row.get("read_floor_ms") else "-")
        line.append("-" if row["diff"] is None else f"{row['diff']:.1e}")
        for name in s.backends:
            first = row["timings"][name].get("first_call_ms")
            line.append("-" if first is None else f"{first:.1f}")
            if row["timings"][name]["status"] != "ok":
                notes.setdefault((name, row["timings"][name]["reason"]), []).append(f"{row['op']} ({row['size']})")
        cells.append(line)
    widths = [max(len(headers[i]), *(len(c[i]) for c in cells)) for i in range(len(headers))]
    lines = [title, "",
             f"timing: median of {s.rounds} alternating rounds per op ({a} then {b}, {b} then {a}, ...), "
             f"{s.min_time_s:g} s of timed calls per op and backend"
             + (" (triton.testing.do_bench, L2 flushed before each call)" if s.device.type == "cuda" else ""),
             "warm-up before timing (first call of each op: JIT compiles, autotuning): "
             + ", ".join(f"{name} {sec:.2f} s" for name, sec in warm.items()),
             "", "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]  # fmt: skip
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
    for (name, reason), stopped in notes.items():
        which = "every op" if len(stopped) == len(rows) else ", ".join(stopped)
        lines.append(f"  {name} n/a for {which}: {reason}")
    lines += ["",
              f"{b}/{a}: {b}'s median over {a}'s (goal <= {GOAL:g}x); read floor: one pass over the op's inputs "
              "(the fastest of sum() / amax() over exactly those tensors); X/floor: how far each backend is from it",
              f"diff: {b}'s result against {a}'s (relative max error; fraction differing for masks and selections); "
              "1st ms: the first call (compiles, autotuning)",
              "", *[goal.line() for goal in goals]]  # fmt: skip
    return "\n".join(lines)


def plot(goals: Sequence[harness.Target], backends: tuple[str, str], title: str, path: Path) -> None:
    """One bar per op and size: B's time over A's, with the goal's line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [goal.name.split(" on ")[0] for goal in goals][::-1]
    values = [goal.value or 0.0 for goal in goals][::-1]
    colors = ["C2" if goal.verdict == "met" else "C3" if goal.verdict == "missed" else "C7" for goal in goals][::-1]
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(goals) + 1.5))
    ax.barh(names, values, color=colors)
    ax.axvline(GOAL, color="k", ls="--", lw=1, label=f"goal {GOAL:g}x")
    ax.axvline(1.0, color="gray", lw=0.8)
    ax.set_xlabel(f"{backends[1]} time / {backends[0]} time (x); grey: not measured")
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(fontsize=8)
    harness.finish_figure(plt, fig, title, path)


# ----------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------


def parse_backend_pair(text: str) -> tuple[str, str]:
    """``"cuda,triton"`` -> ``("cuda", "triton")``: two different op backends, A then B."""
    names = tuple(part.strip() for part in text.split(","))
    if len(names) != 2 or names[0] == names[1] or not set(names) <= set(OP_BACKENDS):
        raise argparse.ArgumentTypeError(
            f"expected two different backends A,B of {', '.join(OP_BACKENDS)} (e.g. cuda,triton), got {text!r}"
        )
    return names  # type: ignore[return-value]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if present")
    parser.add_argument("--backends", type=parse_backend_pair, default=DEFAULT_BACKENDS, metavar="A,B",
                        help="the two backends, A (the baseline) then B (default cuda,triton)")  # fmt: skip
    harness.add_size_options(parser, "also the large sizes (default: on a GPU, unless --quick)")
    parser.add_argument("--quick", action="store_true", help="the paper's size only (unless --large), short timings")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"alternating rounds per op (default {ROUNDS})")
    harness.add_run_options(parser)
    args = parser.parse_args(argv)
    harness.check_sizes(parser, args, 4 * PATCH)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark; returns what it wrote to JSON."""
    args = parse_args(argv)
    harness.apply_threads(args.threads)
    device = harness.pick_device(args.device)
    gpu = device.type == "cuda"
    default_time = (0.05 if args.quick else 0.2) if gpu else (0.1 if args.quick else 0.5)
    s = Settings(device, args.backends, args.min_time if args.min_time is not None else default_time, args.rounds,
                 not args.quiet)  # fmt: skip
    env = harness.environment(device)
    out_dir = harness.results_dir(args.out, device)
    large = args.large if args.large is not None else gpu and not args.quick
    sizes = [(args.batch, args.size), *(args.large_sizes if large else ())]
    a, b = s.backends
    title = (
        f"backend_compare: {b} against {a} on {env['device']}, op by op on the same inputs: "
        f"{', '.join(size_label(*size) for size in sizes)}, C={CHANNELS}, k={PATCH}, K={2 + WARPS} (J={WARPS}), "
        f"float32, {env['date_utc'][:10]}"
    )

    def save(rows: list[dict[str, Any]], partial: bool) -> tuple[dict[str, Any], str, list[harness.Target]]:
        """Writes the .txt and .json of ``rows``; ``partial``: after each op, so that a run stopped by a
        time limit (the GPU check's cap) keeps the ops it timed."""
        goals = targets(rows, s.backends, env["device"], size_label(args.batch, args.size))
        text = format_report(("PARTIAL (not every op timed yet): " if partial else "") + title, rows, goals, s)
        result = {
            "benchmark": "backend_compare",
            "partial": partial,
            "environment": env,
            "args": {**vars(args), "min_time": s.min_time_s, "sizes": sizes},
            "backends": {"a": a, "b": b},
            "warm_up_s": warm_up_seconds(rows, s.backends),
            "rows": rows,
            "targets": [goal.as_dict() for goal in goals],
        }
        harness.write_text(out_dir / "backend_compare.txt", text + "\n")
        harness.write_json(out_dir / "backend_compare.json", result)
        return result, text, goals

    reasons = harness.backend_reasons(device, list(s.backends))
    if any(reasons.values()):
        rows = unavailable_rows(sizes, reasons)
    else:
        rows = []
        for size in sizes:
            for row in measure_size(*size, s):
                rows.append(row)
                save(rows, partial=True)
    result, text, goals = save(rows, partial=False)
    print(text)
    if not args.no_plot:
        plot(goals, s.backends, title, out_dir / "backend_compare.png")
    print(f"\nwrote {out_dir}/backend_compare.{{txt,json{'' if args.no_plot else ',png'}}}")
    return result


if __name__ == "__main__":
    main()
