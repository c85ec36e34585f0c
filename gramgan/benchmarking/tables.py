"""Text output: the fixed-width results table and the goals (targets) a benchmark tracks."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def format_table(rows: Sequence[dict[str, Any]], shape_columns: Sequence[tuple[str, str]]) -> str:
    """Fixed-width text table: the shape columns (key, header), then backend and the measured figures.

    A backend skipped on every row for one reason (e.g. no GPU) gets no rows, only a note at the end;
    a backend skipped or failed on some rows shows the status there and the reason once in the notes.
    """
    # "% floor": of the binding per-case floor (harness.roofline) where the rows have it, else "% copy".
    per_case_floor = any("fraction_of_floor" in row or "floor_error" in row for row in rows)
    headers = [header for _, header in shape_columns] + [
        "backend",
        "median ms",
        "x ref",
        "x compile",
        "GB/s",
        "% floor" if per_case_floor else "% copy",
        "peak MiB",
        "diff",
    ]
    reasons_by_backend: dict[str, set[str]] = {}
    for row in rows:
        reason = f"{row['status']}: {row.get('reason', '')}" if row.get("status") != "ok" else "ok"
        reasons_by_backend.setdefault(row["backend"], set()).add(reason)
    hidden = {name for name, seen in reasons_by_backend.items() if len(seen) == 1 and "ok" not in seen}
    lines_data: list[list[str]] = []
    notes: dict[tuple[str, str], None] = {}
    for row in rows:
        if row["backend"] in hidden:
            notes[(row["backend"], f"{row['status']}: {row.get('reason', '')}")] = None
            continue
        cells = [str(row.get(key, "")) for key, _ in shape_columns] + [row["backend"]]
        if row.get("status") == "ok":
            peak = row.get("peak_mem_bytes")
            cells += [
                _fmt(row["median_ms"], ".3f"),
                _fmt(row.get("speedup_vs_reference"), ".2f"),
                _fmt(row.get("speedup_vs_compile"), ".2f"),
                _fmt(row["bytes_per_s"] / 1e9, ".1f"),
                _roofline_cell(row, per_case_floor),
                _fmt(peak / 2**20, ".1f") if peak is not None else "n/a",
                _fmt(row.get("diff_vs_reference"), ".1e"),
            ]
            if row.get("floor_error"):
                notes[(row["backend"], f"{row.get('label', '')} {row.get('shape', '')}: {row['floor_error']}")] = None
        else:
            cells += [row["status"]] + [""] * 7
            notes[(row["backend"], f"{row['status']}: {row.get('reason', '')}")] = None
        lines_data.append(cells)
    widths = [max(len(headers[i]), *(len(cells[i]) for cells in lines_data)) for i in range(len(headers))]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in lines_data]
    if notes:
        out.append("")
        out += [f"  {backend} {reason}" for backend, reason in notes]
    return "\n".join(out)


def _roofline_cell(row: dict[str, Any], per_case_floor: bool) -> str:
    """``62.0 read``: % of the binding floor and which binds; or the % of the copy bandwidth."""
    if per_case_floor:
        if row.get("floor_error"):
            return "error"  # faster than its floor: explained under the table
        fraction = row.get("fraction_of_floor")
        return "-" if fraction is None else f"{100 * fraction:.1f} {row.get('bound', '')}".rstrip()
    return _fmt(100 * row["fraction_of_copy"], ".1f") if "fraction_of_copy" in row else "-"


@dataclass
class Target:
    """A goal the benchmark tracks (not a test): ``value`` (None: not measured here) against ``goal``,
    met when ``value >= goal`` (``value <= goal`` with ``lower_is_better``); ``error``: the value was
    measured but cannot be right (e.g. faster than its floor), so neither met nor missed."""

    name: str
    value: float | None
    goal: float
    unit: str = "x"
    lower_is_better: bool = False
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.error:
            return f"measurement error: {self.error}"
        if self.value is None:
            return "not measured"
        met = self.value <= self.goal if self.lower_is_better else self.value >= self.goal
        return "met" if met else "missed"

    def line(self) -> str:
        shown = "-" if self.value is None else f"{self.value:.2f}{self.unit}"
        relation = "<=" if self.lower_is_better else ">="
        return f"TARGET {self.name}: {shown} (goal {relation} {self.goal:g}{self.unit}) {self.verdict}"

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "verdict": self.verdict}


def find_row(rows: Sequence[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    """The first ok row whose fields equal ``match``."""
    for row in rows:
        if row.get("status") == "ok" and all(row.get(key) == value for key, value in match.items()):
            return row
    return None
