"""The training loop (``docs/training.md``): stage ``psnr`` (L1) and stage ``gan`` (one G step, one D step).

:func:`gramgan.train.run.build_run` builds everything; :class:`Trainer` runs the loop, logs,
validates, saves checkpoints and the final outputs. A checkpoint captures the whole run
(:mod:`gramgan.train.checkpoint`), so a resumed run continues bitwise like an uninterrupted one (on
the CPU; GPUs add their own non-determinism unless ``train.deterministic``).

Output folder::

    config.yaml            the resolved configuration
    log.jsonl              train records (window means of every loss term, lr, D's mean logits)
                           and val records (PSNR-Y / SSIM-Y of the EMA generator and of bicubic)
    tensorboard/           the same scalars, when TensorBoard is installed
    checkpoints/iter_*.pt  the latest ``train.keep_checkpoints`` checkpoints
    samples/iter_*/        labelled bicubic | SR | HR comparison PNGs of each validation
    loss_curves.png        drawn from log.jsonl at the end
    generator.pth          final weights, BasicSR-style {"params_ema", "params"}
    metrics.json           the final validation numbers
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor, nn

from gramgan.atomic import atomic_path, atomic_write_text
from gramgan.train.config import TrainConfig, config_to_dict
from gramgan.train.distributed import cleanup_distributed
from gramgan.train.logs import MetricLogger, plot_loss_curves
from gramgan.train.preemption import EXIT_PREEMPTED, PREEMPTED_FILE, Preempted, StopSignals
from gramgan.train.run import build_run, save_run
from gramgan.train.steps import gan_step, psnr_step
from gramgan.train.validation import validate

__all__ = ["TrainResult", "Trainer", "train"]


@dataclass
class TrainResult:
    """What a finished run leaves: where, how far, the final validation and the networks."""

    iteration: int
    output_dir: Path
    checkpoint: Path | None
    metrics: dict[str, float]
    wall_time_s: float
    generator: nn.Module
    generator_ema: nn.Module


class Trainer:
    """One training run: ``Trainer(cfg, output_dir, resume).fit()``. ``resume`` is a checkpoint path to
    continue from (or None); ``say`` receives rank 0's messages (default: printed)."""

    def __init__(
        self,
        cfg: TrainConfig,
        output_dir: str | os.PathLike[str] | None = None,
        resume: str | os.PathLike[str] | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.start_time = time.perf_counter()
        self.cfg = cfg
        self.run = build_run(cfg, output_dir, resume, say)
        self.say = self.run.say

    def fit(self) -> TrainResult:
        from tqdm import tqdm

        run, t = self.run, self.cfg.train
        if run.finished:
            return self._already_complete()
        if run.resumed_from is not None:
            self.say(f"resumed from {run.resumed_from} at iteration {run.iteration}")
        logger = self._open_outputs()
        progress = run.dist.is_main and t.progress
        bar = tqdm(
            total=t.total_iters, initial=run.iteration, unit="it", dynamic_ncols=True, disable=not progress,
            desc=self.cfg.name,
        )  # fmt: skip
        run.say.bar = bar
        batches = run.batches()
        checkpoint = None  # the last one written here (rank 0's path)
        saved_at = run.iteration if run.resumed_from is not None else None  # the newest on disk, every rank
        try:
            with StopSignals(t.stop_signals, run.dist) as stop:
                while run.iteration < t.total_iters:
                    signal_name = stop.requested()  # between steps; every rank gets the same answer
                    if signal_name:
                        self._preempt(logger, signal_name, saved_at == run.iteration, checkpoint or run.resumed_from)
                    if self._step(logger, bar, next(batches)):
                        checkpoint, saved_at = save_run(run), run.iteration
        finally:
            bar.close()
            run.say.bar = None
        return self._finish(logger, checkpoint)

    def _step(self, logger: MetricLogger, bar: Any, batch: dict[str, Any]) -> bool:
        """One iteration: the step, EMA, schedules, logging, validation when due. True when a checkpoint
        is due after it."""
        run, t = self.run, self.cfg.train
        lr = batch["lr"].to(run.device, non_blocking=True)
        hr = batch["hr"].to(run.device, non_blocking=True)
        gan_phase = run.d is not None and run.iteration >= t.psnr_iters
        lrs = {"lr_g": run.sched_g.get_last_lr()[0]}  # the rates this step uses
        if gan_phase:
            lrs["lr_d"] = run.sched_d.get_last_lr()[0]
        values = gan_step(run, lr, hr) if gan_phase else psnr_step(run, lr, hr)
        run.ema.update(run.g)
        run.step_schedules()
        run.iteration += 1
        it = run.iteration
        logger.accumulate(values)
        bar.update(1)
        if it % t.log_every == 0 or it == t.total_iters:
            self._check_finite(values)
            record = logger.flush(it, {"stage": "gan" if gan_phase else "psnr", **self._elapsed(), **lrs})
            if record:
                bar.set_postfix(_postfix(record), refresh=False)
        if t.val_every and it % t.val_every == 0 and it < t.total_iters:
            self._validate(logger)
        return it % t.save_every == 0 or it == t.total_iters

    def _preempt(self, logger: MetricLogger, signal_name: str, saved: bool, checkpoint: Path | None) -> None:
        """Stop on ``signal_name``: write this iteration's checkpoint unless it is ``saved`` already (then
        it is ``checkpoint``) or nothing has run yet, say so in one line, leave a note for requeue scripts,
        raise :class:`Preempted`. ``saved`` must be the same on every rank."""
        run = self.run
        if not saved:
            # Every rank has finished the step; rank 0 writes, then a barrier. Nothing to write at iteration 0.
            checkpoint = save_run(run) if run.iteration > 0 else None
        if run.dist.is_main:
            logger.close()
            note = {"signal": signal_name, "iteration": run.iteration, "checkpoint": str(checkpoint)}
            atomic_write_text(run.output_dir / PREEMPTED_FILE, json.dumps(note) + "\n")
        self.say(
            f"stopped by {signal_name} at iteration {run.iteration}: checkpoint {checkpoint}; exit status "
            f"{EXIT_PREEMPTED}, continue with --resume auto"
        )
        cleanup_distributed(run.dist)
        raise Preempted(signal_name, run.iteration, checkpoint)

    # ------------------------------------------------------------------ around the loop

    def _open_outputs(self) -> MetricLogger:
        run = self.run
        resume_iteration = run.iteration if run.resumed_from is not None else None
        logger = MetricLogger(run.output_dir, enabled=run.dist.is_main, resume_iteration=resume_iteration)
        if run.dist.is_main:
            (run.output_dir / PREEMPTED_FILE).unlink(missing_ok=True)  # this run goes on
            atomic_write_text(run.output_dir / "config.yaml", yaml.safe_dump(config_to_dict(self.cfg), sort_keys=False))
            if not logger.has_tensorboard:
                self.say("TensorBoard is not installed: logging to log.jsonl only")
        return logger

    def _elapsed(self) -> dict[str, float]:
        return {"elapsed_s": round(time.perf_counter() - self.start_time, 2)}

    def _check_finite(self, values: dict[str, Tensor]) -> None:
        bad = [k for k, v in values.items() if not torch.isfinite(v).all()]
        if bad:
            raise FloatingPointError(
                f"non-finite {', '.join(bad)} at iteration {self.run.iteration}; the last good checkpoint is in "
                f"{self.run.output_dir / 'checkpoints'} (try a lower schedule.base_lr or train.precision=fp32)"
            )

    def _validate(self, logger: MetricLogger) -> dict[str, float]:
        """Validate the EMA generator (rank 0) in float32 whatever the training precision, log it, save the
        comparison pictures."""
        run = self.run
        if not run.dist.is_main or run.val_set is None:
            return {}
        metrics = validate(
            run.ema.module,
            run.val_set,
            run.device,
            self.cfg.model.scale,
            save_dir=run.output_dir / "samples" / f"iter_{run.iteration:08d}",
            num_save=self.cfg.train.val_images_saved,
        )
        logger.write({"iteration": run.iteration, "kind": "val", **metrics})
        self.say(f"val @ {run.iteration}: {_summary(metrics)}")
        return metrics

    def _finish(self, logger: MetricLogger, checkpoint: Path | None) -> TrainResult:
        run = self.run
        metrics = self._validate(logger)
        wall = time.perf_counter() - self.start_time
        if run.dist.is_main:
            with atomic_path(run.output_dir / "generator.pth") as tmp:
                torch.save({"params_ema": run.ema.state_dict(), "params": run.g.state_dict()}, tmp)
            summary = {"iteration": run.iteration, "wall_time_s": round(wall, 1), **metrics}
            atomic_write_text(run.output_dir / "metrics.json", json.dumps(summary, indent=2) + "\n")
            logger.close()
            curves = plot_loss_curves(logger.path, run.output_dir / "loss_curves.png")
            self.say(
                f"final: iteration {run.iteration} | {run.val_name}: {_summary(metrics)} | {wall:.0f} s | "
                f"checkpoint {checkpoint}" + (f" | curves {curves}" if curves else "")
            )
        return self._result(checkpoint, metrics, wall)

    def _already_complete(self) -> TrainResult:
        """A resumed run that has reached ``train.total_iters``: say so and change nothing."""
        run = self.run
        self.say(
            f"the run in {run.output_dir} is complete at {run.iteration} iterations "
            f"(train.total_iters={self.cfg.train.total_iters}); nothing to do. To train on, resume with a "
            "larger train.total_iters"
        )
        path = run.output_dir / "metrics.json"
        summary: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
        wall = float(summary.pop("wall_time_s", 0.0))
        summary.pop("iteration", None)
        return self._result(run.resumed_from, summary, wall)

    def _result(self, checkpoint: Path | None, metrics: dict[str, float], wall: float) -> TrainResult:
        cleanup_distributed(self.run.dist)
        return TrainResult(
            iteration=self.run.iteration,
            output_dir=self.run.output_dir,
            checkpoint=checkpoint,
            metrics=metrics,
            wall_time_s=wall,
            generator=self.run.g,
            generator_ema=self.run.ema.module,
        )


def _summary(metrics: dict[str, float]) -> str:
    return (
        f"PSNR-Y {metrics['psnr_y']:.2f} dB (bicubic {metrics['bicubic_psnr_y']:.2f}), "
        f"SSIM-Y {metrics['ssim_y']:.4f} (bicubic {metrics['bicubic_ssim_y']:.4f})"
    )


def _postfix(record: dict[str, Any]) -> dict[str, str]:
    keys = ("loss/total", "loss/l1", "loss/d", "d_real", "d_fake")
    return {k.removeprefix("loss/"): f"{record[k]:.4g}" for k in keys if k in record}


def train(
    cfg: TrainConfig,
    output_dir: str | os.PathLike[str] | None = None,
    resume: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Run (or continue, with ``resume`` = a checkpoint path) a training run to ``train.total_iters``."""
    return Trainer(cfg, output_dir=output_dir, resume=resume).fit()
