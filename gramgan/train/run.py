"""A training run's objects, built in one place from the config: :func:`build_run` returns a :class:`Run`
holding the networks, optimisers, schedules, EMA, data and the start position (a fresh run, or the
checkpoint it resumes). Building writes nothing; the loop (:mod:`gramgan.train.loop`) does.
:func:`run_state` and :func:`restore_state` turn a run into a checkpoint's dict and back
(:mod:`gramgan.train.checkpoint` holds the file format), :func:`save_run` writes one.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim import Adam
from torch.utils.data import DataLoader, Dataset

from gramgan.devices import pick_device
from gramgan.train.builders import (
    autocast_context,
    build_discriminator,
    build_generator,
    build_loss,
    build_train_dataset,
    build_val_dataset,
)
from gramgan.train.checkpoint import (
    FORMAT,
    check_resumable,
    find_latest_checkpoint,
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    seed_all,
    set_rng_state,
    weights_fingerprint,
)
from gramgan.train.config import config_to_dict
from gramgan.train.config_schema import ConfigError, TrainConfig
from gramgan.train.data_check import DataError
from gramgan.train.distributed import DistInfo, all_gather_objects, barrier, init_distributed, wrap_discriminator
from gramgan.train.ema import ModelEMA
from gramgan.train.fast import (
    FastPlan,
    compile_in_place,
    float32_forward,
    match_state_layout,
    resolve_fast,
    to_channels_last,
)
from gramgan.train.logs import Messages
from gramgan.train.preemption import ignore_signals
from gramgan.train.schedule import WarmupCosineScheduler

__all__ = ["Run", "build_run", "restore_state", "run_state", "save_run"]


FINAL_FILES = ("generator.pth", "metrics.json")  # what a run writes once it reaches train.total_iters


@dataclass
class Run:
    """Everything one training run works with. ``g`` and ``d`` are the networks (saved, averaged);
    ``g_ddp`` and ``d_ddp`` are what the steps call: the same modules, or their
    ``DistributedDataParallel`` wrappers under torchrun. ``d`` and its kin are None in stage psnr."""

    cfg: TrainConfig
    output_dir: Path
    dist: DistInfo
    device: torch.device
    autocast: Callable[[], contextlib.AbstractContextManager]
    say: Messages
    g: nn.Module
    g_ddp: nn.Module
    ema: ModelEMA
    opt_g: Adam
    sched_g: WarmupCosineScheduler
    d: nn.Module | None
    d_ddp: nn.Module | None
    opt_d: Adam | None
    sched_d: WarmupCosineScheduler | None
    loss_fn: nn.Module | None
    loader: DataLoader | None  # None (and no loss) when the resumed run had already finished
    val_set: Dataset | None
    val_name: str
    iteration: int = 0
    data_pos: tuple[int, int] = (0, 0)  # (epoch, batches consumed in that epoch)
    resumed_from: Path | None = None
    finished: bool = False  # resumed at train.total_iters with the final files already written
    fast: FastPlan = FastPlan()  # the parts of the fast path in use (train.fast)

    def batches(self) -> Iterator[dict[str, Any]]:
        """Batches from the current data position on, across epochs; keeps ``data_pos`` current."""
        epoch, offset = self.data_pos
        sampler = self.loader.sampler
        while True:
            sampler.set_epoch(epoch)
            sampler.set_start(offset * self.cfg.train.batch_size)
            for batch in self.loader:
                offset += 1
                self.data_pos = (epoch, offset)
                yield batch
            epoch, offset = epoch + 1, 0

    def step_schedules(self) -> None:
        for schedule in (self.sched_g, self.sched_d):
            if schedule is not None:
                schedule.step()


def build_run(
    cfg: TrainConfig,
    output_dir: str | os.PathLike[str] | None = None,
    resume: str | os.PathLike[str] | None = None,
    say: Callable[[str], None] | None = None,
) -> Run:
    """Build a run: a new one in ``output_dir`` (default ``runs/<name>``), or with ``resume`` (a
    checkpoint path) the one that checkpoint continues. ``say`` receives rank 0's messages."""
    t = cfg.train
    try:
        device = pick_device(t.device, int(os.environ.get("LOCAL_RANK", "0")))
    except ValueError as err:
        raise ConfigError(f"train.device: {err}") from err
    dist = init_distributed(device.type)
    messages = Messages(enabled=dist.is_main, sink=say)
    plan = resolve_fast(t, device)
    autocast = autocast_context(plan.precision, device)
    _configure_torch(cfg, device)
    output_dir = Path(output_dir) if output_dir else cfg.resolved_output_dir()
    state = _start_state(cfg, output_dir, resume)
    # Finished: the last iteration is checkpointed and the final files are written; nothing will run, so no
    # loss and no data. A run killed between its last checkpoint and those files is not finished: it
    # trains no further but validates and writes them.
    finished = (
        state is not None
        and int(state["iteration"]) >= t.total_iters
        and all((output_dir / name).is_file() for name in FINAL_FILES)
    )

    seed_all(t.seed)  # identical initial weights on every rank
    g, init_note = build_generator(cfg.model, load_pretrained=state is None)
    g.to(device)
    d = opt_d = sched_d = loss_fn = None
    if t.stage == "gan":
        d = build_discriminator(cfg.discriminator, cfg.model.num_out_ch, cfg.data.hr_crop).to(device)
        loss_fn = None if finished else build_loss(cfg.loss, messages).to(device)
    if plan.channels_last:  # before the optimisers and the EMA copy, so their tensors share the layout
        to_channels_last(g, d, loss_fn)
    if plan.precision == "bf16":
        float32_forward(d)  # D in float32 inside the bf16 region (see float32_forward)
    opt_g, sched_g = _adam(g, cfg, plan.fused_adam)
    if d is not None:
        opt_d, sched_d = _adam(d, cfg, plan.fused_adam)
    if state is None:
        if init_note:
            messages(init_note)
        if plan.any:
            messages(f"fast path (train.fast={t.fast}): {plan.describe()}")
        seed_all(t.seed + dist.rank)  # per-rank randomness of the loss (masks, warps)

    loader, val_set, val_name = (None, None, "") if finished else _build_data(cfg, dist, device, messages)
    run = Run(
        cfg=cfg, output_dir=output_dir, dist=dist, device=device, autocast=autocast, say=messages,
        g=g, g_ddp=_ddp(g, dist, device), ema=ModelEMA(g, t.ema_decay), opt_g=opt_g, sched_g=sched_g,
        d=d, d_ddp=_ddp(d, dist, device, discriminator=True), opt_d=opt_d, sched_d=sched_d, loss_fn=loss_fn,
        loader=loader, val_set=val_set, val_name=val_name, finished=finished, fast=plan,
    )  # fmt: skip
    if plan.compile and not finished:
        _compile(run)
    if state is not None:
        restore_state(run, state)  # last: the RNG continues exactly where the checkpoint left it
        match_state_layout(run.opt_g, run.opt_d)  # a checkpoint saved in another memory format
        run.resumed_from = Path(resume)
    return run


