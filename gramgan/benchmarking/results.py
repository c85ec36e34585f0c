"""Where results go and how they are written: JSON, text and PNG files, each atomically."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch

from gramgan.atomic import atomic_path, atomic_write_text
from gramgan.benchmarking.environment import REPO_ROOT, device_slug, today

RESULTS_ROOT = REPO_ROOT / "benchmarks" / "results"


def results_dir(out: str | os.PathLike[str] | None, device: torch.device) -> Path:
    """``out`` if given, else ``benchmarks/results/<device>-<date>/``; created."""
    path = Path(out) if out is not None else RESULTS_ROOT / f"{device_slug(device)}-{today()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_text(path: Path, text: str) -> None:
    """Writes ``text`` atomically."""
    atomic_write_text(path, text)


def write_json(path: Path, obj: Any) -> None:
    """Writes ``obj`` as indented JSON, atomically; NaN/inf become null."""
    atomic_write_text(path, json.dumps(_json_safe(obj), indent=2) + "\n")


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(key): _json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(value) for value in obj]
    return obj


def save_figure(fig: Any, path: Path) -> None:
    """Saves a matplotlib figure as PNG, atomically."""
    with atomic_path(path, suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
