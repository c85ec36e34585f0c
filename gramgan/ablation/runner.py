"""Training the variants, re-runnably: a finished variant is reused, an interrupted one resumes.

Each variant trains in ``<output>/<variant>/`` (the layout of ``python -m gramgan.train``) and keeps
its state in ``ablation_variant.json`` there: the configuration it was started with, whether it
finished, its iterations and its training time. The time of an interrupted attempt counts up to its
newest checkpoint (work after that is redone, so it is not counted).
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gramgan.ablation.plan import AblationError, AblationPlan, Variant
from gramgan.atomic import atomic_write_text
from gramgan.train import TrainConfig, train

__all__ = ["STATE_FILE", "VariantRun", "comparable_config", "finished_run", "generator_path", "run_variant"]

STATE_FILE = "ablation_variant.json"
GENERATOR_FILE = "generator.pth"  # what a finished training run leaves (BasicSR-style params_ema/params)
_CHECKPOINT = re.compile(r"^iter_(\d+)\.pt$")
_VOLATILE_KEYS = ("output_dir", "train.progress")  # may change between runs without changing the result

Say = Callable[[str], None]


@dataclasses.dataclass
class VariantRun:
    """What the table needs of one variant's training."""

    name: str
    config: TrainConfig
    generator: Path
    status: str  # "trained", "resumed", "reused" or "given" (a shared generator not trained here)
    iteration: int | None
    train_time_s: float | None


def generator_path(plan: AblationPlan, root: Path, variant: Variant) -> Path:
    """The variant's final weights (the shared generator for the psnr variant when one is given)."""
    if variant.stage == "psnr" and plan.shared_generator:
        return Path(plan.shared_generator)
    return root / variant.name / GENERATOR_FILE


def comparable_config(cfg: TrainConfig) -> dict[str, Any]:
    """The config as plain JSON data, without the keys that do not change what is trained."""
    data = json.loads(json.dumps(dataclasses.asdict(cfg)))
    for dotted in _VOLATILE_KEYS:
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        node.pop(last, None)
    if data["model"].get("pretrained"):
        data["model"]["pretrained"] = str(Path(data["model"]["pretrained"]).resolve())
    return data


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for key in sorted(set(a) | set(b)) for d in _differences(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [prefix.rstrip(".")] if a != b else []


def _newest_checkpoint(folder: Path) -> Path | None:
    found = [
        (int(m.group(1)), p) for p in (folder / "checkpoints").glob("iter_*.pt") if (m := _CHECKPOINT.match(p.name))
    ]
    return max(found)[1] if found else None


def _read_state(folder: Path) -> dict[str, Any] | None:
    path = folder / STATE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise AblationError(f"{path} is not valid JSON ({err}); delete it to retrain that variant") from err


def _write_state(folder: Path, state: dict[str, Any]) -> None:
    atomic_write_text(folder / STATE_FILE, json.dumps(state, indent=2) + "\n")


def run_variant(plan: AblationPlan, variant: Variant, root: Path, psnr_generator: Path | None, say: Say) -> VariantRun:
    """Train ``variant`` under ``root`` unless it finished earlier; resume it when it was interrupted."""
    cfg = plan.train_config(variant, psnr_generator)
    folder = root / variant.name
    if variant.stage == "psnr" and plan.shared_generator and not Path(plan.shared_generator).is_file():
        raise AblationError(f"shared_generator {plan.shared_generator} does not exist")
    wanted = comparable_config(cfg)
    state = _read_state(folder)
    if state is not None and state.get("config") != wanted:
        keys = ", ".join(_differences(state.get("config"), wanted)) or "?"
        raise AblationError(
            f"variant {variant.name!r} in {folder} was started with another configuration (differs in: {keys}); "
            f"use another --output, or delete {folder} to train it again"
        )
    done = finished_run(plan, root, variant, psnr_generator, say)
    if done is not None:
        how = f"the given {done.generator}" if done.status == "given" else "finished earlier"
        say(f"{variant.name}: {how} ({done.iteration or 0} iterations, {done.train_time_s or 0:.0f} s): not trained")
        return done

    resume = _newest_checkpoint(folder)
    counted = float(state.get("train_time_s") or 0.0) if state is not None and resume is not None else 0.0
    if state is not None and resume is not None and state.get("attempt_started"):
        counted += max(0.0, resume.stat().st_mtime - state["attempt_started"])
    _write_state(
        folder,
        {
            "variant": variant.name,
            "status": "running",
            "attempt_started": time.time(),
            "train_time_s": counted,
            "iteration": None,
            "config": wanted,
        },
    )
    how = (
        f"resuming from {resume.name}"
        if resume
        else f"training from {'scratch' if variant.stage == 'psnr' else 'psnr'}"
    )
    say(f"{variant.name}: {how} (stage {variant.stage}, {cfg.train.total_iters} iterations)")
    result = train(cfg, output_dir=folder, resume=resume)
    total = counted + result.wall_time_s
    _write_state(
        folder,
        {
            "variant": variant.name,
            "status": "finished",
            "attempt_started": None,
            "train_time_s": total,
            "iteration": result.iteration,
            "config": wanted,
        },
    )
    say(f"{variant.name}: done, {result.iteration} iterations in {total:.0f} s")
    status = "resumed" if resume else "trained"
    return VariantRun(variant.name, cfg, folder / GENERATOR_FILE, status, result.iteration, total)


def finished_run(plan: AblationPlan, root: Path, variant: Variant, psnr_generator: Path, say: Say) -> VariantRun | None:
    """A variant that finished in an earlier invocation with the current configuration, or None."""
    cfg = plan.train_config(variant, psnr_generator)
    if variant.stage == "psnr" and plan.shared_generator:
        return VariantRun(variant.name, cfg, Path(plan.shared_generator), "given", None, None)
    folder = root / variant.name
    state = _read_state(folder)
    if state is None or state.get("status") != "finished" or not (folder / GENERATOR_FILE).is_file():
        return None
    if state.get("config") != comparable_config(cfg):
        keys = ", ".join(_differences(state.get("config"), comparable_config(cfg)))
        say(f"{variant.name}: left out of the table, it was trained with another configuration (differs in: {keys})")
        return None
    return VariantRun(variant.name, cfg, folder / GENERATOR_FILE, "reused", state["iteration"], state["train_time_s"])
