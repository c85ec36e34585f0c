"""The texture term and its three goals, measured in one run as ratios on one device.

    python -m benchmarks.texture_term [--device cpu|cuda] [--backend cpu|triton|cuda|reference] [--out DIR]

At the paper's size (B = 8, 192 x 192, C = 3, K = 6 local candidates: J = 4 warps, k = 4, float32):

1. the fused local loss forward+backward on prebuilt candidates (``ops.gram_texture_loss``) against the
   read floor: the fastest single pass that reads its inputs (SR and the candidate stack, exactly
   those bytes) once, timed the same way (goal <= 3x); the read passes, the fused loss and the sampled
   texture term of row 2 are timed in alternating rounds (``harness.time_alternating``), so that their ratios
   hold on a shared machine whose speed drifts;
2. the whole texture term as training runs it (``texture.texture_loss`` forward+backward: candidates
   sampled by the kernels, ``materialize=False``; the built stack, ``materialize=True``, for
   comparison) against the fused loss of row 1 (goal <= 2x); the forwards alone and the half-size
   image are timed too, as a breakdown, and both members of the ratio are profiled: their launches per
   call and, on a GPU, the share of the call the device is busy (``harness.launch_profile``);
3. the global search (``ops.gram_select``, scope global, M = 12,240 candidate patches per image:
   HR, HR down x2, HR down x4, 4 warps) against Beby-GAN's formulation in eager PyTorch on the same
   Gram vectors (Grams, then ||x||^2 + ||y||^2 - 2 x.y by bmm and argmin, per image; goal >= 5x), with a
   check that both select the same candidates wherever their scores are not within rounding.

At the sizes drop-in users train with (``--large``, the default on a GPU only: B = 32 at 256 x 256 and
B = 64 at 384 x 384, or ``--large-sizes``), where the paper's size is launch-bound on a GPU, rows 1 and 2
are timed again (without the breakdown): the fused loss within 3x of its read floor and the sampled texture
term within 1.5x of the fused loss.

A measurement that cannot run (a kernel not built yet, a backend missing here) is reported as
``n/a (reason)``; the script always exits 0. Writes ``texture_term.{txt,json,png}`` under
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
from gramgan.losses import texture
from gramgan.losses.candidates import build_global_candidates
from gramgan.ops import reference as R

CHANNELS, PATCH, WARPS = 3, 4, 4  # C, k, J
GLOBAL_GT_WEIGHT = 1.0  # the global scope's default (Beby-GAN's regulariser, docs/candidates.md)
GOALS = {"fused_vs_read": 3.0, "term_vs_fused": 2.0, "select_speedup": 5.0}
# The sizes drop-in users train with, (B, H = W): timed with --large (the default on a GPU), to these goals.
LARGE_GOALS = {"fused_vs_read": 3.0, "term_vs_fused": 1.5}
NAME_WIDTH = 48


def beby_gan_select(g_sr: torch.Tensor, g_gt: torch.Tensor, bank: torch.Tensor, gt_weight: float) -> torch.Tensor:
    """Beby-GAN's search on flattened Gram vectors, eager: per image, the score matrix
    ``||x - y||^2 + gt_weight ||g - y||^2`` expanded as norms minus ``2 bmm`` terms, then argmin.

    ``g_sr``, ``g_gt``: ``(B, N, D)`` queries and their ground-truth vectors; ``bank``: ``(B, M, D)``.
    One image at a time (its N x M scores, 113 MB at the paper's size, never the whole batch's)."""
    bank_sq = bank.square().sum(-1)
    index = torch.empty(g_sr.shape[:2], dtype=torch.long, device=g_sr.device)
    for b in range(g_sr.shape[0]):
        x, g, y = g_sr[b], g_gt[b], bank[b]
        scores = torch.addmm(x.square().sum(-1, keepdim=True) + bank_sq[b], x, y.T, alpha=-2.0)
        if gt_weight:
            scores += gt_weight * torch.addmm(g.square().sum(-1, keepdim=True) + bank_sq[b], g, y.T, alpha=-2.0)
        index[b] = scores.argmin(dim=1)
    return index


def gram_vectors(x: torch.Tensor) -> torch.Tensor:
    """The k x k patches' Gram matrices of ``x`` flattened: ``(B, N, C*C)``, row-major patches."""
    return R.patch_gram(x, PATCH).flatten(1, 2).flatten(2)


