"""Checking the Gram-GAN parts of a BasicSR options dict, with errors that name the offending key.

Plain checks of a dict (no BasicSR call), so that the command can reject a YAML file before handing it to
BasicSR's ``train_pipeline``, whose own errors surface deep inside its model building.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from gramgan.losses.gramgan_loss import GramGANLossConfig
from gramgan.models.discriminator import NUM_CONVS
from gramgan.ops._validate import CRITERIA, SCOPES, TARGETS

__all__ = [
    "GRAMGAN_OPT_KEYS",
    "TEXTURE_OPT_DEFAULTS",
    "OptionsError",
    "check_options",
    "gramgan_loss_config",
    "texture_settings",
]


class OptionsError(ValueError):
    """A BasicSR options entry for a Gram-GAN part is wrong; the message starts with the key's path."""


# GramTextureLoss's YAML keys and their defaults (the texture term of docs/losses.md, scaled by loss_weight).
TEXTURE_OPT_DEFAULTS: dict[str, Any] = {
    "loss_weight": 1.0e4,
    "patch_size": 4,
    "scope": "local",
    "target": "gram",
    "criterion": "mse",
    "num_affine_warps": 4,
    "warp_magnitude": 0.003,
    "gt_weight": None,
    "clamp": True,
    "backend": None,
}

# train.gramgan_opt: the GramGANLossConfig fields that the model's G and D steps use (the texture term
# has its own entry, texture_opt; the content and VGG terms are BasicSR's pixel_opt / perceptual_opt).
GRAMGAN_OPT_KEYS = (
    "adversarial_weight",
    "disc_perceptual_weight",
    "disc_taps",
    "disc_perceptual_masked",
    "adversarial_masked",
    "mask_threshold",
    "mask_patch_size",
    "mask_random_offset",
    "mask_mode",
    "mask_window",
    "backend",
)
assert set(GRAMGAN_OPT_KEYS) <= {f.name for f in fields(GramGANLossConfig)}


