"""The whole ablation: train what is missing, score every finished variant, picture and report.

Output folder::

    <variant>/               one training run per variant (``python -m gramgan.train``'s layout),
                             plus ablation_variant.json (its state), scores.json and sr/<set>/*.png
    bicubic/                 scores.json and sr/<set>/*.png of the bicubic baseline
    test_sets/               the built-in held-out photos as PNGs (when a test set uses them)
    pictures/<set>/<stem>.png   bicubic | variants | HR, the same crop, labelled
    ablation.md, ablation.json  the table and everything behind it
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gramgan.ablation.pictures import Column, write_picture
from gramgan.ablation.plan import AblationPlan, Variant
from gramgan.ablation.report import loss_terms, perceptual_available, results_json, results_markdown
from gramgan.ablation.runner import VariantRun, finished_run, generator_path, run_variant
from gramgan.ablation.scoring import (
    Bicubic,
    ResolvedTestSet,
    lpips_scorer,
    resolve_test_sets,
    score_generator,
    sr_image_path,
)
from gramgan.atomic import atomic_write_text
from gramgan.devices import pick_device

__all__ = ["run_ablation"]

SCORES_FILE = "scores.json"
Say = Callable[[str], None]


def _selected(plan: AblationPlan, only: list[str] | None) -> list[Variant]:
    """The variants to train: ``only`` (plan order) or all, with the psnr variant whenever a GAN one needs it."""
    chosen = {plan.variant(name).name for name in only} if only else {v.name for v in plan.variants}
    if any(plan.variant(name).stage == "gan" for name in chosen):
        chosen.add(plan.psnr_variant.name)
    return [v for v in plan.variants if v.name in chosen]


def _cached_scores(folder: Path, key: dict[str, Any], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Scores from ``folder/scores.json`` when they were computed for ``key`` and their SR images are
    still there (the pictures are cut from them), else freshly computed."""
    path = folder / SCORES_FILE
    if path.is_file():
        saved = json.loads(path.read_text())
        images = [(name, img["name"]) for name, result in saved["scores"].items() for img in result["images"]]
        if saved.get("key") == key and all(sr_image_path(folder / "sr", *image).is_file() for image in images):
            return saved["scores"]
    scores = compute()
    atomic_write_text(path, json.dumps({"key": key, "scores": scores}, indent=2) + "\n")
    return scores


def run_ablation(
    plan: AblationPlan, root: Path, only: list[str] | None = None, command: str = "", say: Say = print
) -> dict[str, Any]:
    """Train the selected variants (all by default), then score and picture every finished one.

    Writes ``ablation.md``, ``ablation.json`` and the pictures under ``root``; returns the results."""
    root.mkdir(parents=True, exist_ok=True)
    psnr = plan.psnr_variant
    psnr_generator = generator_path(plan, root, psnr)
    for variant in plan.variants:  # every config error now, before hours of training
        plan.train_config(variant, psnr_generator)
    runs: dict[str, VariantRun] = {}
    for variant in _selected(plan, only):
        needs = psnr_generator if variant.stage == "gan" else None
        runs[variant.name] = run_variant(plan, variant, root, needs, lambda m: say(f"[{_clock()}] {m}"))
    for variant in plan.variants:
        if variant.name not in runs and (run := finished_run(plan, root, variant, psnr_generator, say)) is not None:
            runs[variant.name] = run
    finished = [v for v in plan.variants if v.name in runs]

    settings = plan.eval
    device = pick_device(settings.device)
    test_sets = resolve_test_sets(settings, root)
    lpips_fn, lpips_info = lpips_scorer(settings.lpips, device)
    scale = plan.train_config(psnr).model.scale
    key = {
        "test_sets": [[s.name, str(s.hr), str(s.lr)] for s in test_sets],
        "lpips": lpips_info,
        "gram_patch": settings.gram_patch,
        "tile": settings.tile,
    }
    say(f"[{_clock()}] scoring {len(finished)} variant(s) and bicubic on {', '.join(s.name for s in test_sets)}")

    def scores_of(model_fn: Callable[[], torch.nn.Module], folder: Path, generator_key: Any) -> dict[str, Any]:
        def compute() -> dict[str, Any]:
            return score_generator(
                model_fn(), test_sets, folder / "sr", scale=scale, device=device, settings=settings, lpips_fn=lpips_fn
            )

        return _cached_scores(folder, {**key, "generator": generator_key}, compute)

    bicubic = scores_of(lambda: Bicubic(scale).to(device), root / "bicubic", "bicubic")
    variants = []
    for variant in finished:
        run = runs[variant.name]
        weights = run.generator
        scores = scores_of(
            lambda w=weights: _load(w, scale, device),
            root / variant.name,
            [str(weights.resolve()), weights.stat().st_mtime_ns],
        )
        variants.append(
            {
                "name": variant.name,
                "stage": variant.stage,
                "note": variant.note,
                "terms": loss_terms(run.config),
                "status": run.status,
                "iterations": run.iteration,
                "train_time_s": run.train_time_s,
                "generator": str(weights),
                "scores": scores,
            }
        )
    results = {
        "name": plan.name,
        "source": plan.source,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": _describe(device),
        "command": command,
        "output": str(root),
        "psnr_variant": psnr.name,
        "scale": scale,
        "gram_patch": settings.gram_patch,
        "perceptual": _perceptual_summary([runs[v.name] for v in finished if v.stage == "gan"]),
        "lpips": lpips_info,
        "test_sets": _pictures(root, test_sets, bicubic, variants, settings),
        "bicubic": {"scores": bicubic},
        "variants": variants,
        "not_run": [v.name for v in plan.variants if v.name not in runs],
    }
    atomic_write_text(root / "ablation.json", results_json(results))
    atomic_write_text(root / "ablation.md", results_markdown(results))
    say(f"[{_clock()}] wrote {root / 'ablation.md'}, {root / 'ablation.json'} and {root / 'pictures'}")
    return results


