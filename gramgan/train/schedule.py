"""The learning-rate schedule (``docs/training.md``): cycles of linear warm-up then cosine decay.

Within a cycle of length L starting at iteration c0, at position p = i - c0:

* ``p < W`` (warm-up, ``W = warmup_iters``): ``lr = base_lr * p / W`` (0 at the cycle start);
* ``p >= W``: ``lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * (p - W) / (L - W))) / 2``,
  falling from ``base_lr`` to ``min_lr`` at the cycle's end.

From ``total_iters`` on the value is ``min_lr`` (so the schedule ends at exactly 1e-7 at 600k).
Cycle lengths (and optionally their peak rates) are lists; the last one repeats. The paper:
base 1e-4, min 1e-7, cycles of 200k, warm-up 2,000 iterations (ours), 600k in all. The schedule
is stepped once per iteration, so training step ``i + 1`` runs with ``lr_at(i)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from torch.optim import Optimizer

__all__ = ["ScheduleConfig", "WarmupCosineScheduler", "lr_at"]


@dataclass
class ScheduleConfig:
    """Learning-rate schedule (``docs/training.md``).

    Attributes:
        base_lr: peak learning rate of every cycle, for G and D (1e-4, paper).
        min_lr: value at the end of each cosine decay (1e-7, paper).
        warmup_iters: linear warm-up from 0 at the start of each cycle (2000, ours).
        cycle_iters: lengths of successive cycles; the last repeats ([200000], paper).
        cycle_lrs: peak learning rate of each cycle, the last repeating; null = ``base_lr`` for
            every cycle (None; ours: lets one run use one rate for a psnr phase and another
            for the GAN phase, as the demo does).
    """

    base_lr: float = 1e-4
    min_lr: float = 1e-7
    warmup_iters: int = 2000
    cycle_iters: list[int] = field(default_factory=lambda: [200_000])
    cycle_lrs: list[float] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.cycle_iters, int):
            self.cycle_iters = [self.cycle_iters]
        if not self.cycle_iters or any(int(c) <= 0 for c in self.cycle_iters):
            raise ValueError(f"schedule.cycle_iters must be positive lengths, got {self.cycle_iters}")
        if self.warmup_iters < 0 or any(self.warmup_iters >= c for c in self.cycle_iters):
            raise ValueError(
                f"schedule.warmup_iters ({self.warmup_iters}) must be >= 0 and shorter than every cycle "
                f"({self.cycle_iters})"
            )
        if not (self.base_lr >= 0 and self.min_lr >= 0):
            raise ValueError(f"learning rates must be >= 0, got base {self.base_lr}, min {self.min_lr}")
        if self.cycle_lrs is not None and (not self.cycle_lrs or any(lr < 0 for lr in self.cycle_lrs)):
            raise ValueError(f"schedule.cycle_lrs must be a non-empty list of rates >= 0, got {self.cycle_lrs}")

    def peak_lr(self, cycle: int) -> float:
        """The peak learning rate of cycle number ``cycle`` (0-based)."""
        if self.cycle_lrs is None:
            return self.base_lr
        return self.cycle_lrs[min(cycle, len(self.cycle_lrs) - 1)]


def _cycle_position(iteration: int, cycles: Sequence[int]) -> tuple[int, int, int]:
    """(cycle number, position within that cycle, its length)."""
    start = 0
    for number, length in enumerate(cycles[:-1]):
        if iteration < start + length:
            return number, iteration - start, length
        start += length
    last = cycles[-1]
    return len(cycles) - 1 + (iteration - start) // last, (iteration - start) % last, last


def lr_at(iteration: int, cfg: ScheduleConfig, total_iters: int) -> float:
    """The learning rate for the step taken at ``iteration`` (0-based)."""
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    if iteration >= total_iters:
        return cfg.min_lr
    cycle, p, length = _cycle_position(iteration, cfg.cycle_iters)
    peak = cfg.peak_lr(cycle)
    w = cfg.warmup_iters
    if p < w:
        return peak * p / w
    progress = (p - w) / (length - w)
    return cfg.min_lr + (peak - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosineScheduler:
    """Sets every param group's ``lr`` to :func:`lr_at` of the current iteration.

    ``step()`` advances one iteration; ``state_dict()`` is just the iteration (plain ints), so a
    resumed scheduler reproduces the same values. Construction sets the lr for ``last_iter``.
    """

    def __init__(self, optimizer: Optimizer, cfg: ScheduleConfig, total_iters: int, last_iter: int = 0) -> None:
        self.optimizer = optimizer
        self.cfg = cfg
        self.total_iters = total_iters
        self.last_iter = last_iter
        self._apply()

    def _apply(self) -> None:
        lr = lr_at(self.last_iter, self.cfg, self.total_iters)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self) -> None:
        self.last_iter += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, int]:
        return {"last_iter": self.last_iter}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.last_iter = int(state["last_iter"])
        self._apply()
