"""The training presets shipped with gramgan: one YAML file per preset (``demo``, ``paper``, ...).

They are package data, found through :mod:`importlib.resources`, so they work from a wheel as well
as from a source checkout.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def presets_dir() -> Path:
    """The folder holding the preset YAML files."""
    return Path(str(resources.files(__name__)))


def available_presets() -> list[str]:
    """The names of the shipped presets, sorted."""
    folder = presets_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def find_preset(name: str) -> Path | None:
    """The YAML file of preset ``name``, or ``None`` when no such preset ships."""
    path = presets_dir() / f"{name}.yaml"
    return path if path.is_file() else None