def _pictures(
    root: Path, test_sets: list[ResolvedTestSet], bicubic: dict[str, Any], variants: list[dict[str, Any]], settings: Any
) -> list[dict[str, Any]]:
    """Write the pictures of every test set; returns the test sets' descriptions with their pictures."""
    from gramgan.data.datasets import list_images

    described = []
    for test_set in test_sets:
        hr_paths = {p.stem: p for p in list_images(test_set.hr)}
        stems = [img["name"] for img in bicubic[test_set.name]["images"]][: settings.pictures_per_set]
        pictures = []
        for stem in stems:
            columns = [_column("bicubic", bicubic, root / "bicubic", test_set.name, stem)]
            columns += [_column(v["name"], v["scores"], root / v["name"], test_set.name, stem) for v in variants]
            columns.append(Column("HR", "", hr_paths[stem]))
            path = root / "pictures" / test_set.name / f"{stem}.png"
            write_picture(path, columns, hr_paths[stem], settings.picture_crop, settings.picture_zoom)
            pictures.append(path.relative_to(root).as_posix())
        described.append(
            {
                "name": test_set.name,
                "description": test_set.description,
                "num_images": bicubic[test_set.name]["num_images"],
                "pictures": pictures,
            }
        )
    return described


def _column(label: str, scores: dict[str, Any], folder: Path, set_name: str, stem: str) -> Column:
    image = next(img for img in scores[set_name]["images"] if img["name"] == stem)
    return Column(label, f"{image['psnr']:.2f} dB", sr_image_path(folder / "sr", set_name, stem))


def _load(weights: Path, scale: int, device: torch.device) -> torch.nn.Module:
    from gramgan.inference import load_generator

    model, _ = load_generator(weights, scale=scale, prefer_ema=True, device=device)
    return model


def _perceptual_summary(gan_runs: list[VariantRun]) -> str:
    asked = [r for r in gan_runs if r.config.loss.terms.perceptual_weight > 0]
    if not asked:
        return "not used by any variant"
    missing = [r.name for r in asked if not perceptual_available(r.config)]
    if not missing:
        return "on wherever a variant asks for it"
    return (
        f"OFF in {', '.join(missing)}: no VGG19 weights were found (vgg19-dcbb9e9d.pth; "
        "loss.perceptual_optional let the runs go on without it; `esrgan` is then L1 + RaGAN)"
    )


def _describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    return f"CPU ({torch.get_num_threads()} torch threads)"


def _clock() -> str:
    return dt.datetime.now().strftime("%H:%M:%S")