def _number(key: str, value: object, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not minimum <= value < math.inf:
        raise OptionsError(f"{key}: must be a finite number >= {minimum:g}, got {value!r}")
    return float(value)


def _int(key: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise OptionsError(f"{key}: must be an int >= {minimum}, got {value!r}")
    return value


def _choice(key: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise OptionsError(f"{key}: unknown value {value!r}, expected one of {', '.join(map(repr, choices))}")
    return str(value)


def texture_settings(options: Mapping[str, Any], where: str = "texture_opt") -> dict[str, Any]:
    """The GramTextureLoss settings of ``options`` (without ``type``), defaults filled in and checked.

    ``where`` prefixes the key in error messages (``train.texture_opt`` in a full options file).
    """
    unknown = sorted(set(options) - set(TEXTURE_OPT_DEFAULTS) - {"type"})
    if unknown:
        raise OptionsError(
            f"{where}.{unknown[0]}: not a GramTextureLoss option (it takes {', '.join(TEXTURE_OPT_DEFAULTS)})"
        )
    s = {**TEXTURE_OPT_DEFAULTS, **{k: v for k, v in options.items() if k != "type"}}
    s["loss_weight"] = _number(f"{where}.loss_weight", s["loss_weight"])
    s["patch_size"] = _int(f"{where}.patch_size", s["patch_size"], 1)
    s["scope"] = _choice(f"{where}.scope", s["scope"], SCOPES)
    s["target"] = _choice(f"{where}.target", s["target"], TARGETS)
    s["criterion"] = _choice(f"{where}.criterion", s["criterion"], CRITERIA)
    s["num_affine_warps"] = _int(f"{where}.num_affine_warps", s["num_affine_warps"], 0)
    s["warp_magnitude"] = _number(f"{where}.warp_magnitude", s["warp_magnitude"])
    if s["gt_weight"] is not None:
        s["gt_weight"] = _number(f"{where}.gt_weight", s["gt_weight"])
    if not isinstance(s["clamp"], bool):
        raise OptionsError(f"{where}.clamp: must be true or false, got {s['clamp']!r}")
    _backend(f"{where}.backend", s["backend"])
    return s


def _backend(key: str, value: object) -> None:
    from gramgan.ops import BACKEND_NAMES

    if value is not None and value not in BACKEND_NAMES:
        raise OptionsError(f"{key}: unknown backend {value!r}, expected one of {', '.join(BACKEND_NAMES)} or ~")


def gramgan_loss_config(options: Mapping[str, Any] | None, where: str = "train.gramgan_opt") -> GramGANLossConfig:
    """The :class:`GramGANLossConfig` of the masked RaGAN and D-perceptual terms from ``train.gramgan_opt``.

    Content, VGG and texture weights are 0 there: BasicSR's ``pixel_opt`` / ``perceptual_opt`` and our
    ``texture_opt`` carry those terms.
    """
    options = dict(options or {})
    unknown = sorted(set(options) - set(GRAMGAN_OPT_KEYS))
    if unknown:
        raise OptionsError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(GRAMGAN_OPT_KEYS)})")
    _backend(f"{where}.backend", options.get("backend"))
    if isinstance(options.get("disc_taps"), list):
        options["disc_taps"] = tuple(options["disc_taps"])
    try:
        config = GramGANLossConfig(content_weight=0.0, perceptual_weight=0.0, texture_weight=0.0, **options)
    except ValueError as err:  # the config names the field; say where it sits in the options
        name = next((k for k in GRAMGAN_OPT_KEYS if k in str(err)), "")
        raise OptionsError(f"{where}.{name}: {err}" if name else f"{where}: {err}") from None
    bad = [t for t in config.disc_taps if t > NUM_CONVS]
    if bad:
        raise OptionsError(f"{where}.disc_taps: the discriminator has convolutions 1..{NUM_CONVS}, got {bad}")
    return config


def _section(opt: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    node: Any = opt
    for i, key in enumerate(keys):
        node = node.get(key) if isinstance(node, Mapping) else None
        if node is None:
            return {}
        if not isinstance(node, Mapping):
            raise OptionsError(f"{'.'.join(keys[: i + 1])}: must be a mapping, got {type(node).__name__}")
    return node


def check_options(opt: Mapping[str, Any]) -> None:
    """Check the Gram-GAN parts of a BasicSR training options dict; raise :class:`OptionsError` naming the key.

    Checked: ``train.texture_opt`` (a GramTextureLoss), ``train.gramgan_opt``, ``network_d`` when it is a
    GramGANDiscriminator, and the crop ``datasets.train.gt_size`` against the patch sizes and the
    discriminator's input rule. Everything else is left to BasicSR.
    """
    train = _section(opt, "train")
    texture = _section(opt, "train", "texture_opt")
    gt_size = _section(opt, "datasets", "train").get("gt_size")
    if gt_size is not None:
        gt_size = _int("datasets.train.gt_size", gt_size, 1)
    if texture and texture.get("type") == "GramTextureLoss":
        s = texture_settings(texture, "train.texture_opt")
        multiple = 2 * s["patch_size"] if s["scope"] == "local" else s["patch_size"]
        if gt_size is not None and gt_size % multiple:
            why = "the patch size" if s["scope"] == "global" else "2 x patch size: the half-size image is re-tiled"
            raise OptionsError(
                f"train.texture_opt.patch_size: {s['patch_size']} does not fit the crop datasets.train.gt_size="
                f"{gt_size}, which must be a multiple of {multiple} ({why})"
            )
    if opt.get("model_type") == "GramGANModel" or "gramgan_opt" in train:
        gramgan_loss_config(_section(opt, "train", "gramgan_opt"))
    network_d = _section(opt, "network_d")
    if network_d.get("type") == "GramGANDiscriminator" and gt_size is not None and (gt_size < 64 or gt_size % 32):
        raise OptionsError(
            f"datasets.train.gt_size: GramGANDiscriminator needs a crop that is a multiple of 32 and >= 64, "
            f"got {gt_size}"
        )
