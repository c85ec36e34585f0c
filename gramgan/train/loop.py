"""The training loop of SPEC §5: stage ``psnr`` (L1) and stage ``gan`` (one G step, one D step).

:class:`Trainer` owns the networks, optimisers, schedules, EMA, data position and RNG state, so a
checkpoint captures everything and a resumed run continues bitwise like an uninterrupted one (on
the CPU; GPUs add their own non-determinism unless ``train.deterministic``).

Output folder::

    config.yaml            the resolved configuration
    log.jsonl              train records (window means of every loss term, lr, D's mean logits)
                           and val records (PSNR-Y / SSIM-Y of the EMA generator and of bicubic)
    tensorboard/           the same scalars, when TensorBoard is installed
    checkpoints/iter_*.pt  the latest ``train.keep_checkpoints`` checkpoints
    samples/iter_*/        bicubic | SR | HR comparison PNGs of each validation
    loss_curves.png        drawn from log.jsonl at the end
    generator.pth          final weights, BasicSR-style {"params_ema", "params"}
    metrics.json           the final validation numbers
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from gramgan.data.datasets import SeededSampler
from gramgan.train.checkpoint import (
    FORMAT,
    find_latest_checkpoint,
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from gramgan.train.config import ConfigError, TrainConfig, config_to_dict
from gramgan.train.distributed import (
    DistInfo,
    all_gather_objects,
    barrier,
    cleanup_distributed,
    init_distributed,
    wrap_discriminator,
)
from gramgan.train.ema import ModelEMA
from gramgan.train.logs import MetricLogger, plot_loss_curves
from gramgan.train.schedule import WarmupCosineScheduler
from gramgan.train.setup import (
    autocast_context,
    build_discriminator,
    build_generator,
    build_loss,
    build_train_dataset,
    build_val_dataset,
    select_device,
)
from gramgan.train.validation import validate

__all__ = ["TrainResult", "Trainer", "seed_all", "train", "weights_fingerprint"]


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


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def weights_fingerprint(*modules: nn.Module) -> str:
    """SHA-256 of the modules' parameters (names and exact bytes; buffers excluded: D's BatchNorm
    running statistics legitimately differ between DDP ranks and are never used)."""
    digest = hashlib.sha256()
    for module in modules:
        for name, param in module.named_parameters():
            digest.update(name.encode())
            digest.update(param.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


class Trainer:
    """One training run. ``resume`` is a checkpoint path to continue from (or None).

    ``say`` prints a message (rank 0 only); the default writes through the progress bar.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        output_dir: str | os.PathLike[str] | None = None,
        resume: str | os.PathLike[str] | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        t = cfg.train
        self.start_time = time.perf_counter()
        self._say = say
        self._bar: Any = None
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.dist: DistInfo = init_distributed(select_device(t.device, local_rank).type)
        self.device = select_device(t.device, self.dist.local_rank)
        self.autocast = autocast_context(t.precision, self.device)
        if t.num_threads:
            torch.set_num_threads(t.num_threads)
        if t.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.output_dir = Path(output_dir) if output_dir else cfg.resolved_output_dir()
        self.ckpt_dir = self.output_dir / "checkpoints"
        state = load_checkpoint(resume) if resume else None
        if state is not None:
            self._check_resumable(state)
        elif find_latest_checkpoint(self.ckpt_dir) is not None:
            raise ConfigError(
                f"{self.output_dir} already holds checkpoints of a run (latest: "
                f"{find_latest_checkpoint(self.ckpt_dir).name}); continue it with --resume, or start over "
                "with another --output (or delete that folder)"
            )

        seed_all(t.seed)  # identical initial weights on every rank
        self.gan = t.stage == "gan"
        self.g_module, init_note = build_generator(cfg.model, load_pretrained=state is None)
        self.g_module.to(self.device)
        self.ema = ModelEMA(self.g_module, t.ema_decay)
        betas = (float(t.adam_betas[0]), float(t.adam_betas[1]))
        self.opt_g = torch.optim.Adam(self.g_module.parameters(), lr=cfg.schedule.base_lr, betas=betas)
        self.sched_g = WarmupCosineScheduler(self.opt_g, cfg.schedule, t.total_iters)
        self.d_module: nn.Module | None = None
        self.opt_d = self.sched_d = None
        self.loss_fn: nn.Module | None = None
        if self.gan:
            self.d_module = build_discriminator(cfg).to(self.device)
            self.opt_d = torch.optim.Adam(self.d_module.parameters(), lr=cfg.schedule.base_lr, betas=betas)
            self.sched_d = WarmupCosineScheduler(self.opt_d, cfg.schedule, t.total_iters)
            self.loss_fn = build_loss(cfg.loss, self.say).to(self.device)

        self.iteration = 0
        self.data_pos = (0, 0)  # (epoch, batches consumed in that epoch)
        if state is not None:
            self._restore(state)
            self.say(f"resumed from {resume} at iteration {self.iteration}")
        else:
            if self.gan and t.psnr_iters == 0 and cfg.model.pretrained is None:
                raise ConfigError(
                    "stage gan starts from a trained generator (SPEC §5): set model.pretrained to a psnr-stage "
                    "checkpoint or a public RRDB file, or train.psnr_iters > 0 to pre-train with L1 in this run"
                )
            if init_note:
                self.say(init_note)
            seed_all(t.seed + self.dist.rank)  # per-rank randomness of the loss (masks, warps)

        self.g: nn.Module = self.g_module
        self.d: nn.Module | None = self.d_module
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.g = DistributedDataParallel(self.g_module, device_ids=ids)
            if self.d_module is not None:
                self.d = wrap_discriminator(self.d_module, self.device)

        self._build_data()
        self.logger = MetricLogger(
            self.output_dir, enabled=self.dist.is_main, resume_iteration=self.iteration if state else None
        )
        if self.dist.is_main:
            _atomic_write_text(self.output_dir / "config.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
            if not self.logger.has_tensorboard:
                self.say("TensorBoard is not installed: logging to log.jsonl only")
        if state is not None:
            self._restore_rng(state)

    # ------------------------------------------------------------------ setup helpers

    def say(self, message: str) -> None:
        if not self.dist.is_main:
            return
        if self._say is not None:
            self._say(message)
        elif self._bar is not None:
            self._bar.write(message)
        else:
            print(message, flush=True)

    def _check_resumable(self, state: dict[str, Any]) -> None:
        saved = state.get("config", {})
        if saved.get("train", {}).get("stage") != self.cfg.train.stage:
            raise ConfigError(
                f"cannot resume: the checkpoint is from stage {saved.get('train', {}).get('stage')!r}, "
                f"this run is stage {self.cfg.train.stage!r} (to start stage gan from a psnr checkpoint, "
                "use model.pretrained=<checkpoint> instead of --resume)"
            )
        if state.get("arch") != self.cfg.model.arch():
            raise ConfigError(f"cannot resume: checkpoint arch {state.get('arch')} != model {self.cfg.model.arch()}")

    def _build_data(self) -> None:
        t, d = self.cfg.train, self.cfg.data
        self.train_set = build_train_dataset(d, self.cfg.model.scale, t.seed)
        need = t.batch_size * self.dist.world_size
        if len(self.train_set) < need:
            raise ConfigError(
                f"the training set has {len(self.train_set)} samples, fewer than one batch across all "
                f"processes ({need}); raise data.repeat or lower train.batch_size"
            )
        self.sampler = SeededSampler(
            self.train_set, num_replicas=self.dist.world_size, rank=self.dist.rank, shuffle=True, seed=t.seed
        )
        self.loader = DataLoader(
            self.train_set,
            batch_size=t.batch_size,
            sampler=self.sampler,
            drop_last=True,
            num_workers=d.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=d.num_workers > 0,
            generator=torch.Generator().manual_seed(t.seed),  # keeps the global RNG untouched
        )
        self.val_set = build_val_dataset(d, self.cfg.model.scale) if self.dist.is_main else None
        from gramgan.data.samples import SAMPLE_VAL

        self.val_name = d.val_hr or f"held-out photo ({', '.join(SAMPLE_VAL)})"
        source = d.train_hr or "the built-in sample photos (set data.train_hr for real training)"
        lr_source = f"LR from {d.train_lr}" if d.train_lr else "LR made on the fly"
        self.say(
            f"data: {len(self.train_set)} crops an epoch from {source}, {lr_source}; "
            f"validation on {self.val_name}"
        )

    def _restore(self, state: dict[str, Any]) -> None:
        self.g_module.load_state_dict(state["generator"])
        self.ema.load_state_dict(state["generator_ema"])
        self.opt_g.load_state_dict(state["optimizer_g"])
        self.sched_g.load_state_dict(state["scheduler_g"])
        if self.gan:
            self.d_module.load_state_dict(state["discriminator"])
            self.opt_d.load_state_dict(state["optimizer_d"])
            self.sched_d.load_state_dict(state["scheduler_d"])
        self.iteration = int(state["iteration"])
        self.data_pos = (int(state["data"]["epoch"]), int(state["data"]["offset"]))

    def _restore_rng(self, state: dict[str, Any]) -> None:
        states = state.get("rng") or []
        if len(states) == self.dist.world_size:
            set_rng_state(states[self.dist.rank])
        else:
            self.say(
                f"NOTE: the checkpoint holds RNG states for {len(states)} processes, this run has "
                f"{self.dist.world_size}: reseeding (the run continues, but not bitwise as before)"
            )
            seed_all(self.cfg.train.seed + self.dist.rank + 1_000_003 * self.iteration)

    # ------------------------------------------------------------------ steps

    def _batches(self) -> Iterator[dict[str, Any]]:
        """Batches from the current data position on, across epochs; updates ``data_pos``."""
        epoch, offset = self.data_pos
        batch_size = self.cfg.train.batch_size
        while True:
            self.sampler.set_epoch(epoch)
            self.sampler.set_start(offset * batch_size)
            for batch in self.loader:
                offset += 1
                self.data_pos = (epoch, offset)
                yield batch
            epoch, offset = epoch + 1, 0

    def _psnr_step(self, lr: Tensor, hr: Tensor) -> dict[str, Tensor]:
        with self.autocast():
            sr = self.g(lr)
        loss = F.l1_loss(sr.float(), hr)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        return {"loss/l1": loss.detach()}

    def _gan_step(self, lr: Tensor, hr: Tensor) -> dict[str, Tensor]:
        from gramgan.losses import discriminator_loss

        self.d_module.requires_grad_(False)  # G step: D is a fixed critic
        with self.autocast():
            sr = self.g(lr)
            out = self.loss_fn(sr, hr, self.d_module)
        self.opt_g.zero_grad(set_to_none=True)
        out.total.backward()
        self.opt_g.step()
        self.d_module.requires_grad_(True)

        with self.autocast():
            d_loss, d_terms = discriminator_loss(self.d, out.masked_sr.detach(), out.masked_hr)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()

        values = {"loss/total": out.total.detach(), "loss/d": d_loss.detach()}
        values.update({f"loss/{k}": v.detach() for k, v in out.terms.items()})
        values.update({f"weighted/{k}": v.detach() for k, v in getattr(out, "weighted", {}).items()})
        for key, value in d_terms.items():
            if key != "d_loss":  # already loss/d
                values[key if key.startswith("d_") else f"loss/d_{key}"] = value.detach()
        return values

    # ------------------------------------------------------------------ checkpoints, validation

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint (see :mod:`gramgan.train.checkpoint`), with every rank's RNG state and a
        fingerprint of every rank's weights (DDP replicas must agree: a mismatch raises)."""
        modules = [m for m in (self.g_module, self.d_module) if m is not None]
        gathered = all_gather_objects((get_rng_state(), weights_fingerprint(*modules)), self.dist)
        rng = [g[0] for g in gathered]
        fingerprints = [g[1] for g in gathered]
        if len(set(fingerprints)) > 1:
            raise RuntimeError(f"DDP replicas diverged at iteration {self.iteration}: weight hashes {fingerprints}")
        return {
            "format": FORMAT,
            "iteration": self.iteration,
            "config": config_to_dict(self.cfg),
            "arch": self.cfg.model.arch(),
            "generator": self.g_module.state_dict(),
            "generator_ema": self.ema.state_dict(),
            "discriminator": self.d_module.state_dict() if self.d_module is not None else None,
            "optimizer_g": self.opt_g.state_dict(),
            "optimizer_d": self.opt_d.state_dict() if self.opt_d is not None else None,
            "scheduler_g": self.sched_g.state_dict(),
            "scheduler_d": self.sched_d.state_dict() if self.sched_d is not None else None,
            "rng": rng,
            "data": {"epoch": self.data_pos[0], "offset": self.data_pos[1]},
            "world_size": self.dist.world_size,
            "fingerprints": fingerprints,
        }

    def save(self) -> Path | None:
        """Write a checkpoint (rank 0) after gathering every rank's RNG state."""
        state = self.state_dict()
        path = None
        if self.dist.is_main:
            path = save_checkpoint(state, self.ckpt_dir, keep=self.cfg.train.keep_checkpoints)
        barrier(self.dist)
        return path

    def run_validation(self, tag: str) -> dict[str, float] | None:
        """Validate the EMA generator (rank 0), log it, save comparison pictures."""
        if not self.dist.is_main or self.val_set is None:
            return None
        metrics = validate(
            self.ema.module,
            self.val_set,
            self.device,
            self.cfg.model.scale,
            save_dir=self.output_dir / "samples" / tag,
            num_save=self.cfg.train.val_images_saved,
            autocast=self.autocast,
        )
        self.logger.write({"iteration": self.iteration, "kind": "val", **metrics})
        self.say(
            f"val @ {self.iteration}: PSNR-Y {metrics['psnr_y']:.2f} dB (bicubic {metrics['bicubic_psnr_y']:.2f}), "
            f"SSIM-Y {metrics['ssim_y']:.4f} (bicubic {metrics['bicubic_ssim_y']:.4f})"
        )
        return metrics

    # ------------------------------------------------------------------ the loop

    def fit(self) -> TrainResult:
        from tqdm import tqdm

        t = self.cfg.train
        bar = tqdm(
            total=t.total_iters,
            initial=self.iteration,
            unit="it",
            dynamic_ncols=True,
            disable=not (self.dist.is_main and t.progress),
            desc=self.cfg.name,
        )
        self._bar = bar
        checkpoint = None
        last_values: dict[str, Tensor] = {}
        batches = self._batches()
        try:
            while self.iteration < t.total_iters:
                batch = next(batches)
                lr = batch["lr"].to(self.device, non_blocking=True)
                hr = batch["hr"].to(self.device, non_blocking=True)
                gan_phase = self.gan and self.iteration >= t.psnr_iters
                lr_g = self.sched_g.get_last_lr()[0]
                lr_d = self.sched_d.get_last_lr()[0] if self.sched_d is not None else None
                last_values = self._gan_step(lr, hr) if gan_phase else self._psnr_step(lr, hr)
                self.ema.update(self.g_module)
                self.sched_g.step()
                if self.sched_d is not None:
                    self.sched_d.step()
                self.iteration += 1
                it = self.iteration
                self.logger.accumulate(last_values)
                bar.update(1)
                if it % t.log_every == 0 or it == t.total_iters:
                    self._check_finite(last_values)
                    extra = {
                        "stage": "gan" if gan_phase else "psnr",
                        "elapsed_s": round(time.perf_counter() - self.start_time, 2),
                        "lr_g": lr_g,
                    }
                    if gan_phase:
                        extra["lr_d"] = lr_d
                    record = self.logger.flush(it, extra)
                    if record:
                        bar.set_postfix(_postfix(record), refresh=False)
                if t.val_every and it % t.val_every == 0 and it < t.total_iters:
                    self.run_validation(f"iter_{it:08d}")
                if it % t.save_every == 0 or it == t.total_iters:
                    checkpoint = self.save()
        finally:
            bar.close()
            self._bar = None
        if checkpoint is None and self.dist.is_main:
            checkpoint = find_latest_checkpoint(self.ckpt_dir)
        return self._finish(checkpoint)

    def _check_finite(self, values: dict[str, Tensor]) -> None:
        bad = [k for k, v in values.items() if not torch.isfinite(v).all()]
        if bad:
            raise FloatingPointError(
                f"non-finite {', '.join(bad)} at iteration {self.iteration}; the last good checkpoint is "
                f"in {self.ckpt_dir} (try a lower schedule.base_lr or train.precision=fp32)"
            )

    def _finish(self, checkpoint: Path | None) -> TrainResult:
        metrics = self.run_validation(f"iter_{self.iteration:08d}") or {}
        wall = time.perf_counter() - self.start_time
        if self.dist.is_main:
            export = {"params_ema": self.ema.state_dict(), "params": self.g_module.state_dict()}
            fd, tmp = tempfile.mkstemp(prefix=".generator.", suffix=".tmp", dir=self.output_dir)
            with os.fdopen(fd, "wb") as handle:
                torch.save(export, handle)
            os.replace(tmp, self.output_dir / "generator.pth")
            summary = {"iteration": self.iteration, "wall_time_s": round(wall, 1), **metrics}
            _atomic_write_text(self.output_dir / "metrics.json", json.dumps(summary, indent=2) + "\n")
            self.logger.close()
            curves = plot_loss_curves(self.logger.path, self.output_dir / "loss_curves.png")
            if metrics:
                self.say(
                    f"final: iteration {self.iteration} | {self.val_name}: PSNR-Y {metrics['psnr_y']:.2f} dB "
                    f"(bicubic {metrics['bicubic_psnr_y']:.2f}) | SSIM-Y {metrics['ssim_y']:.4f} "
                    f"(bicubic {metrics['bicubic_ssim_y']:.4f}) | {wall:.0f} s | checkpoint {checkpoint}"
                    + (f" | curves {curves}" if curves else "")
                )
        cleanup_distributed(self.dist)
        return TrainResult(
            iteration=self.iteration,
            output_dir=self.output_dir,
            checkpoint=checkpoint,
            metrics=metrics,
            wall_time_s=wall,
            generator=self.g_module,
            generator_ema=self.ema.module,
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
