"""Where a call's time goes, from a profiled run: what it launches and how long the device is busy.

A call whose kernels keep the GPU busy for a small part of its wall time is bound by its launches (the
host queues the work more slowly than the GPU runs it), so making its kernels faster would not help;
fewer launches and less host work would. On the CPU there is no device timeline: the count of operators
dispatched per call stands in for the launches. (The profiler's start-up logging is silenced by
:mod:`~gramgan.benchmarking.memory`, which the package imports first.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gramgan.benchmarking.results import write_text
from gramgan.benchmarking.timing import synchronize


@dataclass
class LaunchProfile:
    """Per call, averaged over ``calls`` profiled calls: wall milliseconds (with the profiler's own
    overhead), device-busy milliseconds (kernels, copies and memsets; None on the CPU) and launches
    (device activities on a GPU, top-level operators on the CPU)."""

    calls: int
    wall_ms: float
    device_ms: float | None
    launches: float

    def busy_share(self, median_ms: float) -> float | None:
        """The share of a call of ``median_ms`` (its timed median) the device is busy; None on the CPU."""
        return None if self.device_ms is None else self.device_ms / median_ms

    def fields(self) -> dict[str, Any]:
        return {"calls": self.calls, "wall_ms": self.wall_ms, "device_ms": self.device_ms, "launches": self.launches}


def _activities(device: torch.device) -> list:
    from torch.profiler import ProfilerActivity

    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])


def _is_operator(event: Any) -> bool:
    return event.name.startswith(("aten::", "gramgan"))


def _top_level_operators(events: list) -> int:
    """Operators not called by another operator: what Python (or autograd) dispatched itself."""

    def nested(event: Any) -> bool:
        parent = event.cpu_parent
        while parent is not None:
            if _is_operator(parent):
                return True
            parent = parent.cpu_parent
        return False

    return sum(1 for e in events if _is_operator(e) and not nested(e))


def launch_profile(fn: Callable[[], Any], device: torch.device, calls: int = 5) -> LaunchProfile:
    """Profiles ``calls`` calls of ``fn`` (already warmed up) and returns what each cost on average."""
    from torch.autograd import DeviceType
    from torch.profiler import profile

    synchronize(device)
    with profile(activities=_activities(device)) as prof:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        synchronize(device)
        wall_s = time.perf_counter() - start
    events = list(prof.events())
    if device.type == "cuda":
        device_events = [e for e in events if e.device_type == DeviceType.CUDA]
        busy_us = sum(e.time_range.elapsed_us() for e in device_events)
        device_ms, launches = busy_us / 1e3 / calls, len(device_events) / calls
    else:
        device_ms, launches = None, _top_level_operators(events) / calls
    return LaunchProfile(calls, wall_s * 1e3 / calls, device_ms, launches)


def write_profile_table(fn: Callable[[], Any], device: torch.device, path: Path, title: str) -> None:
    """One call of ``fn`` under the profiler: its 30 costliest operators and kernels (self time on the
    device where it is a GPU) in ``path``, to show where the time goes."""
    from torch.profiler import profile

    with profile(activities=_activities(device)) as prof:
        fn()
        synchronize(device)
    sort_by = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=sort_by, row_limit=30, max_name_column_width=70)
    write_text(path, f"one profiled call of {title}\n\n{table}\n")
