"""Launch signatures of the Triton kernels: recorded while the tests run, read back by the AOT guard.

A signature is what Triton specialises a kernel on: the type of every runtime argument (``*fp32`` for a
float32 tensor, ``i32``/``i64`` for an int, ``fp32`` for a Python float, ``u1`` for a bool, as Triton's
JIT types them, or the type a parameter's annotation pins) and the value of every ``tl.constexpr``.
tests/conftest.py installs a :class:`LaunchRecorder` when ``GRAMGAN_TRITON_SIGNATURES`` names a
folder; each test process (each xdist worker) writes the distinct signatures it launched to its own
``signatures-<worker>.json`` there, and ``tests/ops/aot_compile_kernels.py`` compiles every one of
them for a GPU (docs/ops.md, "Every Triton kernel compiles for the GPU").
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ENV = "GRAMGAN_TRITON_SIGNATURES"
PACKAGE = "gramgan.kernels"
FILE_GLOB = "signatures-*.json"
SCALAR_TYPES = {"u1", "i1", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "fp16", "bf16", "fp32", "fp64"}


def is_constexpr(param: inspect.Parameter) -> bool:
    """Whether a kernel parameter is annotated ``tl.constexpr`` (as an object or as a string)."""
    annotation = param.annotation
    if isinstance(annotation, str):
        return "constexpr" in annotation
    return getattr(annotation, "__name__", "") == "constexpr"


def annotated_type(param: inspect.Parameter) -> str | None:
    """The scalar type an annotation such as ``x: tl.float64`` pins (the JIT then passes ``x`` so), or None."""
    if param.annotation is inspect.Parameter.empty:
        return None
    from triton.runtime.jit import _normalize_ty  # the JIT's own reading of annotations (Triton 3.6 - 3.8)

    kind = _normalize_ty(param.annotation)
    return kind if kind in SCALAR_TYPES else None


def kernel_name(fn: Callable) -> str:
    """``module.function`` of a kernel's Python function: the key shared by recorder and guard."""
    return f"{fn.__module__}.{fn.__name__}"


def launch_signature(fn: Callable, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``{"kernel", "types", "constexprs"}`` of one launch of ``fn`` (the kernel's Python function).

    ``kwargs`` may hold launch options (``num_warps``, ...), which are not parameters and are ignored.
    """
    from triton.runtime.jit import mangle_type

    params = inspect.signature(fn).parameters
    bound = dict(zip(params, args))
    bound.update((name, value) for name, value in kwargs.items() if name in params)
    types, constexprs = {}, {}
    for name, param in params.items():
        if name not in bound:
            if param.default is inspect.Parameter.empty:
                raise TypeError(f"{kernel_name(fn)} launched without its argument {name!r}")
            bound[name] = param.default
        value = bound[name]
        if is_constexpr(param):
            if not (value is None or isinstance(value, (bool, int, float, str))):
                raise TypeError(f"{kernel_name(fn)}: constexpr {name}={value!r} cannot be recorded (not a scalar)")
            types[name] = "constexpr"
            constexprs[name] = value
        else:
            types[name] = annotated_type(param) or mangle_type(value)
    return {"kernel": kernel_name(fn), "types": types, "constexprs": constexprs}


def canonical(signature: dict[str, Any]) -> str:
    """One string per distinct signature (the deduplication key)."""
    return json.dumps(signature, sort_keys=True)


class LaunchRecorder:
    """Records the signature of every launch of a kernel defined under ``package``.

    Wraps the ``run`` method of Triton's interpreted functions (``TRITON_INTERPRET=1``) and of its
    JIT functions (a GPU), which every launch goes through, autotuned or not.
    """

    def __init__(self, package: str = PACKAGE) -> None:
        self.package = package
        self.signatures: dict[str, dict[str, Any]] = {}

    def record(self, fn: Callable, args: tuple, kwargs: dict[str, Any]) -> None:
        if fn.__module__ == self.package or fn.__module__.startswith(self.package + "."):
            signature = launch_signature(fn, args, kwargs)
            self.signatures.setdefault(canonical(signature), signature)

    def install(self) -> Callable[[], None]:
        """Starts recording; returns the function that stops it."""
        from triton.runtime.interpreter import InterpretedFunction
        from triton.runtime.jit import JITFunction

        originals = {cls: cls.run for cls in (InterpretedFunction, JITFunction)}
        recorder = self

        def wrap(original: Callable) -> Callable:
            def run(self, *args, **kwargs):
                launch_kwargs = {k: v for k, v in kwargs.items() if k not in ("grid", "warmup")}
                recorder.record(self.fn, args, launch_kwargs)
                return original(self, *args, **kwargs)

            return run

        for cls, original in originals.items():
            cls.run = wrap(original)

        def uninstall() -> None:
            for cls, original in originals.items():
                cls.run = original

        return uninstall

    def write(self, folder: str | os.PathLike, worker: str) -> Path | None:
        """Writes ``signatures-<worker>.json`` in ``folder`` (nothing when nothing was launched)."""
        if not self.signatures:
            return None
        import triton

        path = Path(folder) / f"signatures-{worker}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"triton": triton.__version__, "signatures": [self.signatures[k] for k in sorted(self.signatures)]}
        path.write_text(json.dumps(body, indent=1) + "\n")
        return path


def clear(folder: str | os.PathLike) -> None:
    """Removes the signature files of an earlier run from ``folder``."""
    for path in Path(folder).glob(FILE_GLOB):
        path.unlink()


def read(folder: str | os.PathLike) -> list[dict[str, Any]]:
    """The distinct signatures of every ``signatures-*.json`` in ``folder``."""
    unique: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(folder).glob(FILE_GLOB)):
        for signature in json.loads(path.read_text())["signatures"]:
            unique.setdefault(canonical(signature), signature)
    return list(unique.values())


FLOAT_SCALARS = ("fp32", "fp64")


def with_float_scalars(signature: dict[str, Any], kind: str) -> dict[str, Any]:
    """The same launch with its float scalars typed ``kind``.

    A Python float reaches a kernel as fp32 from Triton's JIT (unless annotated) and from torch's
    mutation analysis of a ``wrap_triton`` launch, as fp64 from inductor and from an annotated JIT.
    """
    types = {name: kind if t in FLOAT_SCALARS else t for name, t in signature["types"].items()}
    return {**signature, "types": types}


def variants(signatures: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every signature with its float scalars typed fp32, and typed fp64; deduplicated."""
    unique: dict[str, dict[str, Any]] = {}
    for signature in signatures:
        for kind in FLOAT_SCALARS:
            variant = with_float_scalars(signature, kind)
            unique.setdefault(canonical(variant), variant)
    return list(unique.values())
