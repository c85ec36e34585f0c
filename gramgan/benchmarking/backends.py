"""Which op backends a benchmark times: the list, why a backend cannot run here, ``torch.compile``."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

import torch

import gramgan.ops

# Backends of the op benchmarks, in table order. "compile" is torch.compile of the reference backend.
ALL_BACKENDS = ("reference", "compile", "cpu", "triton", "cuda")


def backend_reasons(device: torch.device, wanted: Sequence[str], compile_ok: bool = True) -> dict[str, str | None]:
    """For each wanted op backend: ``None`` if it can run on ``device`` here, else why not."""
    availability = gramgan.ops.backend_availability(device)
    reasons: dict[str, str | None] = {}
    for name in wanted:
        if name not in ALL_BACKENDS:
            raise ValueError(f"unknown backend {name!r}: expected some of {', '.join(ALL_BACKENDS)}")
        if name == "reference":
            reasons[name] = None
        elif name == "compile":
            reasons[name] = None if compile_ok else "torch.compile switched off (--no-compile)"
        elif name == "cpu" and device.type != "cpu":
            reasons[name] = "runs on CPU tensors only (run again with --device cpu)"
        elif name in ("cuda", "triton") and device.type != "cuda":
            reasons[name] = gpu_missing(name)
        else:
            reasons[name] = availability[name]
    return reasons


def gpu_missing(name: str) -> str:
    """What a GPU backend (``cuda`` or ``triton``) lacks in a run on the CPU: a GPU that torch sees, or
    only ``--device cuda``; for ``cuda`` also the extension's CUDA part when the build left it out."""
    if torch.cuda.is_available():
        return "times CUDA tensors only (run again with --device cuda)"
    missing = ["a CUDA GPU (torch sees none" + ("; it is a CPU-only build)" if torch.version.cuda is None else ")")]
    if name == "cuda" and not _extension_has_cuda():
        missing.append("an extension built with its CUDA part (gramgan._C has none; see python -m gramgan.info)")
    if name == "triton" and importlib.util.find_spec("triton") is None:
        missing.append("Triton (not installed)")
    return "needs " + " and ".join(missing)


def _extension_has_cuda() -> bool:
    try:
        from gramgan import _C
    except ImportError:
        return False
    return bool(_C.built_with_cuda())


def auto_backend(device: torch.device) -> str:
    """The backend ``gramgan.ops`` picks by itself on ``device`` (its ``"auto"`` order)."""
    availability = gramgan.ops.backend_availability(device)
    preferred = ("cuda", "triton") if device.type == "cuda" else ("cpu",)
    return next((name for name in preferred if availability.get(name) is None), "reference")


def parse_backends(text: str | None) -> list[str]:
    """``"reference,cpu"`` -> ``["reference", "cpu"]`` in table order; None -> every backend."""
    if not text:
        return list(ALL_BACKENDS)
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in ALL_BACKENDS]
    if unknown:
        raise ValueError(f"unknown backend(s) {unknown}: expected some of {', '.join(ALL_BACKENDS)}")
    if "reference" not in names:
        names.insert(0, "reference")  # every ratio is against the reference of the same run
    return [name for name in ALL_BACKENDS if name in names]


_COMPILED: dict[Callable[..., Any], Callable[..., Any]] = {}


def compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``torch.compile(fn, dynamic=False)``, one wrapper per function: each input shape gets its own
    static-shape graph, reused by every case of that shape. The recompile limit is raised so that a
    sweep never silently falls back to eager."""
    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        try:
            if getattr(config, name) < 256:
                setattr(config, name, 256)
        except AttributeError:
            pass
    if fn not in _COMPILED:
        _COMPILED[fn] = torch.compile(fn, dynamic=False)
    return _COMPILED[fn]