def _compile(run: Run) -> None:
    """``torch.compile`` the networks the steps call, in place: G's RRDBs one by one (they share one
    graph: ``compile_in_place``), D and VGG19 whole. The DDP wrappers stay as they are; they see each
    compiled block's gradients as it produces them, so the all-reduce still overlaps the backward. The
    EMA copy was made before and stays eager: validation at other image sizes compiles nothing, and
    checkpoints keep their keys."""
    backend = run.fast.compile_backend
    compile_in_place(run.g, backend)
    compile_in_place(run.d, backend)
    perceptual = getattr(run.loss_fn, "perceptual", None)
    compile_in_place(getattr(perceptual, "extractor", None), backend)


def _configure_torch(cfg: TrainConfig, device: torch.device) -> None:
    t = cfg.train
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    if t.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def _start_state(cfg: TrainConfig, output_dir: Path, resume: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """The checkpoint to continue (checked against the config), or None for a new run, which must
    neither mix with an old run's checkpoints nor start the GAN stage from a random generator."""
    if resume is not None:
        state = load_checkpoint(resume)
        check_resumable(state, cfg)
        return state
    latest = find_latest_checkpoint(output_dir / "checkpoints")
    if latest is not None:
        raise ConfigError(
            f"{output_dir} already holds checkpoints of a run (latest: {latest.name}); continue it with "
            "--resume, or start over with another --output (or delete that folder)"
        )
    t = cfg.train
    if t.stage == "gan" and t.psnr_iters == 0 and cfg.model.pretrained is None:
        raise ConfigError(
            "stage gan starts from a trained generator (docs/training.md): set model.pretrained to a psnr-stage "
            "checkpoint or a public RRDB file, or train.psnr_iters > 0 to pre-train with L1 in this run"
        )
    return None


def _adam(module: nn.Module, cfg: TrainConfig, fused: bool = False) -> tuple[Adam, WarmupCosineScheduler]:
    """Adam and its schedule; ``fused``: the one-kernel implementation (the same update)."""
    betas = (float(cfg.train.adam_betas[0]), float(cfg.train.adam_betas[1]))
    optimizer = Adam(module.parameters(), lr=cfg.schedule.base_lr, betas=betas, fused=fused or None)
    return optimizer, WarmupCosineScheduler(optimizer, cfg.schedule, cfg.train.total_iters)


def _ddp(
    module: nn.Module | None, dist: DistInfo, device: torch.device, discriminator: bool = False
) -> nn.Module | None:
    """``module`` under DDP when the run is distributed; the discriminator without the per-forward
    buffer sync (see :func:`gramgan.train.distributed.wrap_discriminator`)."""
    if module is None or not dist.enabled:
        return module
    if discriminator:
        return wrap_discriminator(module, device)
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def _build_data(
    cfg: TrainConfig, dist: DistInfo, device: torch.device, say: Callable[[str], None]
) -> tuple[DataLoader, Dataset | None, str]:
    """The training loader (this rank's share, resumable mid-epoch) and, on rank 0, the validation set."""
    from gramgan.data.sampler import SeededSampler
    from gramgan.data.samples import SAMPLE_VAL

    t, d = cfg.train, cfg.data
    try:
        train_set = build_train_dataset(d, cfg.model.scale, t.seed, say)
        val_set = build_val_dataset(d, cfg.model.scale, say) if dist.is_main else None
    except DataError:
        raise
    except (OSError, ValueError) as err:  # a missing folder, no images in it, an unpaired LR file
        raise DataError(f"data: {err}") from err
    need = t.batch_size * dist.world_size
    if len(train_set) < need:
        raise ConfigError(
            f"the training set has {len(train_set)} samples, fewer than one batch across all "
            f"processes ({need}); raise data.repeat or lower train.batch_size"
        )
    sampler = SeededSampler(train_set, num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=t.seed)
    loader = DataLoader(
        train_set,
        batch_size=t.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=d.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=d.num_workers > 0,
        worker_init_fn=functools.partial(ignore_signals, tuple(t.stop_signals)),  # the trainer stops them
        generator=torch.Generator().manual_seed(t.seed),  # keeps the global RNG untouched
    )
    val_name = d.val_hr or f"held-out photo ({', '.join(SAMPLE_VAL)})"
    source = d.train_hr or "the built-in sample photos (set data.train_hr for real training)"
    lr_source = f"LR from {d.train_lr}" if d.train_lr else "LR made on the fly"
    say(f"data: {len(train_set)} crops an epoch from {source}, {lr_source}; validation on {val_name}")
    return loader, val_set, val_name


# --------------------------------------------------------------------------- checkpoint state


def _optional_state(obj: Any) -> Any:
    return obj.state_dict() if obj is not None else None


def run_state(run: Run) -> dict[str, Any]:
    """The checkpoint of ``run``, with every rank's RNG state and a fingerprint of every rank's
    weights (collective under DDP; replicas must agree, a mismatch raises)."""
    modules = [m for m in (run.g, run.d) if m is not None]
    gathered = all_gather_objects((get_rng_state(), weights_fingerprint(*modules)), run.dist)
    fingerprints = [fingerprint for _, fingerprint in gathered]
    if len(set(fingerprints)) > 1:
        raise RuntimeError(f"DDP replicas diverged at iteration {run.iteration}: weight hashes {fingerprints}")
    return {
        "format": FORMAT,
        "iteration": run.iteration,
        "config": config_to_dict(run.cfg),
        "arch": run.cfg.model.arch(),
        "generator": run.g.state_dict(),
        "generator_ema": run.ema.state_dict(),
        "discriminator": _optional_state(run.d),
        "optimizer_g": run.opt_g.state_dict(),
        "optimizer_d": _optional_state(run.opt_d),
        "scheduler_g": run.sched_g.state_dict(),
        "scheduler_d": _optional_state(run.sched_d),
        "rng": [rng for rng, _ in gathered],
        "data": {"epoch": run.data_pos[0], "offset": run.data_pos[1]},
        "world_size": run.dist.world_size,
        "fingerprints": fingerprints,
    }


def save_run(run: Run) -> Path | None:
    """Write ``run``'s checkpoint (rank 0; the others return None once it is written)."""
    state = run_state(run)
    path = None
    if run.dist.is_main:
        path = save_checkpoint(state, run.output_dir / "checkpoints", keep=run.cfg.train.keep_checkpoints)
    barrier(run.dist)
    return path


def restore_state(run: Run, state: Mapping[str, Any]) -> None:
    """Load a checkpoint into ``run``: weights, optimisers, schedules, position and this rank's RNG.
    With another number of processes than the checkpoint's, the RNG is reseeded (said)."""
    run.g.load_state_dict(state["generator"])
    run.ema.load_state_dict(state["generator_ema"])
    run.opt_g.load_state_dict(state["optimizer_g"])
    run.sched_g.load_state_dict(state["scheduler_g"])
    if run.d is not None:
        run.d.load_state_dict(state["discriminator"])
        run.opt_d.load_state_dict(state["optimizer_d"])
        run.sched_d.load_state_dict(state["scheduler_d"])
    run.iteration = int(state["iteration"])
    run.data_pos = (int(state["data"]["epoch"]), int(state["data"]["offset"]))
    rng = state.get("rng") or []
    if len(rng) == run.dist.world_size:
        set_rng_state(rng[run.dist.rank])
    else:
        run.say(
            f"NOTE: the checkpoint holds RNG states for {len(rng)} processes, this run has "
            f"{run.dist.world_size}: reseeding (the run continues, but not bitwise as before)"
        )
        seed_all(run.cfg.train.seed + run.dist.rank + 1_000_003 * run.iteration)
