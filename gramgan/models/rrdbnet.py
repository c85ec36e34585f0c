"""ESRGAN's RRDB generator with BasicSR's parameter names, plus checkpoint loading helpers.

Parameter names follow BasicSR's ``RRDBNet`` (``conv_first``, ``body.N.rdb1.conv1`` ... ``conv_last``)
so public ESRGAN / BasicSR / Real-ESRGAN RRDB checkpoints load unchanged. Checkpoints saved with the
original ESRGAN names (``RRDB_trunk.N.RDB1.conv1``, ``trunk_conv``, ``upconv1``, ``upconv2``,
``HRconv``) are renamed on load by :func:`remap_legacy_keys`.

There is one loading mechanism: :func:`normalize_rrdb_state_dict` turns whatever was given (a path,
a BasicSR checkpoint dict, a DDP state dict, a legacy ESRGAN state dict) into a plain state dict with
our names, and :meth:`RRDBNet.load_pretrained` / :meth:`RRDBNet.from_pretrained` use it, checking the
architecture first so that a mismatch names the differing hyper-parameter instead of listing
hundreds of missing keys.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "RRDB_ARCH_KEYS",
    "RRDBNet",
    "infer_rrdb_arch",
    "normalize_rrdb_state_dict",
    "remap_legacy_keys",
]

# RRDBNet's constructor arguments: the keys of an architecture dict (``RRDBNet.arch``, infer_rrdb_arch,
# a checkpoint's "arch", the training config's model section).
RRDB_ARCH_KEYS = ("num_in_ch", "num_out_ch", "scale", "num_feat", "num_block", "num_grow_ch")

_LRELU_SLOPE = 0.2
_RESIDUAL_SCALE = 0.2
# conv_first sees the input pixel-unshuffled by this factor, per output scale (BasicSR's convention).
_UNSHUFFLE = {4: 1, 2: 2, 1: 4}


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; the output is scaled by 0.2 and added to the input."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        x1 = F.leaky_relu(self.conv1(x), _LRELU_SLOPE)
        x2 = F.leaky_relu(self.conv2(torch.cat((x, x1), 1)), _LRELU_SLOPE)
        x3 = F.leaky_relu(self.conv3(torch.cat((x, x1, x2), 1)), _LRELU_SLOPE)
        x4 = F.leaky_relu(self.conv4(torch.cat((x, x1, x2, x3), 1)), _LRELU_SLOPE)
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x + _RESIDUAL_SCALE * x5


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks, output scaled by 0.2 plus the input."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: Tensor) -> Tensor:
        return x + _RESIDUAL_SCALE * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(nn.Module):
    """ESRGAN generator: conv, ``num_block`` RRDBs with a long skip, two (nearest x2 + conv) stages.

    Args:
        num_in_ch: input channels (3 for RGB).
        num_out_ch: output channels.
        scale: upscaling factor, 4, 2 or 1. The network always upsamples x4 internally; for scale 2
            and 1 the input is first pixel-unshuffled by 2 or 4 (BasicSR / Real-ESRGAN convention),
            so ``conv_first`` takes ``num_in_ch * 4`` or ``num_in_ch * 16`` channels and H, W must
            be divisible by 2 or 4.
        num_feat: trunk width (64 in ESRGAN).
        num_block: number of RRDBs (23 in ESRGAN).
        num_grow_ch: growth channels of the dense blocks (32 in ESRGAN).

    At the defaults the network has 16,697,987 parameters (16.70 M), as ESRGAN's.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
    ) -> None:
        super().__init__()
        if scale not in _UNSHUFFLE:
            raise ValueError(f"RRDBNet scale must be 4, 2 or 1, got {scale!r}")
        arch = dict(zip(RRDB_ARCH_KEYS, (num_in_ch, num_out_ch, scale, num_feat, num_block, num_grow_ch)))
        for name, value in arch.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"RRDBNet {name} must be a positive int, got {value!r}")
        self.num_in_ch = num_in_ch
        self.num_out_ch = num_out_ch
        self.scale = scale
        self.num_feat = num_feat
        self.num_block = num_block
        self.num_grow_ch = num_grow_ch

        self.conv_first = nn.Conv2d(num_in_ch * _UNSHUFFLE[scale] ** 2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    @property
    def arch(self) -> dict[str, int]:
        """The constructor arguments, in the form :func:`infer_rrdb_arch` returns."""
        return {key: getattr(self, key) for key in RRDB_ARCH_KEYS}

    @property
    def repeated_blocks(self) -> tuple[nn.Module, ...]:
        """The RRDBs, which ``torch.compile`` compiles one by one (``gramgan.train.fast.compile_in_place``):
        they share one compiled graph."""
        return tuple(self.body)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.num_in_ch:
            raise ValueError(f"RRDBNet expects (B, {self.num_in_ch}, H, W) input, got {tuple(x.shape)}")
        factor = _UNSHUFFLE[self.scale]
        if factor > 1:
            if x.shape[-2] % factor or x.shape[-1] % factor:
                raise ValueError(
                    f"RRDBNet with scale {self.scale} needs H and W divisible by {factor}, "
                    f"got {tuple(x.shape)}"
                )
            x = F.pixel_unshuffle(x, factor)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = F.leaky_relu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")), _LRELU_SLOPE)
        feat = F.leaky_relu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")), _LRELU_SLOPE)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), _LRELU_SLOPE))

    def load_pretrained(self, source: Any, strict: bool = True) -> RRDBNet:
        """Load a checkpoint in any supported form (see :func:`normalize_rrdb_state_dict`).

        The architecture is checked first (:func:`infer_rrdb_arch`, with ``num_in_ch`` taken from
        this model): a mismatch raises ``ValueError`` naming each differing hyper-parameter.
        Returns ``self``.
        """
        state_dict = normalize_rrdb_state_dict(source)
        found = infer_rrdb_arch(state_dict, num_in_ch=self.num_in_ch)
        diffs = [f"{k}={found[k]} (model has {v})" for k, v in self.arch.items() if found[k] != v]
        if diffs:
            raise ValueError(
                "RRDB checkpoint does not match this RRDBNet: checkpoint has " + ", ".join(diffs)
            )
        self.load_state_dict(state_dict, strict=strict)
        return self

    @classmethod
    def from_pretrained(cls, source: Any, num_in_ch: int | None = None) -> RRDBNet:
        """Build an RRDBNet whose architecture is read from the checkpoint, and load it."""
        state_dict = normalize_rrdb_state_dict(source)
        model = cls(**infer_rrdb_arch(state_dict, num_in_ch=num_in_ch))
        model.load_state_dict(state_dict)
        return model


_LEGACY_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^RRDB_trunk\.(\d+)\.RDB([123])\."), r"body.\1.rdb\2."),
    (re.compile(r"^trunk_conv\."), "conv_body."),
    (re.compile(r"^upconv1\."), "conv_up1."),
    (re.compile(r"^upconv2\."), "conv_up2."),
    (re.compile(r"^HRconv\."), "conv_hr."),
)


