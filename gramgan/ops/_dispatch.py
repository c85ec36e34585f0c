"""Backend choice: the ``backend=`` argument, else ``set_backend``, else ``$GRAMGAN_BACKEND``, else auto.

``auto`` picks ``cuda`` then ``triton`` for CUDA tensors and ``cpu`` for CPU tensors, and falls back to
``reference`` with a one-time warning naming what is missing. A backend asked for by name that cannot run
raises; one that can run but whose kernels do not cover the op's ``k`` or ``C`` falls back to the
reference with a one-time warning (docs/ops.md).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from gramgan.ops._validate import check_choice

if TYPE_CHECKING:
    from gramgan.ops._backend import Backend

BACKEND_NAMES = ("auto", "reference", "cpu", "cuda", "triton")
ENV_VAR = "GRAMGAN_BACKEND"

_process_default: str | None = None
_warned: set[str] = set()
_registered: dict[str, Backend] = {}  # register_backend's entries, by name


def register_backend(backend: Backend) -> Callable[[], None]:
    """Makes ``backend`` selectable as ``backend=backend.name``, in front of a built-in backend of that name
    (which ``auto`` then uses too); returns the function that removes it again.

    For tests and experiments, such as the host emulation of the CUDA kernels (docs/cuda-emulation.md) or a
    stand-in that reports itself unavailable; ``BACKEND_NAMES`` keeps listing the built-in backends only.
    """
    name = backend.name
    if not isinstance(name, str) or not name or name == "auto":
        raise ValueError(f"a backend needs a name other than 'auto', got {name!r}")
    previous = _registered.get(name)
    _registered[name] = backend

    def unregister() -> None:
        if _registered.get(name) is backend:
            if previous is None:
                del _registered[name]
            else:
                _registered[name] = previous

    return unregister


def _accepted() -> tuple[str, ...]:
    """Every name ``backend=`` accepts: the built-in ones, then the registered ones."""
    return BACKEND_NAMES + tuple(sorted(set(_registered) - set(BACKEND_NAMES)))


def _check_name(name: str) -> None:
    """``name`` must be a built-in or a registered backend (a plain membership test: torch.compile traces it)."""
    if name not in BACKEND_NAMES and name not in _registered:
        check_choice("backend", name, _accepted())


def set_backend(name: str | None) -> None:
    """Sets the process-wide default backend (``None`` restores ``$GRAMGAN_BACKEND`` / ``auto``)."""
    global _process_default
    if name is not None:
        _check_name(name)
    _process_default = name


def get_backend() -> str:
    """The process default: ``set_backend``'s value, else ``$GRAMGAN_BACKEND``, else ``"auto"``."""
    if _process_default is not None:
        return _process_default
    name = os.environ.get(ENV_VAR, "").strip() or "auto"
    if name not in BACKEND_NAMES and name not in _registered:
        raise ValueError(
            f"unknown backend {name!r} in ${ENV_VAR}: expected one of {', '.join(map(repr, _accepted()))}"
        )
    return name


def warn_once(message: str) -> None:
    """Emits ``message`` as a RuntimeWarning the first time only.

    Under ``torch.compile`` it runs while the call is traced, not traced into (``warnings.warn`` would be a
    graph break, an error under ``fullgraph=True``), so a fallback path compiles into one graph too."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


# What torch.compiler.assume_constant_result(warn_once) sets, without importing torch._dynamo (seconds).
warn_once._dynamo_marked_constant = True  # type: ignore[attr-defined]


def _table(name: str) -> Backend:
    """The backend object of ``name`` (imported lazily so a missing extension never breaks import)."""
    if name in _registered:
        return _registered[name]
    if name == "reference":
        from gramgan.ops.reference import REFERENCE_BACKEND

        return REFERENCE_BACKEND
    try:
        if name in ("cpu", "cuda"):
            from gramgan.ops import _cpp

            return _cpp.CPU_BACKEND if name == "cpu" else _cpp.CUDA_BACKEND
        from gramgan.ops import _triton

        return _triton.TRITON_BACKEND
    except ImportError as error:  # a broken install: report it as an unavailable backend
        return _MissingBackend(name, f"its wiring module failed to import ({error})")


class _MissingBackend:
    """Stands in for a backend whose Python module cannot be imported."""

    def __init__(self, name: str, reason: str) -> None:
        self.name, self._reason = name, reason

    def unavailable_reason(self, device: torch.device) -> str | None:
        return self._reason


def _auto(device: torch.device) -> Backend:
    candidates = ("cuda", "triton") if device.type == "cuda" else ("cpu",)
    reasons = []
    for name in candidates:
        backend = _table(name)
        reason = backend.unavailable_reason(device)
        if reason is None:
            return backend
        reasons.append(f"{name}: {reason}")
    warn_once(
        f"gramgan.ops: no fused backend for {device.type} tensors ({'; '.join(reasons)}); "
        "using the slow 'reference' backend"
    )
    return _table("reference")


def resolve(backend: str | None, device: torch.device, k: int, channels: int) -> Backend:
    """The backend that runs an op on ``device`` with patch size ``k`` and ``channels`` channels."""
    name = get_backend() if backend is None else backend
    _check_name(name)
    if name == "auto":
        chosen = _auto(device)
    else:
        chosen = _table(name)
        reason = chosen.unavailable_reason(device)
        if reason is not None:
            raise RuntimeError(f"backend {name!r} cannot run here: {reason}")
    unsupported = chosen.unsupported_reason(k, channels)
    if unsupported is not None:
        warn_once(f"gramgan.ops: backend {chosen.name!r} does not cover this call ({unsupported}); using 'reference'")
        return _table("reference")
    return chosen


def backend_availability(device: str | torch.device = "cpu") -> dict[str, str | None]:
    """Each concrete backend's name mapped to ``None`` when it can run on ``device``, else the reason why not."""
    device = torch.device(device)
    return {name: _table(name).unavailable_reason(device) for name in BACKEND_NAMES if name != "auto"}
