"""Training checkpoints: atomic writes, rotation, safe loading, RNG state capture.

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

Files are ``<dir>/iter_<iteration:08d>.pt``; :func:`save_checkpoint` writes a temporary file in the
same folder and ``os.replace``-s it, so a crash never leaves a truncated checkpoint under the final
name, then deletes all but the newest ``keep``.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "FORMAT",
    "checkpoint_path",
    "find_latest_checkpoint",
    "get_rng_state",
    "list_checkpoints",
    "load_checkpoint",
    "load_generator_state",
    "save_checkpoint",
    "set_rng_state",
]

FORMAT = "gramgan-checkpoint-v1"
_NAME = re.compile(r"^iter_(\d+)\.pt$")


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
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(folder, int(state["iteration"]))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(dict(state), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for _, old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load one of our checkpoints with ``weights_only=True``; checks the format tag."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated file, pickle refused by weights_only, ...
        raise RuntimeError(f"cannot load checkpoint {path}: {err}") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path} is not a gramgan training checkpoint (format {found!r}, expected {FORMAT!r})")
    return state


def load_generator_state(path: str | os.PathLike[str], prefer_ema: bool = True) -> dict[str, Tensor]:
    """Generator weights from any supported file, as a state dict with BasicSR names.

    One loader serves training, evaluation and inference: this delegates to
    :func:`gramgan.inference.loading.read_generator_weights` (our checkpoints, BasicSR / Real-ESRGAN
    ``params_ema``/``params``, plain and original-ESRGAN state dicts, safetensors; ``prefer_ema``
    picks the EMA weights when both are present).
    """
    from gramgan.inference.loading import read_generator_weights

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
