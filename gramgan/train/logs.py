"""Training records: a JSONL log (every loss term, lr, D's outputs), TensorBoard when installed,
the loss-curve picture drawn from the JSONL at the end, and rank 0's console messages."""

from __future__ import annotations

import json
import math
import os
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gramgan.atomic import atomic_path, atomic_write_text

__all__ = ["Messages", "MetricLogger", "plot_loss_curves", "read_jsonl"]


class Messages:
    """``say(message)``: print a message on rank 0 only, to ``sink`` when given, else through the
    progress bar while the loop shows one (``bar``), else to stdout."""

    def __init__(self, enabled: bool = True, sink: Callable[[str], None] | None = None) -> None:
        self.enabled = enabled
        self.sink = sink
        self.bar: Any = None

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        if self.sink is not None:
            self.sink(message)
        elif self.bar is not None:
            self.bar.write(message)
        else:
            print(message, flush=True)


class MetricLogger:
    """Accumulate per-iteration scalars and write their window means every ``flush``.

    Records are JSON objects, one per line, in ``<output>/log.jsonl``:
    ``{"iteration": 100, "kind": "train", "stage": "gan", "lr_g": ..., "loss/content": ..., ...}``
    and ``{"iteration": 5000, "kind": "val", "psnr_y": ..., "ssim_y": ...}``. A resumed run appends
    to the same file, dropping records past the resume point first so that the log tells one story.
    ``enabled=False`` (ranks other than 0) makes every method a no-op.
    """

    def __init__(self, output_dir: str | os.PathLike[str], enabled: bool = True, tensorboard: bool = True,
                 resume_iteration: int | None = None) -> None:
        self.enabled = enabled
        self.path = Path(output_dir) / "log.jsonl"
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)
        self._tb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_iteration is not None and self.path.exists():
            kept = [r for r in read_jsonl(self.path) if r.get("iteration", 0) <= resume_iteration]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        elif resume_iteration is None and self.path.exists():
            self.path.unlink()
        self._file = open(self.path, "a")  # noqa: SIM115 - kept open for the run
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self._tb = None
            else:
                self._tb = SummaryWriter(log_dir=str(Path(output_dir) / "tensorboard"))

    @property
    def has_tensorboard(self) -> bool:
        return self._tb is not None

    def accumulate(self, values: dict[str, float]) -> None:
        """Add one iteration's scalars to the current window."""
        if not self.enabled:
            return
        for key, value in values.items():
            self._sums[key] += float(value)
            self._counts[key] += 1

    def flush(self, iteration: int, extra: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Write the window's means as one ``train`` record and start a new window."""
        if not self.enabled or not self._counts:
            return None
        record: dict[str, Any] = {"iteration": iteration, "kind": "train", **(extra or {})}
        record.update({k: self._sums[k] / self._counts[k] for k in self._sums})
        self._sums.clear()
        self._counts.clear()
        self.write(record)
        return record

    def write(self, record: dict[str, Any]) -> None:
        """Append a record (and its numbers to TensorBoard, under ``<kind>/<key>``)."""
        if not self.enabled:
            return
        self._file.write(json.dumps(record, allow_nan=True) + "\n")
        self._file.flush()
        if self._tb is not None:
            kind = record.get("kind", "train")
            for key, value in record.items():
                if key not in ("iteration", "kind") and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(f"{kind}/{key}", value, record["iteration"])

    def close(self) -> None:
        if not self.enabled:
            return
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Records of a JSONL file; a torn last line (killed process) is ignored."""
    records = []
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def plot_loss_curves(jsonl: str | os.PathLike[str], png: str | os.PathLike[str]) -> Path | None:
    """Draw every ``loss/*`` series (log scale; terms that stayed 0 are left out), the lr, D's mean
    outputs and validation PSNR from the JSONL log into one PNG. Returns the path, or None when
    there is nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_jsonl(jsonl)
    train = [r for r in records if r.get("kind") == "train"]
    val = [r for r in records if r.get("kind") == "val"]
    if not train:
        return None
    keys = sorted({k for r in train for k in r if k.startswith("loss/")})
    keys = [k for k in keys if any(_finite(r.get(k)) and r[k] != 0 for r in train)]  # terms that are off
    d_keys = [k for k in ("d_real", "d_fake") if any(k in r for r in train)]
    panels = [("losses", keys, True), ("learning rate", ["lr_g"], False)]
    if d_keys:
        panels.append(("D mean logit", d_keys, False))
    if val:
        panels.append(("validation PSNR-Y (dB)", ["psnr_y"], False))
    fig, axes = plt.subplots(len(panels), 1, figsize=(9.5, 2.6 * len(panels)), squeeze=False)
    for ax, (title, series, log_scale) in zip(axes[:, 0], panels):
        source = val if title.startswith("validation") else train
        for key in series:
            points = [(r["iteration"], r[key]) for r in source if key in r and _finite(r[key])]
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, label=key.removeprefix("loss/"), marker="." if len(xs) < 30 else None)
        positive = all(r[k] > 0 for r in source for k in series if k in r and _finite(r[k]))
        if log_scale and positive:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[-1, 0].set_xlabel("iteration")
    fig.tight_layout()
    png = Path(png)
    with atomic_path(png, suffix=".tmp.png") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return png


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
