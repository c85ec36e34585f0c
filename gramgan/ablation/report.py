"""The ablation's results: ``ablation.json`` (everything) and ``ablation.md`` (one table per test set).

Each row is one variant: the loss terms its run actually used (read from its training config, with
the VGG perceptual term marked off when its weights were not found), its scores and its training time.
"""

from __future__ import annotations

import json
from typing import Any

from gramgan.eval_report import format_score
from gramgan.train import TrainConfig

__all__ = ["loss_terms", "perceptual_available", "results_markdown", "results_json"]


def perceptual_available(cfg: TrainConfig) -> bool:
    """Whether the run had its VGG19 perceptual term: weight > 0 and the weights on disk."""
    if cfg.train.stage == "psnr" or cfg.loss.terms.perceptual_weight <= 0:
        return False
    from gramgan.models import VGGWeightsError, resolve_vgg19_weights

    try:
        resolve_vgg19_weights(cfg.loss.vgg_weights, download=False)
    except VGGWeightsError:
        return False
    return True


def loss_terms(cfg: TrainConfig) -> str:
    """The loss terms a run trains with, e.g. ``L1 + VGG + texture(local) + RaGAN(masked)``."""
    if cfg.train.stage == "psnr":
        return "L1"
    loss = cfg.loss.terms
    terms = ["L1"] if loss.content_weight > 0 else []
    if loss.perceptual_weight > 0:
        terms.append("VGG" if perceptual_available(cfg) else "VGG(off: no weights)")
    if loss.texture_weight > 0:
        terms.append(f"texture({loss.texture_scope})")
    if loss.disc_perceptual_weight > 0:
        terms.append("D-perceptual")
    if loss.adversarial_weight > 0:
        terms.append("RaGAN(masked)" if loss.adversarial_masked else "RaGAN")
    return " + ".join(terms)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _row(name: str, terms: str, mean: dict[str, float], iterations: Any, seconds: float | None) -> str:
    return (
        f"| {name} | {terms} | {format_score(mean.get('psnr'), 2)} | {format_score(mean.get('ssim'), 4)} | "
        f"{format_score(mean.get('lpips'), 4)} | {format_score(mean.get('gram'), 3, 1e3)} | "
        f"{iterations if iterations else '–'} | {_duration(seconds)} |"
    )


def results_markdown(results: dict[str, Any]) -> str:
    """The Markdown report of :func:`results_json`'s data."""
    lines = [
        f"# Ablation: {results['name']}",
        "",
        f"{results['date']}, {results['device']}. Command: `{results['command']}`. "
        f"Every GAN variant starts from the `{results['psnr_variant']}` generator and trains with the same "
        "seed, data order and iterations; only the loss terms differ.",
        "",
        f"- VGG19 perceptual term: {results['perceptual']}.",
        f"- LPIPS: {results['lpips']}.",
        "- PSNR-Y / SSIM-Y as `python -m gramgan.evaluate` computes them (8-bit, Y of BT.601, border of "
        f"{results['scale']} px cropped); Gram = mean over {results['gram_patch']}x{results['gram_patch']} "
        "patches of ||G(SR) - G(HR)||_F, x10^3 (texture statistics; lower is closer to HR).",
        "- Train time: wall time of that variant's training alone (the GAN variants also build on the psnr "
        "stage's time); Iterations: its training iterations.",
    ]
    for test_set in results["test_sets"]:
        name = test_set["name"]
        lines += [
            "",
            f"## {name}: {test_set['description']}, {test_set['num_images']} image(s)",
            "",
            "| Variant | Loss terms | PSNR-Y ↑ | SSIM-Y ↑ | LPIPS ↓ | Gram ↓ | Iterations | Train time |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
            _row("bicubic", "–", results["bicubic"]["scores"][name]["mean"], None, None),
        ]
        for variant in results["variants"]:
            mean = variant["scores"][name]["mean"]
            lines.append(_row(variant["name"], variant["terms"], mean, variant["iterations"], variant["train_time_s"]))
        if test_set["pictures"]:
            lines += [
                "",
                "Pictures (bicubic | variants | HR, same crop): "
                + ", ".join(f"[{p.rsplit('/', 1)[-1]}]({p})" for p in test_set["pictures"]),
            ]
    if results["not_run"]:
        lines += ["", f"Not run yet: {', '.join(results['not_run'])}."]
    lines += ["", "Variants:", ""] + [f"- `{v['name']}`: {v['note']} ({v['status']})" for v in results["variants"]]
    return "\n".join(lines) + "\n"


def results_json(results: dict[str, Any]) -> str:
    """The results as standard JSON: non-finite numbers (an inf PSNR) become the strings "Infinity"/"NaN"."""
    plain = json.loads(json.dumps(results), parse_constant=str)
    return json.dumps(plain, indent=2) + "\n"
