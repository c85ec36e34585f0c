"""Charts (matplotlib, Agg): speed-up bars and bandwidth-over-size panels against the copy roofline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gramgan.benchmarking.backends import ALL_BACKENDS
from gramgan.benchmarking.results import save_figure
from gramgan.benchmarking.tables import find_row


def start_figure(rows: Sequence[dict[str, Any]], ncols: int, figsize: tuple[float, float]) -> tuple[Any, ...]:
    """``(plt, fig, axes, backends, colors)``: a row of ``ncols`` panels, the backends that produced
    timings (in :data:`ALL_BACKENDS` order) and one fixed colour per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = [name for name in ALL_BACKENDS if any(r["backend"] == name and r["status"] == "ok" for r in rows)]
    colors = {name: f"C{i}" for i, name in enumerate(ALL_BACKENDS)}
    fig, axes = plt.subplots(1, ncols, figsize=figsize)
    return plt, fig, axes, backends, colors


def finish_figure(plt: Any, fig: Any, title: str, path: Path) -> None:
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def speedup_bars(
    ax: Any,
    rows: Sequence[dict[str, Any]],
    backends: Sequence[str],
    colors: dict[str, str],
    cases: Sequence[tuple[str, str]],
    ticks: Sequence[str],
    title: str,
    rotation: float = 0,
) -> None:
    """One bar per backend and ``(group, label)`` case: its speedup over the eager reference (log)."""
    width = 0.8 / max(1, len(backends))
    for i, name in enumerate(backends):
        values = []
        for group, label in cases:
            row = find_row(rows, group=group, label=label, backend=name) or {}
            values.append(row.get("speedup_vs_reference") or 0)
        ax.bar([x + i * width for x in range(len(cases))], values, width, label=name, color=colors[name])
    ax.set_xticks([x + width * (len(backends) - 1) / 2 for x in range(len(cases))])
    ax.set_xticklabels(ticks, rotation=rotation, ha="right" if rotation else "center", fontsize=8)
    ax.set_yscale("log")
    ax.axhline(1, color="gray", lw=0.8)
    ax.set_ylabel("speedup over eager reference (x)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def bandwidth_points(rows: Sequence[dict[str, Any]], backend: str, **match: Any) -> list[tuple[float, float]]:
    """``(B*H*W, achieved GB/s)`` of the backend's timed rows whose fields equal ``match``, by size."""
    return sorted(
        (r["batch"] * r["height"] * r["width"], r["bytes_per_s"] / 1e9)
        for r in rows
        if r["backend"] == backend and r["status"] == "ok" and all(r.get(k) == v for k, v in match.items())
    )


def roofline_axes(ax: Any, copy_bytes_per_s: float, title: str, legend_size: int = 8) -> None:
    """The copy-bandwidth line and the log-log labelling of a bandwidth-over-size panel."""
    ax.axhline(copy_bytes_per_s / 1e9, color="black", ls="--", lw=1, label="copy bandwidth")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("B*H*W pixels")
    ax.set_ylabel("achieved GB/s (least traffic / time)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=legend_size)