def remap_legacy_keys(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename original ESRGAN keys (``RRDB_trunk.N.RDB1.conv1``, ``trunk_conv``, ``upconv1``,
    ``upconv2``, ``HRconv``) to BasicSR's; ``conv_first`` and ``conv_last`` are the same in both.

    Keys already in BasicSR form pass through unchanged, so the function is idempotent.
    """
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        new_key = key
        for pattern, replacement in _LEGACY_RULES:
            new_key, n = pattern.subn(replacement, new_key)
            if n:
                break
        if new_key in out:
            raise ValueError(f"state dict has both {key!r} and another key that maps to {new_key!r}")
        out[new_key] = value
    return out


def _strip_prefix(state_dict: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix) :]: v for k, v in state_dict.items()}
    return dict(state_dict)


def normalize_rrdb_state_dict(source: Any) -> dict[str, Tensor]:
    """Turn a checkpoint into a plain RRDBNet state dict with BasicSR names.

    Accepts: a path (loaded on CPU with ``torch.load(weights_only=True)``); a BasicSR checkpoint
    ``{"params_ema": ...}`` or ``{"params": ...}`` (``params_ema`` preferred, as BasicSR's test
    scripts do); a state dict whose keys all start with ``module.`` (DDP) or ``_orig_mod.``
    (``torch.compile``); and original ESRGAN key names (renamed by :func:`remap_legacy_keys`).
    """
    if isinstance(source, (str, os.PathLike)):
        source = torch.load(os.fspath(source), map_location="cpu", weights_only=True)
    if not isinstance(source, Mapping):
        raise TypeError(f"expected a state dict, a checkpoint dict or a path, got {type(source).__name__}")
    for wrapper in ("params_ema", "params"):
        if wrapper in source and isinstance(source[wrapper], Mapping):
            source = source[wrapper]
            break
    state_dict = dict(source)
    for prefix in ("module.", "_orig_mod."):
        state_dict = _strip_prefix(state_dict, prefix)
    bad = [k for k, v in state_dict.items() if not isinstance(v, Tensor)]
    if bad:
        raise ValueError(f"not an RRDBNet state dict: entry {bad[0]!r} is not a tensor")
    return remap_legacy_keys(state_dict)


def _weight(state_dict: Mapping[str, Tensor], key: str) -> Tensor:
    if key not in state_dict:
        raise ValueError(
            f"not an RRDBNet state dict: missing {key!r} (its first keys: {list(state_dict)[:3]})"
        )
    return state_dict[key]


def infer_rrdb_arch(state_dict: Mapping[str, Tensor], num_in_ch: int | None = None) -> dict[str, int]:
    """Read RRDBNet's constructor arguments from a state dict (either naming scheme).

    num_feat, num_block, num_grow_ch and num_out_ch are read directly. The scale is not stored:
    it is inferred from ``conv_first``'s input channels, which are ``num_in_ch``, ``4 * num_in_ch``
    or ``16 * num_in_ch`` for scale 4, 2 or 1 (pixel-unshuffle). ``num_in_ch`` cannot be told apart
    from the unshuffle factor, so it must be given or is assumed to equal ``num_out_ch`` (3 for the
    public RGB checkpoints: conv_first input channels 3 / 12 / 48 mean scale 4 / 2 / 1).

    Returns a dict with keys num_in_ch, num_out_ch, scale, num_feat, num_block, num_grow_ch;
    raises ``ValueError`` when the state dict is not an RRDBNet's.
    """
    sd = remap_legacy_keys(state_dict)
    first = _weight(sd, "conv_first.weight")
    last = _weight(sd, "conv_last.weight")
    grow = _weight(sd, "body.0.rdb1.conv1.weight")
    num_out_ch = int(last.shape[0])
    in_ch = num_in_ch if num_in_ch is not None else num_out_ch
    conv_in = int(first.shape[1])
    scales = [s for s, f in _UNSHUFFLE.items() if in_ch * f * f == conv_in]
    if not scales:
        raise ValueError(
            f"conv_first takes {conv_in} input channels, which is not {in_ch}, {in_ch * 4} or "
            f"{in_ch * 16} (scale 4, 2 or 1 with num_in_ch={in_ch})"
        )
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"^body\.(\d+)\.", k))}
    if blocks != set(range(len(blocks))):
        raise ValueError(f"RRDB state dict has non-contiguous body block indices: {sorted(blocks)}")
    return {
        "num_in_ch": in_ch,
        "num_out_ch": num_out_ch,
        "scale": scales[0],
        "num_feat": int(first.shape[0]),
        "num_block": len(blocks),
        "num_grow_ch": int(grow.shape[0]),
    }
