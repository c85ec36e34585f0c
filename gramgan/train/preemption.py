"""Stopping a run cleanly when the cluster asks: preemption (``SIGTERM``) and the warning SLURM sends
before a job's time limit (``SIGUSR1``, ``#SBATCH --signal=USR1@180``).

While :class:`StopSignals` is active, each signal of ``train.stop_signals`` only notes that a stop was
asked for; nothing is interrupted. The loop asks :meth:`StopSignals.requested` once per iteration,
between steps: every rank answers the same (a max all-reduce of the signal each rank received), so the
ranks stop after the same step, rank 0 writes a checkpoint, and the process exits with
:data:`EXIT_PREEMPTED`. A second signal, during the save or at any time, is noted and changes nothing:
the save goes on, and its file appears under its final name only once complete (:mod:`gramgan.atomic`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import FrameType

import torch
import torch.distributed as dist

from gramgan.train.distributed import DistInfo

__all__ = [
    "DEFAULT_STOP_SIGNALS",
    "EXIT_PREEMPTED",
    "PREEMPTED_FILE",
    "Preempted",
    "StopSignals",
    "ignore_signals",
    "signal_numbers",
]

EXIT_PREEMPTED = 75  # sysexits.h EX_TEMPFAIL, "temporary failure, try again": a requeue script's cue
DEFAULT_STOP_SIGNALS = ("SIGTERM", "SIGUSR1")
PREEMPTED_FILE = "preempted.json"  # written by rank 0 in the run folder; torchrun does not pass 75 on
_UNCATCHABLE = {"SIGKILL", "SIGSTOP"}


class Preempted(Exception):
    """The run stopped on a signal after writing ``checkpoint`` at ``iteration`` (None: nothing new to
    save, the run had not stepped since it started)."""

    def __init__(self, signal_name: str, iteration: int, checkpoint: Path | None) -> None:
        super().__init__(f"stopped by {signal_name} at iteration {iteration}")
        self.signal_name = signal_name
        self.iteration = iteration
        self.checkpoint = checkpoint


def signal_numbers(names: Iterable[str]) -> list[int]:
    """The signal numbers of ``names`` ("SIGTERM", "SIGUSR1", ...); ValueError names a bad one."""
    numbers = []
    for name in names:
        if name in _UNCATCHABLE or name not in signal.Signals.__members__:
            raise ValueError(f"{name!r} is not a signal that can be caught (e.g. SIGTERM, SIGUSR1, SIGUSR2)")
        numbers.append(int(signal.Signals[name]))
    return numbers


def ignore_signals(names: Sequence[str], worker_id: int = 0) -> None:
    """Ignore ``names`` in this process: the ``worker_init_fn`` of data-loader workers, which a cluster
    signals along with the trainer (every process of the job) and which must not die before it has
    finished its step."""
    for number in signal_numbers(names):
        signal.signal(number, signal.SIG_IGN)


class StopSignals(contextlib.AbstractContextManager):
    """Notes the signals ``names`` instead of dying on them, while active (``with StopSignals(...)``);
    the previous handlers come back on exit. Handlers can only be installed in the main thread: in
    another one the signals keep their usual effect."""

    def __init__(self, names: Sequence[str], info: DistInfo) -> None:
        self.numbers = signal_numbers(names)
        self.info = info
        self.received: int = 0  # the first signal noted (0: none)
        self.count = 0  # every signal noted, the first and any repeats
        self._previous: dict[int, object] = {}
        self._group = None
        if info.enabled and dist.get_backend() != "gloo":
            # A CPU group for the flag, so that asking does not wait for the GPU (collective: every rank).
            self._group = dist.new_group(backend="gloo")

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for number in self.numbers:
                self._previous[number] = signal.signal(number, self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _note(self, number: int, frame: FrameType | None) -> None:
        self.count += 1
        if not self.received:
            self.received = number

    def requested(self) -> str | None:
        """The name of the signal that asks this run to stop, the same on every rank (a collective
        under DDP: call it at the same point on all of them), or None."""
        number = self.received
        if self.info.enabled:
            flag = torch.tensor([number], dtype=torch.int64)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group)
            number = int(flag.item())
        return signal.Signals(number).name if number else None
