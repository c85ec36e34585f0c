"""The case runner: every case on every backend, with warm-up, memory probe, timing, the comparison
with the reference's result and the ratios to the reference and to ``torch.compile`` of it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from gramgan.benchmarking.memory import probe_call
from gramgan.benchmarking.timing import Timing, time_function


class Skip(Exception):
    """Raised by a case's builder when a backend does not apply to it (the message says why)."""


@dataclass
class Case:
    """One thing to time on every backend.

    ``build(backend)`` returns a zero-argument callable (inputs already on the device) whose result is
    compared with the reference's; it may raise :class:`Skip`. ``bytes_moved`` is the least traffic
    the operation needs (each input read once, each output written once): the roofline numerator.
    """

    group: str
    label: str
    params: dict[str, Any]
    bytes_moved: int
    build: Callable[[str], Callable[[], Any]]
    backends: Sequence[str] | None = None  # None: every backend; else only these (others "not run here")
    note: str = ""
    compare: Callable[[Any, Any], float | None] | None = None  # (out, reference_out) -> diff; default below
    extra: dict[str, Any] = field(default_factory=dict)  # the builder's memo (inputs shared by backends)

    def release(self) -> None:
        """Drops the inputs the builder memoised, once every backend has run."""
        self.extra.clear()


@dataclass
class RunConfig:
    """Timing budget: ``min_time_s`` of timed runs per (case, backend); memory tracking on or off."""

    min_time_s: float = 0.5
    track_memory: bool = True
    verbose: bool = True
    # On the CPU, a warm-up call slower than this is itself the (only) timing: the global-scope
    # reference at the paper's size takes ~10 s per call on 2 cores.
    single_call_s: float = 3.0


def compare_outputs(out: Any, ref: Any) -> float | None:
    """How far ``out`` is from the reference's result: relative max error for float tensors, the
    fraction of differing entries for integer tensors (selections), None if not comparable."""
    if isinstance(out, (tuple, list)):
        out = out[0] if out else None
        ref = ref[0] if isinstance(ref, (tuple, list)) and ref else ref
    if not isinstance(out, torch.Tensor) or not isinstance(ref, torch.Tensor) or out.shape != ref.shape:
        return None
    out, ref = out.detach().cpu(), ref.detach().cpu()
    if out.numel() == 0:
        return 0.0
    if not out.is_floating_point():
        return float((out != ref).double().mean())
    scale = ref.double().abs().max().clamp_min(1e-30)
    return float((out.double() - ref.double()).abs().max() / scale)


def fraction_differing(out: Any, ref: Any) -> float | None:
    """Fraction of entries that differ (NaN equals NaN): for masks and selections."""
    if not isinstance(out, torch.Tensor) or not isinstance(ref, torch.Tensor) or out.shape != ref.shape:
        return None
    out, ref = out.detach().cpu(), ref.detach().cpu()
    if out.numel() == 0:
        return 0.0
    same = (out == ref) | (out.isnan() & ref.isnan()) if out.is_floating_point() else out == ref
    return float((~same).double().mean())


def run_cases(
    cases: Sequence[Case],
    reasons: dict[str, str | None],
    device: torch.device,
    config: RunConfig,
    on_case_done: Callable[[list[dict[str, Any]]], None] | None = None,
) -> list[dict[str, Any]]:
    """Times every case on every backend of ``reasons`` and returns one row (a dict) per pair.

    ``on_case_done(rows_so_far)`` runs after each case (e.g. to save partial results, so that a run
    killed by a time limit still leaves what it measured)."""
    rows: list[dict[str, Any]] = []
    for case in cases:
        case_rows, reference_out = [], None
        for backend, reason in reasons.items():
            row = {"group": case.group, "label": case.label, **case.params, "backend": backend}
            row["bytes_moved"] = case.bytes_moved
            if reason is not None:
                row.update(status="skipped", reason=reason)
            elif case.backends is not None and backend not in case.backends:
                row.update(status="skipped", reason=case.note or "not run at this size")
            else:
                out = _run_one(case, backend, device, config, row)
                if backend == "reference":
                    reference_out = out
                elif out is not None and reference_out is not None:
                    row["diff_vs_reference"] = (case.compare or compare_outputs)(out, reference_out)
                del out
            case_rows.append(row)
            if config.verbose:
                print(_progress_line(row), file=sys.stderr, flush=True)
            free_memory(device)
        _add_ratios(case_rows)
        rows.extend(case_rows)
        del reference_out
        case.release()
        free_memory(device)
        if on_case_done is not None:
            on_case_done(rows)
    return rows