def eager_global_select(sr: torch.Tensor, candidates: Sequence[torch.Tensor], gt_weight: float) -> torch.Tensor:
    """Beby-GAN's global search from the images: Gram vectors of SR, HR and every candidate, then the search."""
    bank = torch.cat([gram_vectors(c) for c in candidates], dim=1)
    index = beby_gan_select(gram_vectors(sr), gram_vectors(candidates[0]), bank, gt_weight)
    return index.reshape(sr.shape[0], sr.shape[-2] // PATCH, sr.shape[-1] // PATCH)


def selection_check(sr: torch.Tensor, candidates: Sequence[torch.Tensor], a: torch.Tensor, b: torch.Tensor) -> dict:
    """Where two selections differ, whether their float64 scores differ by more than the float32 rounding
    of the expanded form (1e-6 of ``||x||^2 + ||g||^2 + 2 ||y||^2``, the terms that cancel)."""
    g_sr, g_gt = gram_vectors(sr.double()), gram_vectors(candidates[0].double())
    bank = torch.cat([gram_vectors(c.double()) for c in candidates], dim=1)

    def score_and_scale(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = torch.gather(bank, 1, index.flatten(1)[..., None].expand(-1, -1, bank.shape[-1]))
        score = (g_sr - chosen).square().sum(-1) + GLOBAL_GT_WEIGHT * (g_gt - chosen).square().sum(-1)
        scale = g_sr.square().sum(-1) + GLOBAL_GT_WEIGHT * g_gt.square().sum(-1) + 2 * chosen.square().sum(-1)
        return score, scale

    differ = a.flatten(1) != b.flatten(1)
    (sa, scale_a), (sb, scale_b) = score_and_scale(a), score_and_scale(b)
    beyond = differ & ((sa - sb).abs() > 1e-6 * torch.maximum(scale_a, scale_b))
    return {"patches": a.numel(), "differing": int(differ.sum()), "differing_beyond_rounding": int(beyond.sum())}


class Measurements:
    """Times named calls on one device; a call that raises is recorded as ``n/a`` with its reason."""

    def __init__(self, device: torch.device, min_time_s: float, verbose: bool) -> None:
        self.device, self.min_time_s, self.verbose = device, min_time_s, verbose
        self.results: dict[str, dict[str, Any]] = {}
        self.profiles: dict[str, harness.LaunchProfile] = {}

    def time(self, name: str, fn: Callable[[], Any]) -> Any:
        """Warm-up call (JIT, autotuning), then the median of timed calls; returns the warm-up's result."""
        try:
            out, first_s, _ = harness.probe_call(fn, self.device, track_memory=False)
            timing = harness.time_function(fn, self.device, self.min_time_s, expected_s=first_s)
        except Exception as error:  # noqa: BLE001 - a missing kernel is a result, not a crash
            self.results[name] = {"status": "n/a", "reason": harness.failure_reason(error)}
            out = None
        else:
            self.results[name] = {"status": "ok", **timing.fields(), "first_call_ms": first_s * 1e3}
        if self.verbose:
            print(f"  {name:<{NAME_WIDTH}} {self.shown(name)}", flush=True)
        harness.free_memory(self.device)
        return out

    def time_together(self, fns: dict[str, Callable[[], Any]]) -> None:
        """Times the calls of ``fns`` in alternating rounds (harness.time_alternating), after one warm-up
        call each: the members of a goal's ratio, so that a slow spell of the machine weighs on all.

        Each function's expected call time is its steady one (``harness.warm_up``), not its first call's."""
        first, expected, ready = {}, {}, {}
        for name, fn in fns.items():
            try:
                _, first[name], expected[name] = harness.warm_up(fn, self.device)
                ready[name] = fn
            except Exception as error:  # noqa: BLE001 - a missing kernel is a result, not a crash
                self.results[name] = {"status": "n/a", "reason": harness.failure_reason(error)}
        for name, timing in harness.time_alternating(ready, self.device, self.min_time_s, expected).items():
            self.results[name] = {"status": "ok", **timing.fields(), "first_call_ms": first[name] * 1e3}
        if self.verbose:
            for name in fns:
                print(f"  {name:<{NAME_WIDTH}} {self.shown(name)}", flush=True)
        harness.free_memory(self.device)

    def profile(self, name: str, fn: Callable[[], Any]) -> None:
        """Where the time of a timed call goes (``harness.launch_profile``): launches and device-busy time.
        Extra information: a profiler that fails here loses only this, with its reason printed."""
        if self.results.get(name, {}).get("status") != "ok":
            return
        try:
            self.profiles[name] = harness.launch_profile(fn, self.device)
        except Exception as error:  # noqa: BLE001 - the timings stand without it
            print(f"  {name}: not profiled ({harness.failure_reason(error)})", flush=True)

    def ms(self, name: str) -> float | None:
        return self.results.get(name, {}).get("median_ms")

    def shown(self, name: str) -> str:
        row = self.results[name]
        return f"{row['median_ms']:.3f} ms" if row["status"] == "ok" else f"n/a ({row['reason'].split('. ')[0][:100]})"

    def ratio(self, top: str, bottom: str) -> float | None:
        a, b = self.ms(top), self.ms(bottom)
        return None if a is None or b is None else a / b


def size_prefix(b: int, h: int) -> str:
    """How the measurements of a size other than the main one are named: ``"B=32 256x256: "``."""
    return f"B={b} {h}x{h}: "


def measure_local(
    m: Measurements, b: int, h: int, backend: str, device: torch.device, prefix: str = "", breakdown: bool = True
) -> None:
    """Rows 1 and 2: read floor, fused loss on a prebuilt stack, the sampled texture term; with
    ``breakdown`` also the materialized term, the forwards alone and the half-size image. Each name
    starts with ``prefix``."""
    gen = torch.Generator(device=device).manual_seed(0)
    hr = torch.rand(b, CHANNELS, h, h, generator=gen, device=device)
    sr = (hr + 0.05 * torch.randn(hr.shape, generator=gen, device=device)).requires_grad_(True)
    candidates = texture.build_candidates(hr, "local", WARPS, patch_size=PATCH)
    data = sr.detach()

    def fwd_bwd(loss: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            sr.grad = None
            loss().backward()
            return sr.grad

        return run

    # Read passes over exactly SR + candidates (the fastest is the floor), the fused loss and the texture
    # term, timed in alternation: the goals are their ratios.
    compared = {
        f"{prefix}fused loss fwd+bwd": fwd_bwd(lambda: ops.gram_texture_loss(sr, candidates, PATCH, backend=backend)),
        f"{prefix}texture term fwd+bwd (sampled)": fwd_bwd(lambda: texture.texture_loss(sr, hr, backend=backend)),
    }  # fmt: skip
    m.time_together({
        f"{prefix}read: sum": lambda: data.sum() + candidates.sum(),
        f"{prefix}read: amax": lambda: data.amax() + candidates.amax(),
        **compared,
    })  # fmt: skip
    for name, fn in compared.items():  # the two members of row 2's ratio: launches and device-busy time
        m.profile(name, fn)
    if not breakdown:
        return
    m.time("texture term fwd+bwd (materialize)",
           fwd_bwd(lambda: texture.texture_loss(sr, hr, backend=backend, materialize=True)))  # fmt: skip
    # Breakdown (no goal): the forwards alone and the half-size image the sampled term starts from.
    with torch.no_grad():
        m.time("  fused loss forward", lambda: ops.gram_texture_loss(data, candidates, PATCH, backend=backend))
        m.time("  texture term forward (sampled)", lambda: texture.texture_loss(data, hr, backend=backend))
        m.time("  half-size image", lambda: ops.downsample_half(hr, backend=backend))


def measure_global(m: Measurements, b: int, h: int, backend: str, device: torch.device) -> dict | None:
    """Row 3: the op's global search against the eager Beby-GAN search; returns the selection check."""
    gen = torch.Generator(device=device).manual_seed(1)
    hr = torch.rand(b, CHANNELS, h, h, generator=gen, device=device)
    sr = hr + 0.05 * torch.randn(hr.shape, generator=gen, device=device)
    candidates = build_global_candidates(hr, WARPS, patch_size=PATCH)
    search = ops.gram_select  # gt_weight 1.0: GLOBAL_GT_WEIGHT
    ours = m.time("gram_select global", lambda: search(sr, candidates, PATCH, "global", 1.0, backend=backend))
    eager = m.time("Beby-GAN eager (Grams + bmm)", lambda: eager_global_select(sr, candidates, GLOBAL_GT_WEIGHT))
    if ours is None or eager is None:
        return None
    return {"candidates_per_image": sum(c.shape[-2] * c.shape[-1] // PATCH**2 for c in candidates)} | selection_check(
        sr, candidates, ours, eager
    )


def read_floor(m: Measurements, prefix: str = "") -> str:
    """The name of the faster read pass of ``prefix``'s size (the read floor)."""
    reads = [f"{prefix}{name}" for name in ("read: sum", "read: amax") if m.ms(f"{prefix}{name}") is not None]
    return min(reads, key=m.ms) if reads else f"{prefix}read: sum"


def large_targets(m: Measurements, device_name: str, sizes: Sequence[tuple[int, int]]) -> list[harness.Target]:
    """Rows 1 and 2's goals at each of the large sizes."""
    found = []
    for b, h in sizes:
        prefix = size_prefix(b, h)
        fused, floor = f"{prefix}fused loss fwd+bwd", read_floor(m, prefix)
        on = f"at B={b} {h}x{h} on {device_name}"
        found.append(
            harness.Target(
                f"fused loss fwd+bwd / read floor ({floor[len(prefix) :]}) {on}",
                m.ratio(fused, floor),
                LARGE_GOALS["fused_vs_read"],
                lower_is_better=True,
            )
        )
        found.append(harness.Target(f"texture term (sampled) / fused loss {on}",
                                    m.ratio(f"{prefix}texture term fwd+bwd (sampled)", fused),
                                    LARGE_GOALS["term_vs_fused"], lower_is_better=True))  # fmt: skip
    return found


def targets(m: Measurements, device_name: str) -> list[harness.Target]:
    """The three goals, each a ratio of two timings of this run."""
    floor = read_floor(m)
    select = m.ratio("Beby-GAN eager (Grams + bmm)", "gram_select global")
    on = f"on {device_name}"
    return [
        harness.Target(f"fused loss fwd+bwd / read floor ({floor}) {on}", m.ratio("fused loss fwd+bwd", floor),
                       GOALS["fused_vs_read"], lower_is_better=True),
        harness.Target(f"texture term (sampled) / fused loss {on}",
                       m.ratio("texture term fwd+bwd (sampled)", "fused loss fwd+bwd"),
                       GOALS["term_vs_fused"], lower_is_better=True),
        harness.Target(f"texture term (materialize) / fused loss {on} [comparison]",
                       m.ratio("texture term fwd+bwd (materialize)", "fused loss fwd+bwd"),
                       GOALS["term_vs_fused"], lower_is_better=True),
        harness.Target(f"global gram_select speed-up over Beby-GAN eager {on}", select, GOALS["select_speedup"]),
    ]  # fmt: skip


def format_report(title: str, m: Measurements, goals: Sequence[harness.Target], check: dict | None) -> str:
    lines = [title, "", f"{'measurement':<{NAME_WIDTH}} {'median':>12}", "-" * (NAME_WIDTH + 14)]
    lines += [f"{name:<{NAME_WIDTH}} {m.shown(name):>12}" for name in m.results]
    lines += ["", f"{'goal':<96} {'goal':>7} {'measured':>9}  pass", "-" * 122]
    for goal in goals:
        relation = "<=" if goal.lower_is_better else ">="
        value = "n/a" if goal.value is None else f"{goal.value:.2f}x"
        lines.append(f"{goal.name:<96} {relation}{goal.goal:g}x".ljust(104) + f" {value:>9}  {goal.verdict}")
    if check is not None:
        lines += ["", "global selection, gram_select vs Beby-GAN eager (sanity check, not a test): "
                  f"{check['differing']} of {check['patches']} patches differ, "
                  f"{check['differing_beyond_rounding']} by more than float32 rounding (float64 scores); "
                  f"M = {check['candidates_per_image']} candidates per image"]  # fmt: skip
    lines += profile_lines(m)
    lines += ["", "read floor: the fastest of sum() / amax() over SR and the candidate stack, once each",
              "eager Beby-GAN: patch Grams of SR, HR and the candidates, then norms - 2 bmm and argmin per image",
              "", *[goal.line() for goal in goals]]  # fmt: skip
    return "\n".join(lines)


def profile_lines(m: Measurements) -> list[str]:
    """The profiled calls: launches per call and, on a GPU, how much of the call the device is busy (a
    small share: the call is bound by its launches and host work, not by its kernels)."""
    if not m.profiles:
        return []
    launches = "kernels+copies" if m.device.type == "cuda" else "top-level ops"
    header = f"{'call':<{NAME_WIDTH}} {'median ms':>10} {launches + ' per call':>24} {'device busy ms':>15} {'busy':>6}"
    lines = ["", f"where the time goes ({next(iter(m.profiles.values())).calls} profiled calls each)", header]
    for name, p in m.profiles.items():
        busy, share = ("-", "-")
        if p.device_ms is not None:
            busy, share = f"{p.device_ms:.3f}", f"{p.busy_share(m.ms(name)):.0%}"
        lines.append(f"{name:<{NAME_WIDTH}} {m.ms(name):>10.3f} {p.launches:>24.1f} {busy:>15} {share:>6}")
    return lines


def plot(m: Measurements, goals: Sequence[harness.Target], title: str, path: Path) -> None:
    """Left: every timing (log ms); right: each goal's measured ratio against its goal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 4.5))
    timed = [(name, row["median_ms"]) for name, row in m.results.items() if row["status"] == "ok"]
    if timed:
        left.barh(*zip(*timed[::-1]), color="C0")
    left.set_xscale("log")
    left.set_xlabel("median ms")
    names = [goal.name.split(" on ")[0] for goal in goals][::-1]
    values = [goal.value or 0.0 for goal in goals][::-1]
    right.barh(names, values, color=["C2" if g.verdict == "met" else "C3" for g in goals][::-1])
    right.scatter([goal.goal for goal in goals][::-1], names, marker="|", s=400, color="k", label="goal")
    right.set_xlabel("ratio (x)")
    right.legend(fontsize=8)
    harness.finish_figure(plt, fig, title, path)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="default cpu")
    parser.add_argument("--backend", choices=ops.BACKEND_NAMES, default="cpu", help="op backend (default cpu)")
    harness.add_size_options(parser, "also time rows 1 and 2 at the large sizes (default: on a GPU only)")
    harness.add_run_options(parser)
    args = parser.parse_args(argv)
    harness.check_sizes(parser, args, 4 * PATCH)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark; returns what it wrote to JSON."""
    args = parse_args(argv)
    harness.apply_threads(args.threads)
    device = harness.pick_device(args.device)
    min_time = args.min_time if args.min_time is not None else (0.2 if device.type == "cuda" else 0.5)
    env = harness.environment(device)
    out_dir = harness.results_dir(args.out, device)
    m = Measurements(device, min_time, not args.quiet)
    reason = ops.backend_availability(device).get(args.backend)
    large = args.large_sizes if (args.large if args.large is not None else device.type == "cuda") else ()
    check = None
    if reason is None:
        measure_local(m, args.batch, args.size, args.backend, device)
        check = measure_global(m, args.batch, args.size, args.backend, device)
        for b, h in large:
            measure_local(m, b, h, args.backend, device, prefix=size_prefix(b, h), breakdown=False)
    else:
        m.results["backend"] = {"status": "n/a", "reason": f"backend {args.backend} cannot run here: {reason}"}
    goals = targets(m, env["device"]) + large_targets(m, env["device"], large)
    title = (
        f"texture term on {env['device']}, backend {args.backend}: B={args.batch}, {args.size}x{args.size}, "
        f"C={CHANNELS}, K={2 + WARPS} (J={WARPS}), k={PATCH}, float32, {env['date_utc'][:10]}"
    )
    text = format_report(title, m, goals, check)
    print(text)
    result = {
        "benchmark": "texture_term",
        "environment": env,
        "args": vars(args),
        "timings": m.results,
        "profiles": {name: p.fields() for name, p in m.profiles.items()},
        "targets": [goal.as_dict() for goal in goals],
        "selection_check": check,
    }
    harness.write_text(out_dir / "texture_term.txt", text + "\n")
    harness.write_json(out_dir / "texture_term.json", result)
    if not args.no_plot:
        plot(m, goals, title, out_dir / "texture_term.png")
    print(f"\nwrote {out_dir}/texture_term.{{txt,json{'' if args.no_plot else ',png'}}}")
    return result


if __name__ == "__main__":
    main()
