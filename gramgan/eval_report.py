"""The files ``python -m gramgan.evaluate`` writes: ``results.md`` (a table) and ``results.json``.

A result is never overwritten unless asked (``--overwrite``): when ``results.md`` or ``results.json``
already exists in the output folder, the new pair is written beside it as ``results-2.md`` /
``results-2.json`` (then ``-3``, ...). Files are written atomically with 0666 & ~umask permissions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from gramgan.atomic import atomic_write_text

__all__ = ["format_score", "result_paths", "results_markdown", "write_results"]


def format_score(value: float | None, digits: int, factor: float = 1.0) -> str:
    """A score for a Markdown table: ``value * factor`` to ``digits`` places, "–" when missing, "inf"."""
    if value is None:
        return "–"
    return "inf" if math.isinf(value) else f"{value * factor:.{digits}f}"


def results_markdown(results: dict[str, Any]) -> str:
    """The results as a Markdown table (one bicubic row and one model row per data set)."""
    lines = [
        f"## Evaluation: {results['checkpoint']}",
        "",
        f"{results['weights']}, x{results['scale']}. PSNR (dB) / SSIM on Y (BT.601), 8-bit images, "
        f"{results['crop_border']}-pixel border cropped; SSIM with an 11x11 Gaussian window (sigma 1.5). "
        f"LPIPS (lower is better): {results['lpips']}.",
        "",
        "| Dataset | Images | Method | PSNR | SSIM | LPIPS |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for ds in results["datasets"]:
        for method, label in (("bicubic", "Bicubic"), ("model", "Model")):
            m = ds["mean"][method]
            lines.append(
                f"| {ds['name']} | {ds['num_images']} | {label} | {format_score(m['psnr'], 2)} | "
                f"{format_score(m['ssim'], 4)} | {format_score(m.get('lpips'), 4)} |"
            )
    return "\n".join(lines) + "\n"


def _json_safe(obj: Any) -> Any:
    """Non-finite floats as strings ("inf"), so the file is standard JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def result_paths(output_dir: Path, overwrite: bool = False) -> tuple[Path, Path]:
    """``results.md`` / ``results.json`` in ``output_dir``; without ``overwrite``, the first
    ``results-N`` pair (N = 2, 3, ...) of which neither file exists, if those are taken."""
    n = 1
    while True:
        stem = "results" if n == 1 else f"results-{n}"
        md, js = output_dir / f"{stem}.md", output_dir / f"{stem}.json"
        if overwrite or not (md.exists() or js.exists()):
            return md, js
        n += 1


def write_results(results: dict[str, Any], output_dir: Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Write the Markdown table and the JSON results to :func:`result_paths`; returns the paths."""
    md, js = result_paths(output_dir, overwrite)
    atomic_write_text(md, results_markdown(results))
    atomic_write_text(js, json.dumps(_json_safe(results), indent=2) + "\n")
    return md, js
