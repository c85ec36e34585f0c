"""Training configuration from YAML plus ``key=value`` overrides (the sections: :mod:`.config_schema`).

A YAML file names only what it changes; sections and keys are those of the dataclasses in
:mod:`gramgan.train.config_schema`::

    name: demo
    model: {num_block: 4, num_feat: 32}
    train: {total_iters: 600, batch_size: 8}
    loss: {texture_weight: 1.0, perceptual_optional: true}

Overrides on the command line use dotted keys and YAML values: ``train.batch_size=4``,
``schedule.cycle_iters=[100,200]``, ``model.pretrained=null``. Unknown keys are errors that suggest
the nearest known key. Shipped presets are found by :func:`gramgan.configs.find_preset`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from gramgan.configs import available_presets, find_preset, presets_dir
from gramgan.train.config_schema import (
    ConfigError,
    DataConfig,
    DiscriminatorConfig,
    GeneratorConfig,
    LoopConfig,
    LossConfig,
    ScheduleConfig,
    TrainConfig,
    inline_fields,
)
from gramgan.train.renamed_keys import current_key, with_current_keys

__all__ = [
    "ConfigError",
    "DataConfig",
    "DiscriminatorConfig",
    "GeneratorConfig",
    "LoopConfig",
    "LossConfig",
    "ScheduleConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "diff_configs",
    "load_config",
    "preset_path",
]


def _suggest(key: str, known: list[str], where: str = "") -> str:
    prefix = f"{where}." if where else ""
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"; did you mean {prefix + close[0]!r}?"
    return f"; known keys{' of ' + where if where else ''}: {', '.join(known)}"


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check / convert a YAML value to the annotated type."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a section (mapping), got {value!r}")
        return _build(hint, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = [value]
            else:
                raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML 1.1 reads "1e-4" as a string
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise ConfigError(f"{where}: cannot use {value!r} as {hint}")


def _build(cls: type, data: dict[str, Any], where: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    data = dict(data)
    kwargs = {}
    for inline in inline_fields(cls):  # its keys sit in this section, beside ours
        inner = {f.name for f in dataclasses.fields(hints[inline.name])}
        kwargs[inline.name] = _build(hints[inline.name], {k: data.pop(k) for k in list(data) if k in inner}, where)
    names = [f.name for f in dataclasses.fields(cls) if f.init and f not in inline_fields(cls)]
    known = names + [f.name for f in inline_fields(cls) for f in dataclasses.fields(hints[f.name])]
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else str(key)
        if key not in names:
            raise ConfigError(f"unknown config key {dotted!r}" + _suggest(str(key), known, where))
        kwargs[key] = _coerce(value, hints[key], dotted)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        message = str(err)
        raise ConfigError(message if where and where in message else f"{where or 'config'}: {message}") from err


def config_from_dict(data: dict[str, Any] | None) -> TrainConfig:
    """Build a :class:`TrainConfig` from nested dicts (missing keys take their defaults)."""
    return _build(TrainConfig, with_current_keys(dict(data or {})))


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config, inline fields flattened into their section (lists, not tuples:
    YAML- and checkpoint-safe)."""
    if dataclasses.is_dataclass(cfg):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(cfg):
            value = config_to_dict(getattr(cfg, f.name))
            if f.metadata.get("inline"):
                out.update(value)
            else:
                out[f.name] = value
        return out
    if isinstance(cfg, dict):
        return {k: config_to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [config_to_dict(v) for v in cfg]
    return cfg


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: cannot parse the value: {err}") from err
        _set_dotted(data, current_key(key), value)
    return data


def preset_path(name: str) -> Path:
    """The YAML file of a shipped preset (``gramgan/configs/<name>.yaml``)."""
    path = find_preset(name)
    if path is None:
        available = ", ".join(available_presets()) or f"none found in {presets_dir()}"
        raise ConfigError(f"unknown preset {name!r}; available: {available}")
    return path


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML mapping from a file (empty file = {})."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"cannot parse config file {path}: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(data).__name__}")
    return data


def load_config(
    path: str | os.PathLike[str] | None = None,
    preset: str | None = None,
    overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
) -> TrainConfig:
    """Config from ``base`` (a dict, e.g. a checkpoint's), else a YAML file, else a preset, plus
    overrides. With none of the three, the ``demo`` preset."""
    if sum(x is not None for x in (path, preset, base)) > 1:
        raise ConfigError("give at most one of a config file, a preset and a base config")
    if base is not None:
        data = _deepcopy(base)
    elif path is not None:
        data = read_yaml(path)
    else:
        data = read_yaml(preset_path(preset or "demo"))
    return config_from_dict(apply_overrides(with_current_keys(data), list(overrides or [])))


def _deepcopy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deepcopy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deepcopy(v) for v in data]
    return data


def diff_configs(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config dicts."""
    out = []
    for key in sorted(set(a) | set(b)):
        dotted = f"{prefix}{key}"
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out.extend(diff_configs(va, vb, dotted + "."))
        elif va != vb:
            out.append(dotted)
    return out
