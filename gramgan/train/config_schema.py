"""The training configuration's sections: plain dataclasses with documented defaults, and their checks.

Every default is the paper's setting (see ``docs/training.md``) unless marked (ours). The YAML
keys of a section are its fields' names; :mod:`gramgan.train.config` reads files and overrides.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from gramgan.losses import GramGANLossConfig
from gramgan.train.preemption import signal_numbers
from gramgan.train.schedule import ScheduleConfig

__all__ = [
    "ConfigError",
    "DataConfig",
    "DiscriminatorConfig",
    "GeneratorConfig",
    "LoopConfig",
    "LossConfig",
    "ScheduleConfig",
    "TrainConfig",
    "inline_fields",
    "validate",
]

STAGES = ("psnr", "gan")
PRECISIONS = ("fp32", "bf16")
FAST_CHOICES = (True, False, "auto")
COMPILE_BACKENDS = ("inductor", "aot_eager")


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key."""


@dataclass
class GeneratorConfig:
    """The generator, ESRGAN's RRDBNet (``docs/networks.md``), and its initial weights.

    Attributes:
        num_in_ch: input channels (3).
        num_out_ch: output channels (3).
        scale: SR factor (4).
        num_feat: trunk width (64).
        num_block: number of RRDBs (23).
        num_grow_ch: dense-block growth channels (32).
        pretrained: initial weights: a checkpoint of ours, a BasicSR checkpoint (``params_ema`` /
            ``params``) or an original ESRGAN ``.pth``; null = random init (None).
        pretrained_ema: prefer the EMA weights of the checkpoint when it has them (True).
    """

    num_in_ch: int = 3
    num_out_ch: int = 3
    scale: int = 4
    num_feat: int = 64
    num_block: int = 23
    num_grow_ch: int = 32
    pretrained: str | None = None
    pretrained_ema: bool = True

    def arch(self) -> dict[str, int]:
        """RRDBNet keyword arguments."""
        return {
            "num_in_ch": self.num_in_ch,
            "num_out_ch": self.num_out_ch,
            "scale": self.scale,
            "num_feat": self.num_feat,
            "num_block": self.num_block,
            "num_grow_ch": self.num_grow_ch,
        }


@dataclass
class DiscriminatorConfig:
    """The VGG-style discriminator (``docs/networks.md``); its input size is ``data.hr_crop``.

    Attributes:
        num_feat: nf, the first stage's width (64, ours).
    """

    num_feat: int = 64


@dataclass
class DataConfig:
    """Training and validation data (``docs/training.md``).

    Attributes:
        train_hr: folder of HR training images; null = the built-in scikit-image samples (None).
        train_lr: folder of LR images paired with ``train_hr`` by file name (e.g. the output of
            ``gramgan.data.prepare``); null = LR made on the fly by bicubic (None).
        val_hr: folder of HR validation images; null = the built-in held-out sample (None).
        val_lr: paired LR validation folder; null = LR made on the fly (None).
        hr_crop: HR training crop (192); the LR crop is ``hr_crop / model.scale`` (48).
        hflip: random horizontal flips (True).
        vflip: random vertical flips (True).
        rot90: random 90-degree rotations (True).
        repeat: an epoch visits every training image this many times, each time a fresh random
            crop (1; useful for small folders).
        cache_images: keep decoded training images in memory, per worker (False).
        num_workers: DataLoader worker processes (4).
        val_crop: centre crop (HR pixels) of each validation image, null = whole image (None).
        val_max_images: validate on at most this many images, null = all (None).
        skip_unreadable: how to treat image files that cannot be read (checked before training
            starts): false = stop with an error naming the file; true = leave them out with a
            warning and a count (False).
    """

    train_hr: str | None = None
    train_lr: str | None = None
    val_hr: str | None = None
    val_lr: str | None = None
    hr_crop: int = 192
    hflip: bool = True
    vflip: bool = True
    rot90: bool = True
    repeat: int = 1
    cache_images: bool = False
    num_workers: int = 4
    val_crop: int | None = None
    val_max_images: int | None = None
    skip_unreadable: bool = False


@dataclass
class LossConfig:
    """The generator's loss (``docs/losses.md``) and where its VGG19 weights come from.

    In YAML the section is flat: the keys of ``gramgan.losses.GramGANLossConfig`` (weights,
    texture and mask settings; held here as ``terms``) sit beside the three keys below.

    Attributes:
        terms: the loss's own settings, ``GramGANLossConfig`` (its defaults).
        perceptual_optional: when the VGG19 weights are found nowhere, warn and train with the
            perceptual term off instead of failing (False: the paper needs it; the demo says True).
        vgg_weights: path to torchvision's ``vgg19-dcbb9e9d.pth``; null = look in
            ``$GRAMGAN_VGG19_WEIGHTS`` and torch hub's cache, then download (None).
        vgg_download: allow downloading VGG19 (548 MB) when it is found nowhere; null = yes unless
            ``$GRAMGAN_OFFLINE`` is set (None; the demo says false).
    """

    terms: GramGANLossConfig = field(default_factory=GramGANLossConfig, metadata={"inline": True})
    perceptual_optional: bool = False
    vgg_weights: str | None = None
    vgg_download: bool | None = None


def inline_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of a section whose own keys appear directly in the section (``LossConfig.terms``)."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("inline")]


