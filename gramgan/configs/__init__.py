"""The presets shipped with gramgan, as YAML package data found through :mod:`importlib.resources`
(so they work from a wheel as well as from a source checkout).

Training presets (``demo``, ``paper``, ...) lie in this folder; the ablation command's presets
(``tiny``, ``paper``) in its ``ablation/`` subfolder, the ``"ablation"`` family below.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def presets_dir(family: str = "") -> Path:
    """The folder holding a family's preset YAML files (``""``: the training presets)."""
    return Path(str(resources.files(__name__))) / family


def available_presets(family: str = "") -> list[str]:
    """The names of a family's shipped presets, sorted."""
    folder = presets_dir(family)
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def find_preset(name: str, family: str = "") -> Path | None:
    """The YAML file of preset ``name`` of ``family``, or ``None`` when no such preset ships."""
    path = presets_dir(family) / f"{name}.yaml"
    return path if path.is_file() else None
