"""Builders that turn a :class:`~gramgan.train.config.TrainConfig` into the objects a run needs:
device, datasets, networks, the loss. Kept apart from the loop so each piece is testable."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import Dataset

from gramgan.train.config import ConfigError, DataConfig, GeneratorConfig, LossConfig, TrainConfig

__all__ = [
    "autocast_context",
    "build_discriminator",
    "build_generator",
    "build_loss",
    "build_train_dataset",
    "build_val_dataset",
    "select_device",
]


def select_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` = CUDA (this process's GPU under torchrun) when available, else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={name!r} but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


def autocast_context(precision: str, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of the forward-pass context: bf16 autocast on CUDA, else nothing."""
    if precision == "bf16":
        if device.type != "cuda":
            raise ConfigError("train.precision=bf16 needs a CUDA device (autocast bf16 is CUDA-only here)")
        return lambda: torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def build_train_dataset(cfg: DataConfig, scale: int, seed: int) -> Dataset:
    """Paired folders, an HR folder (LR on the fly) or, with no data named, the built-in samples."""
    from gramgan.data.datasets import FolderSource, PairedRandomCropDataset, RandomCropDataset

    common = {
        "scale": scale,
        "hr_crop": cfg.hr_crop,
        "hflip": cfg.hflip,
        "vflip": cfg.vflip,
        "rot90": cfg.rot90,
        "repeat": cfg.repeat,
        "seed": seed,
    }
    if cfg.train_lr:
        return PairedRandomCropDataset(cfg.train_hr, cfg.train_lr, **common)
    if cfg.train_hr:
        return RandomCropDataset(FolderSource(cfg.train_hr, cache=cfg.cache_images), **common)
    from gramgan.data.samples import sample_source

    return RandomCropDataset(sample_source("train"), **common)


def build_val_dataset(cfg: DataConfig, scale: int) -> Dataset:
    """Validation images: ``data.val_hr`` (+ ``val_lr``), else the built-in held-out sample."""
    from gramgan.data.datasets import ValidationDataset

    if cfg.val_hr:
        return ValidationDataset(
            scale=scale, crop=cfg.val_crop, hr_folder=cfg.val_hr, lr_folder=cfg.val_lr, max_images=cfg.val_max_images
        )
    from gramgan.data.samples import sample_source

    return ValidationDataset(sample_source("val"), scale=scale, crop=cfg.val_crop, max_images=cfg.val_max_images)


def build_generator(cfg: GeneratorConfig, load_pretrained: bool = True) -> tuple[nn.Module, str | None]:
    """RRDBNet from the config, with ``model.pretrained`` loaded when asked.

    Returns the network and a one-line note about its initial weights (None for random init).
    """
    from gramgan.models import RRDBNet
    from gramgan.train.checkpoint import load_generator_state

    model = RRDBNet(**cfg.arch())
    if not (load_pretrained and cfg.pretrained):
        return model, None
    state = load_generator_state(cfg.pretrained, prefer_ema=cfg.pretrained_ema)
    try:
        model.load_pretrained(state)
    except ValueError as err:
        raise ConfigError(f"model.pretrained={cfg.pretrained}: {err}") from err
    return model, f"generator initialised from {cfg.pretrained}"


def build_discriminator(cfg: TrainConfig) -> nn.Module:
    from gramgan.models import VGGStyleDiscriminator

    return VGGStyleDiscriminator(
        num_in_ch=cfg.model.num_out_ch, num_feat=cfg.discriminator.num_feat, input_size=cfg.data.hr_crop
    )


def _vgg_layers(preset: str) -> tuple[str, ...]:
    from gramgan.models import VGG19_LAYER_PRESETS

    if preset not in VGG19_LAYER_PRESETS:
        raise ConfigError(f"loss.perceptual_preset must be one of {list(VGG19_LAYER_PRESETS)}, got {preset!r}")
    return tuple(VGG19_LAYER_PRESETS[preset])


def build_loss(cfg: LossConfig, say: Callable[[str], None] = print) -> nn.Module:
    """The Gram-GAN generator loss, with the VGG19 extractor its perceptual term needs.

    Without VGG19 weights: ``loss.perceptual_optional`` true -> say so and turn the term off;
    false -> raise the extractor's error (it lists where it looked), with the two ways out added.
    """
    from gramgan.losses import GramGANLoss
    from gramgan.models import VGG19FeatureExtractor, VGGWeightsNotFoundError

    loss_cfg = cfg.loss_config()
    vgg = None
    if loss_cfg.perceptual_weight:
        try:
            vgg = VGG19FeatureExtractor(
                layers=_vgg_layers(loss_cfg.perceptual_preset), weights_path=cfg.vgg_weights, download=cfg.vgg_download
            )
        except VGGWeightsNotFoundError as err:
            if not cfg.perceptual_optional:
                raise VGGWeightsNotFoundError(
                    f"{err}\nTo train without the perceptual term set loss.perceptual_weight=0, or "
                    "loss.perceptual_optional=true to fall back automatically."
                ) from err
            say(
                "NOTE: no VGG19 weights found (vgg19-dcbb9e9d.pth), so the perceptual loss is OFF for this run "
                "(loss.perceptual_optional=true). Put the file in torch hub's cache or set "
                "$GRAMGAN_VGG19_WEIGHTS to train with it."
            )
            loss_cfg.perceptual_weight = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        return GramGANLoss(loss_cfg, vgg=vgg)