@dataclass
class LoopConfig:
    """The training loop (``docs/training.md``).

    Attributes:
        stage: ``psnr`` (L1 only, pre-trains G) or ``gan`` (the full Gram-GAN objective) ("gan").
        psnr_iters: in stage ``gan``, train G with L1 only for this many iterations first, then the
            GAN objective: a psnr phase inside one run (0; ours, the demo uses it).
        total_iters: iterations in all (600000).
        batch_size: images per step per process (8).
        adam_betas: Adam's (beta1, beta2) for G and D ([0.9, 0.999]).
        ema_decay: decay of the generator's EMA (0.999, ours).
        seed: seed of weights init, data order and loss randomness; rank r uses seed + r for the
            loss randomness (0).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N`` ("auto").
        fast: the fast training path, in one setting (``docs/training.md#the-fast-path``): bf16
            autocast, channels_last networks, ``torch.compile`` of G, D and VGG19, fused Adam.
            ``auto`` = on when the device is CUDA, off on the CPU; true / false force it ("auto").
            The four keys below each follow it unless set.
        precision: ``fp32`` or ``bf16`` (autocast around the networks; the texture selection stays
            float32); null = ``bf16`` when ``fast`` is on, else ``fp32`` (None).
        channels_last: G, D and VGG19 in the channels_last memory format; null = follow ``fast`` (None).
        compile: ``torch.compile`` G, D and VGG19 (a one-off warm-up of tens of seconds on a GPU);
            null = follow ``fast`` (None).
        compile_backend: the ``torch.compile`` backend: ``inductor`` (generates kernels) or
            ``aot_eager`` (traces only: checks on the CPU) ("inductor").
        fused_adam: Adam's fused implementation (one kernel for all parameters; CUDA and CPU);
            null = follow ``fast`` (None).
        deterministic: ``torch.use_deterministic_algorithms(True)`` (False).
        num_threads: CPU threads for torch, null = torch's default (None).
        log_every: iterations between JSONL/TensorBoard records, each the mean of the window (100).
        val_every: iterations between validations; 0 = only at the end (5000).
        save_every: iterations between checkpoints; a checkpoint is always written at the end (5000).
        keep_checkpoints: how many of the latest checkpoints to keep (3).
        val_images_saved: comparison PNGs (bicubic | SR | HR) saved per validation (4).
        progress: show a progress bar (True).
        stop_signals: signals that stop the run cleanly after the current step, with a checkpoint and
            exit status 75 (docs/training.md, ours) (["SIGTERM", "SIGUSR1"]).
    """

    stage: str = "gan"
    psnr_iters: int = 0
    total_iters: int = 600_000
    batch_size: int = 8
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    ema_decay: float = 0.999
    seed: int = 0
    device: str = "auto"
    fast: bool | str = "auto"
    precision: str | None = None
    channels_last: bool | None = None
    compile: bool | None = None
    compile_backend: str = "inductor"
    fused_adam: bool | None = None
    deterministic: bool = False
    num_threads: int | None = None
    log_every: int = 100
    val_every: int = 5000
    save_every: int = 5000
    keep_checkpoints: int = 3
    val_images_saved: int = 4
    progress: bool = True
    stop_signals: list[str] = field(default_factory=lambda: ["SIGTERM", "SIGUSR1"])


@dataclass
class TrainConfig:
    """Everything ``python -m gramgan.train`` needs.

    Attributes:
        name: run name; the default output folder is ``runs/<name>`` ("gramgan").
        output_dir: where checkpoints, logs and pictures go; null = ``runs/<name>`` (None).
        model, discriminator, data, loss, schedule, train: the sections above.
    """

    name: str = "gramgan"
    output_dir: str | None = None
    model: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: LoopConfig = field(default_factory=LoopConfig)

    def __post_init__(self) -> None:
        validate(self)

    def resolved_output_dir(self) -> Path:
        return Path(self.output_dir) if self.output_dir else Path("runs") / self.name


def validate(cfg: TrainConfig) -> None:
    """Cross-field checks; raises :class:`ConfigError` naming the key."""
    t, d, m = cfg.train, cfg.data, cfg.model
    if t.stage not in STAGES:
        raise ConfigError(f"train.stage must be one of {STAGES}, got {t.stage!r}")
    if t.fast not in FAST_CHOICES:
        raise ConfigError(f"train.fast must be true, false or auto, got {t.fast!r}")
    if t.precision is not None and t.precision not in PRECISIONS:
        raise ConfigError(f"train.precision must be one of {PRECISIONS} or null, got {t.precision!r}")
    if t.compile_backend not in COMPILE_BACKENDS:
        raise ConfigError(f"train.compile_backend must be one of {COMPILE_BACKENDS}, got {t.compile_backend!r}")
    if t.total_iters < 1 or t.batch_size < 1:
        raise ConfigError("train.total_iters and train.batch_size must be >= 1")
    if t.psnr_iters < 0:
        raise ConfigError(f"train.psnr_iters must be >= 0, got {t.psnr_iters}")
    if len(t.adam_betas) != 2:
        raise ConfigError(f"train.adam_betas must be two numbers, got {t.adam_betas}")
    if min(t.log_every, t.save_every, t.keep_checkpoints) < 1 or t.val_every < 0:
        raise ConfigError("train.log_every, save_every, keep_checkpoints must be >= 1, val_every >= 0")
    try:
        signal_numbers(t.stop_signals)
    except ValueError as err:
        raise ConfigError(f"train.stop_signals: {err}") from err
    if d.hr_crop % m.scale:
        raise ConfigError(f"data.hr_crop ({d.hr_crop}) must be a multiple of model.scale ({m.scale})")
    if t.stage == "gan" and (d.hr_crop < 64 or d.hr_crop % 32):
        raise ConfigError(
            f"stage gan needs data.hr_crop a multiple of 32 and >= 64 (the discriminator), got {d.hr_crop}"
        )
    if d.train_lr and not d.train_hr:
        raise ConfigError("data.train_lr needs data.train_hr")
    if d.val_lr and not d.val_hr:
        raise ConfigError("data.val_lr needs data.val_hr")
