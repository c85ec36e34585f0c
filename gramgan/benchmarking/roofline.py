"""Per-case roofline: the read floor (the op's bytes at the bandwidth of a pass over its own inputs) and
the compute floor (its FLOPs at the multiply-add rate of a large matmul), both measured in the run.

The copy bandwidth of a big buffer (timing.copy_bandwidth) is the wrong yardstick for an op whose inputs
fit in a cache: such an op can beat it. Here the bandwidth comes from summing exactly the op's input
tensors, timed like the op (same timer, same warm cache state, or the same L2 flush on a GPU), so the read
floor is a time the op cannot beat; the binding floor is the larger of the two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from gramgan.benchmarking.timing import synchronize, time_function

MATMUL_SIDE = {"cpu": 1024, "cuda": 8192}  # square matmul whose rate stands for the peak multiply-add rate


@dataclass
class Floors:
    """The least times of one case: ``read_s`` (bytes read + written over the measured read bandwidth)
    and ``compute_s`` (FLOPs over the measured rate)."""

    read_s: float
    compute_s: float

    @property
    def bound(self) -> str:
        return "read" if self.read_s >= self.compute_s else "compute"

    @property
    def floor_s(self) -> float:
        return max(self.read_s, self.compute_s)


def read_bandwidth(tensors: Sequence[torch.Tensor], device: torch.device, min_time_s: float) -> float:
    """Bytes per second of the fastest of a few passes that each read every byte of ``tensors`` once
    (a sum of each, an amax of each; on the CPU each also on one thread), timed warm.

    One pass is not a floor on its own: on a loaded CPU an all-thread reduction waits for its slowest
    thread and can take several times longer than one thread reading the same bytes, so that an op
    would seem to beat its floor. The fastest pass is the best this machine showed for those bytes.
    """
    tensors = [t.detach() for t in tensors]
    nbytes = sum(t.numel() * t.element_size() for t in tensors)
    passes = [lambda: [t.sum() for t in tensors], lambda: [t.amax() for t in tensors]]
    thread_counts = sorted({torch.get_num_threads(), 1}) if device.type == "cpu" else [torch.get_num_threads()]
    share = min_time_s / (len(passes) * len(thread_counts))
    best_s = math.inf
    saved = torch.get_num_threads()
    try:
        for threads in thread_counts:
            torch.set_num_threads(threads)
            for read in passes:
                read()
                synchronize(device)
                best_s = min(best_s, time_function(read, device, share).median_s)
    finally:
        torch.set_num_threads(saved)
    return nbytes / best_s


def flop_rate(device: torch.device, dtype: torch.dtype, min_time_s: float) -> float:
    """FLOP/s (a multiply-add counts 2) of a square ``dtype`` matmul on ``device``, all threads."""
    n = MATMUL_SIDE.get(device.type, 1024)
    a = torch.rand(n, n, device=device).to(dtype)
    b = torch.rand(n, n, device=device).to(dtype)
    torch.mm(a, b)
    synchronize(device)
    return 2 * n**3 / time_function(lambda: torch.mm(a, b), device, min_time_s).median_s


def floors(bytes_moved: int, bandwidth: float, flops: float, rate: float) -> Floors:
    return Floors(read_s=bytes_moved / bandwidth, compute_s=flops / rate)


def add_floors(row: dict[str, Any], case_floors: Floors) -> None:
    """A results row's floors (ms), which binds, and ``fraction_of_floor`` = binding floor / median.

    A row timed faster than its floor gets ``floor_error`` (and no fraction) instead: the floor is a
    time no kernel can beat, so beating it means the floor or the timing was measured wrong, and a
    percentage above 100 would hide that.
    """
    row.pop("fraction_of_floor", None)
    row.pop("floor_error", None)
    row.update(
        read_floor_ms=case_floors.read_s * 1e3,
        compute_floor_ms=case_floors.compute_s * 1e3,
        bound=case_floors.bound,
    )
    if row.get("status") != "ok":
        return
    median_s = row["median_ms"] / 1e3
    if median_s < case_floors.floor_s:
        row["floor_error"] = (
            f"timed {row['median_ms']:.3g} ms, faster than its {case_floors.bound} floor "
            f"{case_floors.floor_s * 1e3:.3g} ms: a measurement error (a noisy run or a floor measured wrong)"
        )
        return
    row["fraction_of_floor"] = case_floors.floor_s / median_s
