"""Run times: the median of repeated calls, by CUDA events on a GPU and ``torch.utils.benchmark`` on the
CPU, and the copy bandwidth that serves as the roofline.

On a GPU ``triton.testing.do_bench`` (CUDA events, L2 flushed before every run), falling back to plain
CUDA events; on the CPU ``torch.utils.benchmark.Timer.blocked_autorange`` with every intra-op thread (a
call slower than the time budget is timed once). Both report the median. ``time_alternating`` times
the members of a ratio in alternating rounds of ``time_function`` on either device, so that the ratio
survives a shared machine's (or a GPU's clocks') drift.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Median and spread of one function's run time, in seconds, over ``samples`` measurements that
    took ``calls`` calls in all (on the CPU each sample is the mean of a block of calls)."""

    median_s: float
    p20_s: float
    p80_s: float
    samples: int
    calls: int

    def fields(self) -> dict[str, float | int]:
        """The figures of a results row: median / p20 / p80 in milliseconds, samples, calls."""
        ms = {"median_ms": self.median_s * 1e3, "p20_ms": self.p20_s * 1e3, "p80_ms": self.p80_s * 1e3}
        return {**ms, "samples": self.samples, "calls": self.calls}


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def warm_up(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float, float]:
    """The first call of ``fn`` (compiles, autotuning) and three more: (the first call's result, its
    seconds, the steady seconds of one call: the fastest of the three). The steady time, not the first,
    sizes the timed calls that follow: the first carries one-time costs (10x and more)."""
    import time

    def timed() -> tuple[Any, float]:
        synchronize(device)
        start = time.perf_counter()
        out = fn()
        synchronize(device)
        return out, time.perf_counter() - start

    out, first_s = timed()
    return out, first_s, min(timed()[1] for _ in range(3))


def time_function(
    fn: Callable[[], Any], device: torch.device, min_time_s: float, expected_s: float | None = None
) -> Timing:
    """Median run time of ``fn`` (already warmed up), measured for about ``min_time_s`` seconds.

    ``expected_s`` is one call's time if known (the warm-up's): on a GPU it stretches the budget to at
    least 3 runs; on the CPU a call longer than ``min_time_s`` is timed exactly once (a global-scope
    reference call at the paper's size takes 10 s on 2 cores; autorange would add a calibration run)."""
    if device.type == "cuda":
        if expected_s is not None:
            min_time_s = max(min_time_s, 3 * expected_s)
        times_ms = _cuda_times_ms(fn, min_time_s)
        times = [t / 1e3 for t in times_ms]
        calls = len(times)
    else:
        from torch.utils.benchmark import Timer

        timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
        if expected_s is not None and expected_s > min_time_s:
            times, calls = [timer.timeit(number=1).median], 1
        else:
            measurement = timer.blocked_autorange(min_run_time=min_time_s)
            times = list(measurement.times)
            calls = len(times) * measurement.number_per_run
    return Timing(_quantile(times, 0.5), _quantile(times, 0.2), _quantile(times, 0.8), len(times), calls)


def time_alternating(
    fns: dict[str, Callable[[], Any]],
    device: torch.device,
    min_time_s: float,
    expected_s: dict[str, float] | None = None,
    rounds: int = 6,
) -> dict[str, Timing]:
    """Median run times of several functions (already warmed up) timed in alternating rounds, on any device.

    Each round times every function with :func:`time_function` for ``min_time_s / rounds`` seconds, in
    the given order in even rounds and the reverse order in odd ones, so that neither always runs first
    and a slow spell of the machine (a GPU's clocks, a shared CPU) weighs on all alike. Each function's
    median is the median of its rounds' medians, its spread their 20th / 80th percentiles."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    expected_s = expected_s or {}
    medians: dict[str, list[float]] = {name: [] for name in fns}
    calls = dict.fromkeys(fns, 0)
    names = list(fns)
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else names[::-1]:
            timing = time_function(fns[name], device, min_time_s / rounds, expected_s.get(name))
            medians[name].append(timing.median_s)
            calls[name] += timing.calls
    return {
        name: Timing(_quantile(m, 0.5), _quantile(m, 0.2), _quantile(m, 0.8), len(m), calls[name])
        for name, m in medians.items()
    }


def _cuda_times_ms(fn: Callable[[], Any], min_time_s: float) -> list[float]:
    rep_ms = max(1.0, min_time_s * 1e3)
    try:
        from triton.testing import do_bench

        times = do_bench(fn, warmup=max(1.0, rep_ms / 4), rep=rep_ms, return_mode="all")
        if isinstance(times, (list, tuple)) and times:
            return [float(t) for t in times]
    except (ImportError, TypeError, AssertionError):
        pass
    return _cuda_event_times_ms(fn, rep_ms)


def _cuda_event_times_ms(fn: Callable[[], Any], rep_ms: float) -> list[float]:
    """Fallback of do_bench: CUDA events around each call, L2 flushed by a 256 MiB write before each."""
    flush = torch.empty(64 * 2**20, dtype=torch.int32, device="cuda")
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    estimate = max(start.elapsed_time(end), 1e-3)
    count = max(3, min(1000, int(rep_ms / estimate)))
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(count)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(count)]
    for i in range(count):
        flush.zero_()
        starts[i].record()
        fn()
        ends[i].record()
    torch.cuda.synchronize()
    return [s.elapsed_time(e) for s, e in zip(starts, ends)]


def copy_bandwidth(device: torch.device, nbytes: int, min_time_s: float) -> float:
    """Bytes per second of a large tensor copy, counting bytes read plus bytes written (the roofline)."""
    src = torch.rand(nbytes // 4, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    synchronize(device)
    timing = time_function(lambda: dst.copy_(src), device, min_time_s)
    return 2 * src.numel() * 4 / timing.median_s
