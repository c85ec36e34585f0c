"""Builders that turn one config section each into an object a run needs: the forward-pass context,
datasets, networks, the loss. :func:`gramgan.train.run.build_run` puts them together."""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import Dataset

from gramgan.train.config_schema import ConfigError, DataConfig, DiscriminatorConfig, GeneratorConfig, LossConfig
from gramgan.train.data_check import checked_images, checked_pairs

__all__ = [
    "autocast_context",
    "build_discriminator",
    "build_generator",
    "build_loss",
    "build_train_dataset",
    "build_val_dataset",
]


def autocast_context(precision: str, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of the forward-pass context: bf16 autocast on ``device`` (CUDA, or the CPU, where it is
    slower than fp32 on most processors but computes the same thing), else nothing."""
    if precision == "bf16":
        if device.type not in ("cuda", "cpu"):
            raise ConfigError(f"train.precision=bf16 needs a CUDA or CPU device, got {device}")
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def build_train_dataset(cfg: DataConfig, scale: int, seed: int, say: Callable[[str], None] = print) -> Dataset:
    """Paired folders, an HR folder (LR on the fly) or, with no data named, the built-in samples.

    The folders' images are checked first (:mod:`gramgan.train.data_check`)."""
    from gramgan.data.datasets import FolderSource, PairedRandomCropDataset, RandomCropDataset
    from gramgan.data.packed import PackedSource, is_packed

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
        dataset = PairedRandomCropDataset(cfg.train_hr, cfg.train_lr, **common)
        dataset.pairs = checked_pairs(dataset.pairs, cfg.skip_unreadable, "data.train_hr/train_lr", say)
        return dataset
    if cfg.train_hr and is_packed(cfg.train_hr):  # python -m gramgan.data.prepare SRC DST --packed
        return RandomCropDataset(PackedSource(cfg.train_hr), **common)
    if cfg.train_hr:
        source = FolderSource(cfg.train_hr, cache=cfg.cache_images)
        source.paths = checked_images(source.paths, cfg.skip_unreadable, "data.train_hr", say, min_size=cfg.hr_crop)
        return RandomCropDataset(source, **common)
    from gramgan.data.samples import sample_source

    return RandomCropDataset(sample_source("train"), **common)


def build_val_dataset(cfg: DataConfig, scale: int, say: Callable[[str], None] = print) -> Dataset:
    """Validation images: ``data.val_hr`` (+ ``val_lr``), else the built-in held-out sample; the
    folders' images are checked first."""
    from gramgan.data.datasets import FolderSource, ValidationDataset
    from gramgan.data.samples import sample_source

    common = {"scale": scale, "crop": cfg.val_crop, "max_images": cfg.val_max_images}
    if cfg.val_lr:
        dataset = ValidationDataset(hr_folder=cfg.val_hr, lr_folder=cfg.val_lr, **common)
        dataset.pairs = checked_pairs(dataset.pairs, cfg.skip_unreadable, "data.val_hr/val_lr", say)
        dataset.size = min(dataset.size, len(dataset.pairs))
        return dataset
    if cfg.val_hr:
        source = FolderSource(cfg.val_hr)
        source.paths = checked_images(source.paths, cfg.skip_unreadable, "data.val_hr", say)
        return ValidationDataset(source, **common)
    return ValidationDataset(sample_source("val"), **common)


def build_generator(cfg: GeneratorConfig, load_pretrained: bool = True) -> tuple[nn.Module, str | None]:
    """RRDBNet from the config, with ``model.pretrained`` loaded when asked.

    Returns the network and a one-line note about its initial weights (None for random init).
    """
    from gramgan.models.rrdbnet import RRDBNet
    from gramgan.train.checkpoint import load_generator_state

    model = RRDBNet(**cfg.arch())
    if not (load_pretrained and cfg.pretrained):
        return model, None
    try:
        model.load_pretrained(load_generator_state(cfg.pretrained, prefer_ema=cfg.pretrained_ema))
    except ValueError as err:  # an unreadable file, or another network's weights
        raise ConfigError(f"model.pretrained={cfg.pretrained}: {err}") from err
    return model, f"generator initialised from {cfg.pretrained}"


def build_discriminator(cfg: DiscriminatorConfig, num_in_ch: int, input_size: int) -> nn.Module:
    """The VGG-style discriminator; it sees G's output (``num_in_ch`` channels) at the HR crop size."""
    from gramgan.models.discriminator import VGGStyleDiscriminator

    return VGGStyleDiscriminator(num_in_ch=num_in_ch, num_feat=cfg.num_feat, input_size=input_size)


def _vgg_layers(preset: str) -> tuple[str, ...]:
    from gramgan.losses.perceptual import VGG19_LAYER_PRESETS

    if preset not in VGG19_LAYER_PRESETS:
        raise ConfigError(f"loss.perceptual_preset must be one of {list(VGG19_LAYER_PRESETS)}, got {preset!r}")
    return tuple(VGG19_LAYER_PRESETS[preset])


def build_loss(cfg: LossConfig, say: Callable[[str], None] = print) -> nn.Module:
    """The Gram-GAN generator loss, with the VGG19 extractor its perceptual term needs.

    Without VGG19 weights: ``loss.perceptual_optional`` true -> say so and turn the term off;
    false -> raise the extractor's error (it lists where it looked), with the two ways out added.
    """
    from gramgan.losses import GramGANLoss
    from gramgan.models.vgg import VGG19FeatureExtractor, VGGWeightsNotFoundError

    terms = cfg.terms
    vgg = None
    if terms.perceptual_weight:
        try:
            vgg = VGG19FeatureExtractor(
                layers=_vgg_layers(terms.perceptual_preset), weights_path=cfg.vgg_weights, download=cfg.vgg_download
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
                "$GRAMGAN_VGG19_WEIGHTS (or loss.vgg_weights) to train with it."
            )
            terms = dataclasses.replace(terms, perceptual_weight=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        return GramGANLoss(terms, vgg=vgg)
