"""Peak memory of one call.

On a GPU ``torch.cuda.max_memory_allocated``; on the CPU the running total of the profiler's allocation
events (``profile_memory=True``), i.e. bytes that torch's allocator hands out during one call above what
existed before it (memory a C++ kernel takes outside torch's allocator is not seen).

The profiler's library (Kineto) logs to stderr when it starts: a ``gpuGetDeviceCount failed`` error on a
machine without a GPU and a line per profiling session. ``KINETO_LOG_LEVEL`` is read once, when the
profiler first starts, so it is set (unless the user set it) before that: 6 is above every level Kineto
logs at.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gramgan.benchmarking.timing import synchronize

os.environ.setdefault("KINETO_LOG_LEVEL", "6")


def probe_call(fn: Callable[[], Any], device: torch.device, track_memory: bool) -> tuple[Any, float, int | None]:
    """Runs ``fn`` once: (its result, wall seconds, peak bytes allocated above the start or None).

    On the CPU the memory is read from the profiler, which slows the call: the seconds are then only
    indicative (this call is a warm-up, never a timing)."""
    synchronize(device)
    if device.type == "cuda":
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        out = fn()
        torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(device) - before if track_memory else None
        return out, seconds, peak
    if not track_memory:
        start = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - start, None
    return _cpu_profiled_call(fn)


def _cpu_profiled_call(fn: Callable[[], Any]) -> tuple[Any, float, int | None]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        start = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(trace))
        events = json.loads(trace.read_text()).get("traceEvents", [])
    memory = [
        event["args"]
        for event in sorted(events, key=lambda event: event.get("ts", 0))
        if event.get("name") == "[memory]" and event.get("args", {}).get("Device Type", 0) == 0
    ]
    if not memory:
        return out, seconds, 0
    # "Total Allocated" is a running total that carries over between profiler sessions: measure from
    # the value just before the first event of this one.
    start = memory[0]["Total Allocated"] - memory[0]["Bytes"]
    return out, seconds, max(0, max(args["Total Allocated"] for args in memory) - start)
