"""The ablation's plan: a YAML file of a shared base config, the variants on top of it, and the test sets.

An ablation file (``gramgan/configs/ablation/<name>.yaml``, or any file given with ``--config``)::

    name: ablation-tiny
    output: runs/ablation-tiny      # default output folder
    shared_generator: null          # a trained psnr-stage generator to reuse instead of training one
    base: {model: {...}, data: {...}, train: {...}}   # a train config, shared by every variant
    psnr: {train: {total_iters: 800}}                  # on top of base for the psnr stage
    gan: {train: {total_iters: 200}}                   # on top of base for every GAN variant
    variants:
      - {name: psnr, stage: psnr, note: the shared L1 generator}
      - {name: esrgan, note: ..., overrides: {loss.texture_weight: 0, loss.adversarial_masked: false}}
    eval: {test_sets: {held-out: null}, picture_crop: 64, ...}

A variant's training config is ``base`` + its stage's section + its ``overrides`` (nested sections or
dotted keys) + the command line's ``key=value`` overrides. GAN variants start from the psnr variant's
generator. See ``docs/ablation.md``.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gramgan.configs import available_presets, find_preset
from gramgan.train import TrainConfig, load_config

__all__ = [
    "PRESET_FAMILY",
    "AblationError",
    "AblationPlan",
    "EvalSettings",
    "TestSet",
    "Variant",
    "ablation_presets",
    "load_plan",
]

PRESET_FAMILY = "ablation"  # gramgan/configs/ablation/<name>.yaml
STAGES = ("psnr", "gan")
# Command-line keys with these first parts set the ablation file itself; every other key is a training key.
_PLAN_SECTIONS = ("base", "psnr", "gan", "eval")
_TOP_KEYS = {"name", "description", "output", "shared_generator", "variants", *_PLAN_SECTIONS}
BUILTIN_TEST_SET = "the built-in held-out photos"


class AblationError(ValueError):
    """The ablation file or the command line is invalid; the message names the key."""


@dataclass(frozen=True)
class Variant:
    """One row of the ablation: a name, its stage, a note for the table and its config overrides."""

    name: str
    stage: str = "gan"
    note: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TestSet:
    """A folder of HR images (``hr=None``: the built-in held-out photos) and optionally its LR folder."""

    name: str
    hr: str | None = None
    lr: str | None = None


@dataclass
class EvalSettings:
    """How the variants are scored and pictured (the ``eval`` section).

    Attributes:
        test_sets: ``{name: HR folder | {hr: folder, lr: folder} | null}``; null = the built-in held-out photos.
        device: where SR images are computed ("auto").
        tile: tile size (LR pixels) for big test images, 0 = whole images (0).
        lpips: score LPIPS when the lpips package and AlexNet's weights are on disk (never downloaded) (True).
        gram_patch: patch size k of the Gram-distance texture score (4, the texture loss's).
        picture_crop: side (HR pixels) of the crop shown in the pictures (64).
        picture_zoom: nearest-neighbour magnification of that crop (2).
        pictures_per_set: at most this many pictures per test set (4).
    """

    test_sets: list[TestSet] = field(default_factory=lambda: [TestSet("held-out")])
    device: str = "auto"
    tile: int = 0
    lpips: bool = True
    gram_patch: int = 4
    picture_crop: int = 64
    picture_zoom: int = 2
    pictures_per_set: int = 4


@dataclass
class AblationPlan:
    """A loaded ablation file plus the command line's training overrides."""

    name: str
    output: str
    base: dict[str, Any]
    stage_sections: dict[str, dict[str, Any]]
    variants: list[Variant]
    eval: EvalSettings
    train_overrides: list[str]
    shared_generator: str | None = None
    source: str = ""

    @property
    def psnr_variant(self) -> Variant:
        return next(v for v in self.variants if v.stage == "psnr")

    def variant(self, name: str) -> Variant:
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise AblationError(f"unknown variant {name!r}; this ablation has: {', '.join(v.name for v in self.variants)}")

    def train_config(self, variant: Variant, psnr_generator: str | os.PathLike[str] | None = None) -> TrainConfig:
        """The variant's training config; GAN variants start from ``psnr_generator``."""
        data = copy.deepcopy(self.base)
        _merge(data, self.stage_sections.get(variant.stage, {}))
        _merge(data, variant.overrides)
        extra = [f"name={json.dumps(variant.name)}", f"train.stage={variant.stage}"]
        if variant.stage == "gan":
            if psnr_generator is None:
                raise AblationError(f"variant {variant.name!r} (stage gan) needs the psnr-stage generator")
            extra += ["train.psnr_iters=0", f"model.pretrained={json.dumps(str(psnr_generator))}"]
        return load_config(base=data, overrides=[*self.train_overrides, *extra])


def ablation_presets() -> list[str]:
    """Names of the shipped ablation presets (``tiny``, ``paper``)."""
    return available_presets(PRESET_FAMILY)


def _preset_file(name: str) -> Path:
    path = find_preset(name, PRESET_FAMILY)
    if path is None:
        raise AblationError(f"unknown ablation preset {name!r}; available: {', '.join(ablation_presets())}")
    return path


def load_plan(
    preset: str | None = None, path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None
) -> AblationPlan:
    """Read a preset (default ``tiny``) or a file and apply ``key=value`` overrides.

    Keys starting with ``base.``, ``psnr.``, ``gan.`` or ``eval.`` (and ``name``, ``output``,
    ``shared_generator``) set the ablation file; every other key is a training key set for every
    variant, after the variants' own overrides.
    """
    if preset is not None and path is not None:
        raise AblationError("give either --preset or --config, not both")
    source = Path(path) if path is not None else _preset_file(preset or "tiny")
    if not source.is_file():
        raise AblationError(f"ablation file not found: {source}")
    try:
        doc = yaml.safe_load(source.read_text()) or {}
    except yaml.YAMLError as err:
        raise AblationError(f"cannot parse {source}: {err}") from err
    if not isinstance(doc, dict):
        raise AblationError(f"{source} must hold a mapping")
    train_overrides = []
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise AblationError(f"override {item!r} is not of the form key=value")
        key = key.strip()
        if key.split(".")[0] in _PLAN_SECTIONS or key in _TOP_KEYS - set(_PLAN_SECTIONS):
            _set_dotted(doc, key, _parse_value(item, raw))
        else:
            train_overrides.append(item)
    return _plan_from_doc(doc, train_overrides, str(source))


def _plan_from_doc(doc: dict[str, Any], train_overrides: list[str], source: str) -> AblationPlan:
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise AblationError(f"unknown key(s) {sorted(unknown)} in {source}; known: {sorted(_TOP_KEYS)}")
    variants = [_variant(entry, i) for i, entry in enumerate(doc.get("variants") or [])]
    if not variants:
        raise AblationError(f"{source} lists no variants")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise AblationError(f"variant names must be unique, got {names}")
    psnr = [v.name for v in variants if v.stage == "psnr"]
    if len(psnr) != 1:
        raise AblationError(f"exactly one variant must have stage psnr (the shared generator), got {psnr}")
    name = str(doc.get("name") or Path(source).stem)
    return AblationPlan(
        name=name,
        output=str(doc.get("output") or Path("runs") / name),
        base=_section(doc, "base"),
        stage_sections={stage: _section(doc, stage) for stage in STAGES},
        variants=variants,
        eval=_eval_settings(_section(doc, "eval")),
        train_overrides=train_overrides,
        shared_generator=doc.get("shared_generator"),
        source=source,
    )


def _variant(entry: Any, index: int) -> Variant:
    if not isinstance(entry, dict) or not entry.get("name"):
        raise AblationError(f"variants[{index}] must be a mapping with a name, got {entry!r}")
    unknown = set(entry) - {"name", "stage", "note", "overrides"}
    if unknown:
        raise AblationError(f"variants[{index}] ({entry['name']}): unknown key(s) {sorted(unknown)}")
    stage = entry.get("stage", "gan")
    if stage not in STAGES:
        raise AblationError(f"variants[{index}] ({entry['name']}): stage must be one of {STAGES}, got {stage!r}")
    overrides = entry.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise AblationError(f"variants[{index}] ({entry['name']}): overrides must be a mapping")
    name = str(entry["name"])
    if not name.replace("-", "").replace("+", "").replace("_", "").isalnum():
        raise AblationError(f"variant name {name!r}: use letters, digits, '-', '_' and '+' only (it names a folder)")
    return Variant(name=name, stage=stage, note=str(entry.get("note") or ""), overrides=overrides)


def _eval_settings(section: dict[str, Any]) -> EvalSettings:
    settings = EvalSettings()
    for key, value in section.items():
        if key == "test_sets":
            settings.test_sets = _test_sets(value)
        elif key in EvalSettings.__dataclass_fields__:
            expected = type(getattr(settings, key))
            if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
                raise AblationError(f"eval.{key} must be a {expected.__name__}, got {value!r}")
            setattr(settings, key, value)
        else:
            raise AblationError(f"unknown key eval.{key}; known: {', '.join(EvalSettings.__dataclass_fields__)}")
    for key in ("gram_patch", "picture_crop", "picture_zoom"):
        if getattr(settings, key) < 1:
            raise AblationError(f"eval.{key} must be >= 1")
    return settings


def _test_sets(value: Any) -> list[TestSet]:
    if not isinstance(value, dict) or not value:
        raise AblationError(f"eval.test_sets must be a non-empty mapping name -> HR folder, got {value!r}")
    sets = []
    for name, spec in value.items():
        if spec is None or isinstance(spec, str):
            sets.append(TestSet(str(name), spec))
        elif isinstance(spec, dict) and set(spec) <= {"hr", "lr"} and spec.get("hr"):
            sets.append(TestSet(str(name), str(spec["hr"]), spec.get("lr")))
        else:
            raise AblationError(f"eval.test_sets.{name}: expected a folder, null or {{hr: ..., lr: ...}}, got {spec!r}")
    return sets


def _section(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key) or {}
    if not isinstance(value, dict):
        raise AblationError(f"{key} must be a mapping, got {value!r}")
    return value


def _parse_value(item: str, raw: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise AblationError(f"override {item!r}: cannot parse the value: {err}") from err


def _set_dotted(doc: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested mapping, replacing what was there (a command-line override)."""
    *parents, last = key.split(".")
    node = doc
    for part in parents:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise AblationError(f"override {key!r}: {part!r} is not a section")
        node = child
    node[last] = value


def _merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    """Merge ``src`` (nested mappings and/or dotted keys) into ``dst`` in place."""
    for key, value in src.items():
        head, _, rest = str(key).partition(".")
        if rest:
            value = {rest: value}
        if isinstance(value, dict):
            if not isinstance(dst.get(head), dict):
                dst[head] = {}
            _merge(dst[head], value)
        else:
            dst[head] = value
