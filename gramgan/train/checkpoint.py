"""Training checkpoints: a run's whole state, atomic writes, rotation, safe loading, RNG capture.

A checkpoint is one ``torch.save`` file holding only tensors and plain Python values, so it loads
with ``torch.load(weights_only=True)`` (no code from the file ever runs)::

    format            "gramgan-checkpoint-v1"
    iteration         completed iterations
    config            the run's TrainConfig as a plain dict
    arch              RRDBNet keyword arguments
    generator         G's state dict
    generator_ema     the EMA of G (what validation and inference use)
    discriminator     D's state dict (None in stage psnr)
    optimizer_g / optimizer_d, scheduler_g / scheduler_d
    rng               per rank: python, numpy (as plain lists), torch CPU, CUDA (if any)
    data              {"epoch", "offset"}: the data position (batches consumed in the epoch)
    world_size, fingerprints   processes of the run, a hash of each one's weights (all equal)

Files are ``<dir>/iter_<iteration:08d>.pt``, written atomically (:mod:`gramgan.atomic`: a crash
never leaves a truncated checkpoint under the final name); all but the newest ``keep`` are deleted.
This module knows the file, not the run: :mod:`gramgan.train.run` turns a run into this dict and back
(``run_state``, ``restore_state``), so that a resumed run continues bitwise like an uninterrupted one
(on the CPU).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gramgan.atomic import atomic_path
from gramgan.checkpoint_file import NotACheckpointError, load_checkpoint_file
from gramgan.train.config_schema import ConfigError, TrainConfig

__all__ = [
    "FORMAT",
    "CheckpointError",
    "check_resumable",
    "checkpoint_path",
    "find_latest_checkpoint",
    "get_rng_state",
    "latest_readable_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_generator_state",
    "save_checkpoint",
    "seed_all",
    "set_rng_state",
    "weights_fingerprint",
]

FORMAT = "gramgan-checkpoint-v1"
_NAME = re.compile(r"^iter_(\d+)\.pt$")


class CheckpointError(ValueError):
    """A file is not a readable gramgan training checkpoint; the message (one line) names it."""


def checkpoint_path(folder: str | os.PathLike[str], iteration: int) -> Path:
    return Path(folder) / f"iter_{iteration:08d}.pt"


def list_checkpoints(folder: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """``(iteration, path)`` of the checkpoints in ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def find_latest_checkpoint(folder: str | os.PathLike[str]) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1][1] if found else None


def save_checkpoint(state: Mapping[str, Any], folder: str | os.PathLike[str], keep: int = 3) -> Path:
    """Write ``state`` atomically as ``iter_<state['iteration']>.pt`` and keep the newest ``keep``."""
    path = checkpoint_path(folder, int(state["iteration"]))
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(dict(state), handle)
        handle.flush()
        os.fsync(handle.fileno())
    for _, old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu", mmap: bool = False
) -> dict[str, Any]:
    """Load one of our checkpoints with ``weights_only=True``; checks the format tag. ``mmap`` maps the
    tensors instead of reading them (a cheap look at the config, or a check that the file opens)."""
    path = Path(path)
    try:
        state = load_checkpoint_file(path, "a gramgan training checkpoint", map_location, mmap=mmap)
    except NotACheckpointError as err:  # notes, JSON, an image: one line, not torch's advice
        raise CheckpointError(str(err)) from None
    except FileNotFoundError:
        raise
    except Exception as err:  # truncated file, pickle refused by weights_only, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"cannot load checkpoint {path}: {reason}") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} is not a gramgan training checkpoint (format {found!r}, expected {FORMAT!r})")
    return state


def latest_readable_checkpoint(
    folder: str | os.PathLike[str], say: Callable[[str], None] = print
) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint in ``folder`` that opens, and its (memory-mapped) state; each newer
    unreadable one (a truncated copy, say) is named in a warning. None when no checkpoint opens."""
    for _, path in reversed(list_checkpoints(folder)):
        try:
            return path, load_checkpoint(path, mmap=True)
        except CheckpointError as err:
            say(f"WARNING: {err}; trying the previous checkpoint")
    return None


def load_generator_state(path: str | os.PathLike[str], prefer_ema: bool = True) -> dict[str, Tensor]:
    """Generator weights from any supported file, as a state dict with BasicSR names.

    One loader serves training, evaluation and inference: this delegates to
    :func:`gramgan.models.loading.read_generator_weights` (our checkpoints, BasicSR / Real-ESRGAN
    ``params_ema``/``params``, plain and original-ESRGAN state dicts, safetensors; ``prefer_ema``
    picks the EMA weights when both are present).
    """
    from gramgan.models.loading import read_generator_weights

    return read_generator_weights(path, prefer_ema=prefer_ema).state_dict


# --------------------------------------------------------------------------- RNG state


def get_rng_state() -> dict[str, Any]:
    """This process's RNG states as tensors and plain lists (``weights_only``-safe)."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`get_rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np.asarray(np_state["keys"].numpy(), dtype=np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- a run's state


def weights_fingerprint(*modules: nn.Module) -> str:
    """SHA-256 of the modules' parameters (names and exact bytes). Buffers are left out: D's BatchNorm
    running statistics legitimately differ between DDP ranks and are never used."""
    digest = hashlib.sha256()
    for module in modules:
        for name, param in module.named_parameters():
            digest.update(name.encode())
            digest.update(param.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_resumable(state: Mapping[str, Any], cfg: TrainConfig) -> None:
    """A checkpoint continues this config's run only with the same stage and generator shape."""
    stage = state.get("config", {}).get("train", {}).get("stage")
    if stage != cfg.train.stage:
        raise ConfigError(
            f"cannot resume: the checkpoint is from stage {stage!r}, this run is stage {cfg.train.stage!r} "
            "(to start stage gan from a psnr checkpoint, use model.pretrained=<checkpoint> instead of --resume)"
        )
    if state.get("arch") != cfg.model.arch():
        raise ConfigError(f"cannot resume: checkpoint arch {state.get('arch')} != model {cfg.model.arch()}")
