"""Opening a file that should be a checkpoint: the one ``torch.load`` behind ``--checkpoint`` (upscale,
evaluate, a pretrained generator) and ``--resume`` (training).

A file that ``torch.save`` did not write (notes, JSON, an image) is refused before torch reads it, with
one line naming the file and what was expected. torch's own messages for such a file say nothing of
the kind: an unpickling error about its first byte, an ``IndexError``, the advice to re-run with
``weights_only=False`` (which would run code from the file: never do that), or a note about
``_use_new_zipfile_serialization`` when memory-mapped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["NotACheckpointError", "load_checkpoint_file"]

ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6: a zip archive
PICKLE_PROTOCOL_2 = b"\x80"  # the legacy format: a pickle, protocol 2 or later


class NotACheckpointError(ValueError):
    """The file is not one that ``torch.save`` wrote, so it cannot be a checkpoint."""


def load_checkpoint_file(
    path: str | os.PathLike[str],
    expected: str,
    map_location: str | torch.device = "cpu",
    mmap: bool = False,
    safe_globals: Sequence[Any] = (),
) -> Any:
    """``torch.load(path, weights_only=True)`` of a file that should hold ``expected`` (e.g. "a gramgan
    training checkpoint"). Raises FileNotFoundError for a missing file and NotACheckpointError for one
    that torch.save did not write; torch's errors for a damaged checkpoint pass through. ``mmap`` maps
    the tensors of a zip-format file instead of reading them."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    with open(path, "rb") as handle:
        head = handle.read(len(ZIP_MAGIC))
    is_zip = head == ZIP_MAGIC
    if not is_zip and not head.startswith(PICKLE_PROTOCOL_2):
        raise NotACheckpointError(f"{path} is not a checkpoint: expected {expected}, a file written by torch.save")
    with torch.serialization.safe_globals(list(safe_globals)):
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap and is_zip)