def _run_one(case: Case, backend: str, device: torch.device, config: RunConfig, row: dict[str, Any]) -> Any:
    try:
        fn = case.build(backend)
        # A separate warm-up call where the first one may compile (torch.compile, Triton's JIT and
        # autotuning, cuDNN): the probe after it then times a warm call. On the CPU otherwise the
        # probe is the warm-up (a global-scope reference call takes 10 s there).
        warm_up = backend == "compile" or device.type == "cuda"
        if warm_up:
            _, first_s, _ = probe_call(fn, device, track_memory=False)
            row["first_call_ms"] = first_s * 1e3
        first_out, call_s, peak = probe_call(fn, device, config.track_memory)
        if not warm_up:
            row["first_call_ms"] = call_s * 1e3
        first_out = _detached(first_out)  # keep the value for the comparison, not the autograd graph
        if device.type == "cpu" and call_s > config.single_call_s:
            timing = Timing(call_s, call_s, call_s, 1, 1)
        else:
            timing = time_function(fn, device, config.min_time_s, expected_s=call_s)
    except Skip as why:
        row.update(status="skipped", reason=str(why))
        return None
    except Exception as error:  # noqa: BLE001 - a failing backend is a result, not a crash
        row.update(status="failed", reason=failure_reason(error))
        if isinstance(error, torch.OutOfMemoryError):
            free_memory(device)
        return None
    row.update(status="ok", **timing.fields(), peak_mem_bytes=peak, bytes_per_s=case.bytes_moved / timing.median_s)
    del fn
    return first_out


def failure_reason(error: BaseException) -> str:
    """One line for a results row: the exception's type and the first line of its message."""
    return f"{type(error).__name__}: {error}".splitlines()[0][:300]


def _detached(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.detach()
    if isinstance(out, (tuple, list)):
        return type(out)(_detached(value) for value in out)
    return out


def free_memory(device: torch.device) -> None:
    """Returns cached GPU memory between cases, so that one case's peak does not hide in another's."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _add_ratios(case_rows: list[dict[str, Any]]) -> None:
    """speedup_vs_X = X's median / this row's median (> 1: faster than X), within one case."""
    medians = {row["backend"]: row.get("median_ms") for row in case_rows if row.get("status") == "ok"}
    for row in case_rows:
        if row.get("status") != "ok":
            continue
        for base in ("reference", "compile"):
            base_ms = medians.get(base)
            row[f"speedup_vs_{base}"] = base_ms / row["median_ms"] if base_ms else None


def add_roofline(rows: list[dict[str, Any]], copy_bytes_per_s: float) -> None:
    """fraction_of_copy = achieved bytes/s over the copy bandwidth measured in the same run."""
    for row in rows:
        if row.get("status") == "ok":
            row["fraction_of_copy"] = row["bytes_per_s"] / copy_bytes_per_s


def _progress_line(row: dict[str, Any]) -> str:
    if row.get("status") == "ok":
        return f"  {row['group']:<13} {row['label']:<28} {row['backend']:<9} {row['median_ms']:10.3f} ms"
    return f"  {row['group']:<13} {row['label']:<28} {row['backend']:<9} {row['status']}: {row.get('reason', '')}"
