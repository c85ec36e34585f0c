"""Config keys that were renamed: a YAML file, an override or a checkpoint that uses an old name still
loads, with a ``FutureWarning`` naming the new one.

A ``FutureWarning``, not a ``DeprecationWarning``: these warnings are for whoever writes the config and
runs ``python -m gramgan.train``, and Python hides ``DeprecationWarning`` there by default.
"""

from __future__ import annotations

import warnings
from typing import Any

from gramgan.train.config_schema import ConfigError

# old dotted key -> new dotted key, both in the same section
RENAMED_KEYS: dict[str, str] = {
    "loss.num_warps": "loss.num_affine_warps",  # Triton's launch option has that name (kernels/)
}


def current_key(key: str) -> str:
    """The name a dotted key has now: ``key`` itself, or its new name (with a ``FutureWarning``)."""
    new = RENAMED_KEYS.get(key)
    if new is None:
        return key
    warnings.warn(f"config key {key!r} is deprecated, use {new!r}", FutureWarning, stacklevel=3)
    return new


def with_current_keys(data: dict[str, Any]) -> dict[str, Any]:
    """A nested config dict with each renamed key under its new name, in its place (a copy of the
    sections that change; ``data`` is left as it is). A section that holds both names is a ``ConfigError``."""
    for old, new in RENAMED_KEYS.items():
        section_name, _, old_name = old.rpartition(".")
        new_name = new.rpartition(".")[2]
        section = data.get(section_name)
        if not isinstance(section, dict) or old_name not in section:
            continue
        if new_name in section:
            raise ConfigError(f"config keys {old!r} and {new!r} are one setting (old and new name): keep {new!r}")
        current_key(old)
        data = {**data, section_name: {(new_name if key == old_name else key): v for key, v in section.items()}}
    return data
