"""Training configuration: plain dataclasses, loaded from YAML plus ``key=value`` overrides.

Every default is the paper's setting (SPEC §5) unless marked (ours). A YAML file names only what it
changes; sections and keys are those of the dataclasses below::

    name: demo
    model: {num_block: 4, num_feat: 32}
    train: {total_iters: 600, batch_size: 8}
    loss: {texture_weight: 1.0, perceptual_optional: true}

Overrides on the command line use dotted keys and YAML values: ``train.batch_size=4``,
``schedule.cycle_iters=[100,200]``, ``model.pretrained=null``. Unknown keys are errors that suggest
the nearest known key.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gramgan.configs import available_presets, find_preset, presets_dir
from gramgan.losses import GramGANLossConfig
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
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "preset_path",
]

STAGES = ("psnr", "gan")
PRECISIONS = ("fp32", "bf16")


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key."""


@dataclass
class GeneratorConfig:
    """The generator, ESRGAN's RRDBNet (SPEC §3), and its initial weights.

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
    """The VGG-style discriminator (SPEC §3); its input size is ``data.hr_crop``.

    Attributes:
        num_feat: nf, the first stage's width (64, ours).
    """

    num_feat: int = 64


@dataclass
class DataConfig:
    """Training and validation data (SPEC §5).

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


@dataclass
class LossConfig(GramGANLossConfig):
    """The generator's loss (SPEC §4): every field of ``gramgan.losses.GramGANLossConfig`` plus
    where the VGG19 weights come from.

    Attributes:
        perceptual_optional: when the VGG19 weights are found nowhere, warn and train with the
            perceptual term off instead of failing (False: the paper needs it; the demo says True).
        vgg_weights: path to torchvision's ``vgg19-dcbb9e9d.pth``; null = look in
            ``$GRAMGAN_VGG19_WEIGHTS`` and torch hub's cache, then download (None).
        vgg_download: allow downloading VGG19 (548 MB) when it is found nowhere; null = yes unless
            ``$GRAMGAN_OFFLINE`` is set (None; the demo says false).
    """

    perceptual_optional: bool = False
    vgg_weights: str | None = None
    vgg_download: bool | None = None

    def loss_config(self) -> GramGANLossConfig:
        """The plain ``GramGANLossConfig`` part."""
        names = {f.name for f in dataclasses.fields(GramGANLossConfig)}
        return GramGANLossConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})


@dataclass
class LoopConfig:
    """The training loop (SPEC §5).

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
        precision: ``fp32`` or ``bf16`` (autocast, CUDA only) ("fp32").
        deterministic: ``torch.use_deterministic_algorithms(True)`` (False).
        num_threads: CPU threads for torch, null = torch's default (None).
        log_every: iterations between JSONL/TensorBoard records, each the mean of the window (100).
        val_every: iterations between validations; 0 = only at the end (5000).
        save_every: iterations between checkpoints; a checkpoint is always written at the end (5000).
        keep_checkpoints: how many of the latest checkpoints to keep (3).
        val_images_saved: comparison PNGs (bicubic | SR | HR) saved per validation (4).
        progress: show a progress bar (True).
    """

    stage: str = "gan"
    psnr_iters: int = 0
    total_iters: int = 600_000
    batch_size: int = 8
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    ema_decay: float = 0.999
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    deterministic: bool = False
    num_threads: int | None = None
    log_every: int = 100
    val_every: int = 5000
    save_every: int = 5000
    keep_checkpoints: int = 3
    val_images_saved: int = 4
    progress: bool = True


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
    if t.precision not in PRECISIONS:
        raise ConfigError(f"train.precision must be one of {PRECISIONS}, got {t.precision!r}")
    if t.total_iters < 1 or t.batch_size < 1:
        raise ConfigError("train.total_iters and train.batch_size must be >= 1")
    if t.psnr_iters < 0:
        raise ConfigError(f"train.psnr_iters must be >= 0, got {t.psnr_iters}")
    if len(t.adam_betas) != 2:
        raise ConfigError(f"train.adam_betas must be two numbers, got {t.adam_betas}")
    if min(t.log_every, t.save_every, t.keep_checkpoints) < 1 or t.val_every < 0:
        raise ConfigError("train.log_every, save_every, keep_checkpoints must be >= 1, val_every >= 0")
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


# --------------------------------------------------------------------------- dict <-> dataclass


def _suggest(key: str, known: list[str], where: str = "") -> str:
    prefix = f"{where}." if where else ""
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"; did you mean {prefix + close[0]!r}?"
    return f"; known keys{' of ' + where if where else ''}: {', '.join(known)}"


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check / convert a YAML value to the annotated type."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a section (mapping), got {value!r}")
        return _build(hint, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = [value]
            else:
                raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML 1.1 reads "1e-4" as a string
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise ConfigError(f"{where}: cannot use {value!r} as {hint}")


def _build(cls: type, data: dict[str, Any], where: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else str(key)
        if key not in names:
            raise ConfigError(f"unknown config key {dotted!r}" + _suggest(str(key), names, where))
        kwargs[key] = _coerce(value, hints[key], dotted)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        message = str(err)
        raise ConfigError(message if where and where in message else f"{where or 'config'}: {message}") from err


def config_from_dict(data: dict[str, Any] | None) -> TrainConfig:
    """Build a :class:`TrainConfig` from nested dicts (missing keys take their defaults)."""
    return _build(TrainConfig, dict(data or {}))


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config (lists, not tuples: YAML- and checkpoint-safe)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(cfg))


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: cannot parse the value: {err}") from err
        _set_dotted(data, key, value)
    return data


def preset_path(name: str) -> Path:
    """The YAML file of a shipped preset (``gramgan/configs/<name>.yaml``)."""
    path = find_preset(name)
    if path is None:
        available = ", ".join(available_presets()) or f"none found in {presets_dir()}"
        raise ConfigError(f"unknown preset {name!r}; available: {available}")
    return path


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML mapping from a file (empty file = {})."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"cannot parse config file {path}: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(data).__name__}")
    return data


def load_config(
    path: str | os.PathLike[str] | None = None,
    preset: str | None = None,
    overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
) -> TrainConfig:
    """Config from ``base`` (a dict, e.g. a checkpoint's), else a YAML file, else a preset, plus
    overrides. With none of the three, the ``demo`` preset."""
    if sum(x is not None for x in (path, preset, base)) > 1:
        raise ConfigError("give at most one of a config file, a preset and a base config")
    if base is not None:
        data = _deepcopy(base)
    elif path is not None:
        data = read_yaml(path)
    else:
        data = read_yaml(preset_path(preset or "demo"))
    return config_from_dict(apply_overrides(data, list(overrides or [])))


def _deepcopy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deepcopy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deepcopy(v) for v in data]
    return data


def diff_configs(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config dicts."""
    out = []
    for key in sorted(set(a) | set(b)):
        dotted = f"{prefix}{key}"
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out.extend(diff_configs(va, vb, dotted + "."))
        elif va != vb:
            out.append(dotted)
    return out
