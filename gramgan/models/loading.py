"""Loading a generator for inference from our training checkpoints or public RRDB checkpoints.

Accepted files (``torch.load(weights_only=True)``: tensors and plain containers only, no code runs):

- gramgan training checkpoints: ``{"format": "gramgan-checkpoint-v1", "arch": {...}, "generator":
  sd, "generator_ema": sd | None, "iteration": int, ...}``;
- BasicSR / Real-ESRGAN checkpoints ``{"params_ema": sd}`` and/or ``{"params": sd}``;
- a bare state dict, with BasicSR or original ESRGAN names, optionally ``module.`` / ``_orig_mod.``
  prefixed; ``.safetensors`` files hold one.

EMA weights are preferred (as BasicSR's test scripts do) unless ``prefer_ema=False``. The
architecture is read from the weights (:func:`gramgan.models.infer_rrdb_arch`); when the checkpoint
or the caller states one too, a disagreement raises :class:`CheckpointError` saying which.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gramgan.checkpoint_file import NotACheckpointError, load_checkpoint_file
from gramgan.models.rrdbnet import RRDBNet, infer_rrdb_arch, normalize_rrdb_state_dict

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "GeneratorWeights",
    "load_generator",
    "read_generator_weights",
]

CHECKPOINT_FORMAT = "gramgan-checkpoint-v1"
GENERATOR_EXPECTED = "a generator checkpoint (gramgan's, BasicSR / Real-ESRGAN .pth, or a state dict)"
# Data-only numpy types that training checkpoints may hold (RNG states); allowed while unpickling.
_MULTIARRAY = (getattr(np, "_core", None) or np.core).multiarray  # numpy 2 / numpy 1
_NUMPY_SAFE_GLOBALS = [np.ndarray, np.dtype, _MULTIARRAY._reconstruct, _MULTIARRAY.scalar]
_NUMPY_SAFE_GLOBALS += [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
_UNSHUFFLE_CHANNELS = "3 input channels for x4, 12 for x2, 48 for x1 (RGB)"
_RRDB_KEY = re.compile(
    r"^(conv_first|conv_body|conv_up1|conv_up2|conv_hr|conv_last|body\.\d+\.rdb[123]\.conv[1-5])\.(weight|bias)$"
)


class CheckpointError(ValueError):
    """A checkpoint cannot be used as the requested generator; the message says why."""


@dataclass
class GeneratorWeights:
    """A generator state dict (BasicSR names) and what is known about where it came from.

    Attributes:
        state_dict: parameter name → tensor, ready for ``RRDBNet.load_state_dict``.
        arch: RRDBNet constructor arguments inferred from the weights.
        description: one line for logs, e.g. "gramgan checkpoint, iteration 5000, EMA weights".
        ema: whether the EMA weights were taken.
        stated_arch: the architecture the checkpoint itself declares (ours only), else None.
        notes: remarks worth showing the user (e.g. "no EMA weights in the checkpoint").
    """

    state_dict: dict[str, Tensor]
    arch: dict[str, int]
    description: str
    ema: bool
    stated_arch: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def _load_file(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")  # also for .safetensors
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        return load_checkpoint_file(path, GENERATOR_EXPECTED, safe_globals=_NUMPY_SAFE_GLOBALS)
    except NotACheckpointError as err:  # notes, JSON, an image: one line, not torch's advice
        raise CheckpointError(str(err)) from None
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} holds Python objects other than tensors and plain containers; gramgan loads "
            f"checkpoints with torch.load(weights_only=True) and never runs code from them ({err})"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err


def _pick(ckpt: Mapping[str, Any], ema_key: str, plain_key: str, prefer_ema: bool) -> tuple[Any, bool, list[str]]:
    """Choose the EMA or the plain weights of a checkpoint, with a note when the choice was forced."""
    ema, plain = ckpt.get(ema_key), ckpt.get(plain_key)
    if prefer_ema and ema is not None:
        return ema, True, []
    if plain is not None:
        notes = [] if not prefer_ema else [f"no {ema_key!r} weights in the checkpoint; using {plain_key!r}"]
        return plain, False, notes
    if ema is not None:
        return ema, True, [f"no {plain_key!r} weights in the checkpoint; using {ema_key!r}"]
    raise CheckpointError(f"checkpoint has neither {ema_key!r} nor {plain_key!r} weights")


def _unexpected_keys(state_dict: Mapping[str, Any]) -> list[str]:
    """Keys that no RRDBNet (of any size) has, after legacy renaming."""
    return [k for k in state_dict if not _RRDB_KEY.match(k)]


def _not_rrdb(path: Path, state_dict: Mapping[str, Any], reason: str) -> CheckpointError:
    unexpected = _unexpected_keys(state_dict)
    message = f"{path} is not an RRDBNet checkpoint ({reason})"
    if unexpected:
        listed = ", ".join(map(repr, unexpected[:5])) + (", ..." if len(unexpected) > 5 else "")
        message += f"; {len(unexpected)} of its {len(state_dict)} keys are not RRDBNet's: {listed}"
    return CheckpointError(message)


def read_generator_weights(path: str | os.PathLike[str], prefer_ema: bool = True) -> GeneratorWeights:
    """Read the generator weights of a checkpoint file, in any accepted form (see module docs)."""
    path = Path(path)
    ckpt = _load_file(path)
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"{path}: expected a dict, got {type(ckpt).__name__}")
    notes: list[str] = []
    stated_arch = None
    fmt = ckpt.get("format")
    if fmt == CHECKPOINT_FORMAT:
        weights, ema, notes = _pick(ckpt, "generator_ema", "generator", prefer_ema)
        stated_arch = ckpt.get("arch")
        description = f"gramgan checkpoint, iteration {ckpt.get('iteration', '?')}"
    elif isinstance(fmt, str) and fmt.startswith("gramgan"):
        raise CheckpointError(
            f"{path}: unsupported checkpoint format {fmt!r} (this version reads {CHECKPOINT_FORMAT!r})"
        )
    elif "params_ema" in ckpt or "params" in ckpt:
        weights, ema, notes = _pick(ckpt, "params_ema", "params", prefer_ema)
        description = "BasicSR checkpoint, " + ("params_ema" if ema else "params")
    else:
        weights, ema, description = ckpt, False, "state dict"
    if not isinstance(weights, Mapping):
        raise CheckpointError(f"{path}: generator weights are a {type(weights).__name__}, not a state dict")
    if weights and not all(isinstance(v, Tensor) for v in weights.values()):
        bad = [k for k, v in weights.items() if not isinstance(v, Tensor)][:5]
        raise _not_rrdb(path, {}, f"entries that are not tensors: {', '.join(map(repr, bad))}")
    try:
        state_dict = normalize_rrdb_state_dict(dict(weights))
    except (ValueError, TypeError) as err:
        raise _not_rrdb(path, weights, str(err).removeprefix("not an RRDBNet state dict: ")) from err
    try:
        num_in_ch = stated_arch.get("num_in_ch") if isinstance(stated_arch, Mapping) else None
        arch = infer_rrdb_arch(state_dict, num_in_ch=num_in_ch)
    except (ValueError, TypeError) as err:
        raise _not_rrdb(path, state_dict, str(err).removeprefix("not an RRDBNet state dict: ")) from err
    if fmt == CHECKPOINT_FORMAT:
        description += ", EMA weights" if ema else ", raw generator weights"
    return GeneratorWeights(state_dict, arch, description, ema, stated_arch, notes)


def _scale_story(arch: Mapping[str, int], state_dict: Mapping[str, Tensor]) -> str:
    channels = int(state_dict["conv_first.weight"].shape[1])
    return f"conv_first has {channels} input channels → scale {arch['scale']} ({_UNSHUFFLE_CHANNELS})"


def _check_stated_arch(path: Path, weights: GeneratorWeights) -> None:
    stated = weights.stated_arch
    if stated is None:
        return
    if not isinstance(stated, Mapping):
        raise CheckpointError(f"{path}: 'arch' must be a dict of RRDBNet arguments, got {type(stated).__name__}")
    unknown = sorted(set(stated) - set(weights.arch))
    if unknown:
        raise CheckpointError(f"{path}: 'arch' has keys RRDBNet does not take: {', '.join(unknown)}")
    found = weights.arch
    diffs = [f"{k}={v} but the weights have {k}={found[k]}" for k, v in stated.items() if found[k] != v]
    if diffs:
        scale_differs = "scale" in stated and stated["scale"] != weights.arch["scale"]
        extra = f" ({_scale_story(weights.arch, weights.state_dict)})" if scale_differs else ""
        raise CheckpointError(f"{path}: checkpoint 'arch' says " + "; ".join(diffs) + extra)


def load_generator(
    path: str | os.PathLike[str],
    *,
    scale: int | None = None,
    prefer_ema: bool = True,
    device: str | torch.device = "cpu",
) -> tuple[RRDBNet, GeneratorWeights]:
    """Build an RRDBNet from a checkpoint file and load its weights, in eval mode on ``device``.

    ``scale``, when given, must match the checkpoint's (else :class:`CheckpointError` naming both).
    Returns the model (gradients off) and the :class:`GeneratorWeights` it came from.
    """
    path = Path(path)
    weights = read_generator_weights(path, prefer_ema=prefer_ema)
    _check_stated_arch(path, weights)
    if scale is not None and scale != weights.arch["scale"]:
        raise CheckpointError(
            f"expected a x{scale} model but {path} is x{weights.arch['scale']}: "
            f"{_scale_story(weights.arch, weights.state_dict)}"
        )
    model = RRDBNet(**weights.arch)
    expected = model.state_dict()
    missing = [k for k in expected if k not in weights.state_dict]
    unexpected = [k for k in weights.state_dict if k not in expected]
    if missing or unexpected:
        arch = ", ".join(f"{k}={v}" for k, v in weights.arch.items())
        listed = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        reason = (
            f"it lacks {len(missing)} of the {len(expected)} parameters of RRDBNet({arch}): {listed}"
            if missing
            else "it has keys that RRDBNet does not have"
        )
        raise _not_rrdb(path, weights.state_dict, reason)
    wrong = [
        f"{k}: {tuple(v.shape)} vs {tuple(expected[k].shape)}"
        for k, v in weights.state_dict.items()
        if v.shape != expected[k].shape
    ]
    if wrong:
        raise CheckpointError(f"{path}: parameter shapes do not match RRDBNet({weights.arch}): " + "; ".join(wrong[:5]))
    model.load_state_dict(weights.state_dict)
    model.requires_grad_(False)
    return model.eval().to(device), weights
