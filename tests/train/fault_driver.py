"""``python -m gramgan.train ARGS`` with faults injected at exact points, for the preemption and elastic
restart tests (run directly, or as torchrun's script)::

    python tests/train/fault_driver.py [--only-rank R] [--send NAME@N] [--send-during-save NAME,...]
                                       [--kill-at N] -- ARGS

``--send NAME@N`` sends NAME to this process during step N + 1 (when N iterations are done);
``--send-during-save`` sends the named signals halfway through writing each checkpoint file;
``--kill-at N`` SIGKILLs this process during step N + 1, on the first attempt of a torchrun group only.
``--only-rank`` limits the faults to that rank (default: every rank). The option names avoid the
prefixes of torchrun's own options.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
from collections.abc import Callable

import torch

from gramgan.train import loop
from gramgan.train.__main__ import main


def _before_step(iteration: int, action: Callable[[], None]) -> None:
    """Run ``action`` at the start of the step that follows ``iteration`` completed iterations."""
    for name in ("gan_step", "psnr_step"):
        real = getattr(loop, name)

        def step(run, lr, hr, _real=real):
            if run.iteration == iteration:
                action()
            return _real(run, lr, hr)

        setattr(loop, name, step)


def _signals_during_save(names: list[str]) -> None:
    """Checkpoint files are written in two halves with ``names`` sent to this process in between."""
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        if not (isinstance(obj, dict) and "format" in obj and hasattr(f, "write")):
            return real_save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        f.write(data[: len(data) // 2])
        for name in names:
            os.kill(os.getpid(), signal.Signals[name])
        f.write(data[len(data) // 2 :])

    torch.save = save


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only-rank", type=int)
    parser.add_argument("--send")
    parser.add_argument("--send-during-save")
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("args", nargs=argparse.REMAINDER)
    opts = parser.parse_args(argv)
    args = opts.args[1:] if opts.args[:1] == ["--"] else opts.args
    if opts.only_rank is None or opts.only_rank == int(os.environ.get("RANK", "0")):
        if opts.send:
            name, at = opts.send.split("@")
            _before_step(int(at), lambda: os.kill(os.getpid(), signal.Signals[name]))
        if opts.send_during_save:
            _signals_during_save(opts.send_during_save.split(","))
        if opts.kill_at is not None and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0":
            _before_step(opts.kill_at, lambda: os.kill(os.getpid(), signal.SIGKILL))
    return main(args)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
