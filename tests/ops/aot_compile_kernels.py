"""Compiles every recorded launch of every Triton kernel of gramgan.kernels for a GPU, without a GPU.

The interpreter, which runs the Triton tests on a CPU, never runs Triton's compiler: a kernel that does
not compile (a non-constexpr global, a loop-carried value whose type depends on an argument's type)
passes every test and fails only on a GPU. This guard closes that gap:

1. run the tests with ``GRAMGAN_TRITON_SIGNATURES=DIR``: every launch signature is recorded
   (tests/ops/triton_signatures.py);
2. ``python -m tests.ops.aot_compile_kernels DIR`` (from the repository root, TRITON_INTERPRET unset)
   finds every ``@triton.jit`` kernel of gramgan.kernels (a jit function no other jit function calls),
   and compiles, down to a cubin for sm_90:
   * every recorded signature with its float scalars typed fp32 (Triton's JIT without an annotation,
     torch's mutation analysis of ``wrap_triton``) and typed fp64 (inductor, a JIT with a
     ``tl.float64`` annotation), with the kernel's first GPU autotuning config;
   * every GPU autotuning config, with the kernel's first recorded signature.
   A kernel with no recorded launch fails the guard: a new kernel or a new dtype path is compiled only
   if the tests launch it.

Prints each failure (Triton's message in full for a kernel's first one), then one line per kernel;
exits 0 when everything compiled, 1 when something failed or was never launched, 2 without recorded
signatures, 77 when this Triton cannot compile for the GPU here (the reason on the last line).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import os
import pkgutil
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

from tests.ops import triton_signatures

UNUSABLE = 77
NO_SIGNATURES = 2


# ------------------------------------------------------------------------------------------- discovery


def jit_function(obj: Any) -> Any | None:
    """The JIT (or interpreted) function under ``obj`` (through autotuners and heuristics), else None."""
    from triton.runtime.jit import KernelInterface

    while isinstance(obj, KernelInterface):
        inner = getattr(obj, "fn", None)
        if inspect.isfunction(inner):
            return obj
        obj = inner
    return None


def autotune_configs(obj: Any) -> list | None:
    """The configs of the autotuner wrapping ``obj``, or None when it is not autotuned."""
    while obj is not None and not inspect.isfunction(obj):
        if hasattr(obj, "configs"):
            return list(obj.configs)
        obj = getattr(obj, "fn", None)
    return None


def _resolve(node: ast.expr, scope: dict[str, Any]) -> Any:
    """The object a call's ``f`` or ``a.b.f`` names in ``scope``, or None."""
    if isinstance(node, ast.Name):
        return scope.get(node.id)
    if isinstance(node, ast.Attribute):
        return getattr(_resolve(node.value, scope), node.attr, None)
    return None


def called_jit_functions(fn: Any) -> set[Any]:
    """The Python functions of the jit functions that jit function ``fn`` calls."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn.fn)))
    called = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            callee = jit_function(_resolve(node.func, fn.fn.__globals__))
            if callee is not None:
                called.add(callee.fn)
    return called


def discover(package: str = triton_signatures.PACKAGE) -> dict[str, Any]:
    """``{module.function: kernel}`` for every kernel of ``package`` and its modules.

    Every ``@triton.jit`` function defined there is a kernel unless another jit function calls it
    (a device helper). The kernel is the module's object: the autotuner when it is autotuned.
    """
    root = importlib.import_module(package)
    modules = [root] + [
        importlib.import_module(info.name) for info in pkgutil.iter_modules(root.__path__, package + ".")
    ]
    defined: dict[Any, Any] = {}  # Python function -> the module-level object wrapping it
    for module in modules:
        for obj in vars(module).values():
            base = jit_function(obj)
            if base is not None and base.fn.__module__ == module.__name__:
                defined.setdefault(base.fn, obj)
    helpers = set().union(*(called_jit_functions(jit_function(obj)) for obj in defined.values()))
    return {triton_signatures.kernel_name(fn): obj for fn, obj in defined.items() if fn not in helpers}


# ------------------------------------------------------------------------------------------------ plan


@dataclass(frozen=True)
class Job:
    """One compilation: a kernel, its argument types and constexprs, and launch options."""

    kernel: str
    types: tuple[tuple[str, str], ...]
    constexprs: tuple[tuple[str, Any], ...]
    options: tuple[tuple[str, int], ...] = ()

    def describe(self) -> str:
        scalars = [f"{n}: {t}" for n, t in self.types if t != "constexpr" and not t.startswith("*")]
        pointers = sorted({t for _, t in self.types if t.startswith("*")})
        parts = [f"{n}={v}" for n, v in self.constexprs] + [f"{n}={v}" for n, v in self.options]
        return f"{' '.join(parts)} | pointers {','.join(pointers)} | {', '.join(scalars)}"


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    never_launched: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)


def _job(name: str, signature: dict[str, Any], config: Any | None) -> Job:
    constexprs = dict(signature["constexprs"])
    options: dict[str, int] = {}
    if config is not None:
        constexprs.update((k, v) for k, v in config.kwargs.items() if k in constexprs)
        options = {"num_warps": config.num_warps, "num_stages": config.num_stages}
    return Job(name, tuple(signature["types"].items()), tuple(constexprs.items()), tuple(options.items()))


def plan(kernels: dict[str, Any], signatures: list[dict[str, Any]]) -> Plan:
    """The deduplicated compilations that cover every signature and every GPU autotuning config."""
    result = Plan()
    by_kernel: dict[str, list[dict[str, Any]]] = {}
    for signature in signatures:
        by_kernel.setdefault(signature["kernel"], []).append(signature)
    jobs: dict[Job, None] = {}
    for name, kernel in sorted(kernels.items()):
        launched = by_kernel.get(name)
        if not launched:
            result.never_launched.append(name)
            continue
        params = list(inspect.signature(jit_function(kernel).fn).parameters)
        if any(list(s["types"]) != params for s in launched):
            result.stale.append(name)
            continue
        configs = autotune_configs(kernel) or [None]
        for signature in triton_signatures.variants(launched):
            jobs.setdefault(_job(name, signature, configs[0]))
        for config in configs[1:]:
            jobs.setdefault(_job(name, launched[0], config))
    result.jobs = list(jobs)
    return result


# --------------------------------------------------------------------------------------------- compile

_KERNELS: dict[str, Any] = {}  # filled before the worker processes fork
_TARGET: Any = None


def compile_job(job: Job) -> tuple[Job, float, str | None]:
    """Compiles one job down to a cubin; (job, seconds, None or the error)."""
    import triton
    from triton.compiler import ASTSource

    start = time.perf_counter()
    try:
        fn = jit_function(_KERNELS[job.kernel])
        source = ASTSource(fn, dict(job.types), constexprs=dict(job.constexprs))
        compiled = triton.compile(source, target=_TARGET, options=dict(job.options))
        if not compiled.asm.get("cubin"):
            raise RuntimeError("no cubin produced")
    except Exception as error:  # noqa: BLE001 - every failure is reported, then the guard fails
        return job, time.perf_counter() - start, f"{type(error).__name__}: {error}"
    return job, time.perf_counter() - start, None


def unusable_reason(arch: int) -> str | None:
    """Why this Triton cannot compile for ``sm_<arch>`` here, or None."""
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        return "TRITON_INTERPRET is set: the kernels would be interpreter functions"
    try:
        import triton
        from triton.backends import backends
        from triton.backends.compiler import GPUTarget
    except ImportError as error:
        return f"triton cannot be imported: {error}"
    if "nvidia" not in backends:
        return f"triton {triton.__version__} has no CUDA backend (backends: {sorted(backends)})"
    try:  # the CUDA backend needs its bundled ptxas; a broken install fails here, not in our kernels
        backends["nvidia"].compiler(GPUTarget("cuda", arch, 32)).parse_options({})
    except Exception as error:  # noqa: BLE001 - any failure means "cannot compile here"
        return f"triton {triton.__version__}'s CUDA backend is not usable here: {error!r}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("signatures", help="the folder the tests wrote (GRAMGAN_TRITON_SIGNATURES)")
    parser.add_argument("--arch", type=int, default=90, help="compute capability, 90 for sm_90 (default)")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)), help="parallel compilations")
    parser.add_argument("--package", default=triton_signatures.PACKAGE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    os.environ.pop("GRAMGAN_TRITON_AUTOTUNE", None)  # every GPU config, whatever the caller's environment
    reason = unusable_reason(args.arch)
    if reason:
        print(reason)
        return UNUSABLE
    import triton
    from triton.backends.compiler import GPUTarget

    signatures = triton_signatures.read(args.signatures)
    if not signatures:
        print(f"no recorded launch signatures in {args.signatures}: run the tests with "
              f"{triton_signatures.ENV}={args.signatures} first")  # fmt: skip
        return NO_SIGNATURES
    global _TARGET
    _TARGET = GPUTarget("cuda", args.arch, 32)
    _KERNELS.update(discover(args.package))
    work = plan(_KERNELS, signatures)

    start = time.perf_counter()
    failed: dict[str, int] = {}
    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}
    jobs = max(1, min(args.jobs, len(work.jobs)))
    with ProcessPoolExecutor(jobs, mp_context=get_context("fork")) as pool:
        for job, took, error in pool.map(compile_job, work.jobs):
            counts[job.kernel] = counts.get(job.kernel, 0) + 1
            seconds[job.kernel] = seconds.get(job.kernel, 0.0) + took
            if error:  # Triton's message in full for a kernel's first failure, its last line after that
                shown = error if job.kernel not in failed else error.strip().splitlines()[-1]
                failed[job.kernel] = failed.get(job.kernel, 0) + 1
                print(f"FAILED  {job.kernel} sm_{args.arch} [{job.describe()}]\n{textwrap.indent(shown, '    ')}")
    for name in sorted(counts):
        status = f"FAILED {failed[name]} of" if name in failed else "ok    "
        print(f"{status} {counts[name]:3d} compilations  {name} ({seconds[name]:.1f}s)")
    for name in work.never_launched:
        print(f"FAILED  {name}: never launched by the tests, so never compiled (test it, or call it from a kernel)")
    for name in work.stale:
        print(f"FAILED  {name}: recorded signatures do not match its parameters (rerun the tests)")
    bad = len(failed) + len(work.never_launched) + len(work.stale)
    print(
        f"triton {triton.__version__}, sm_{args.arch}: {len(_KERNELS) - bad} of {len(_KERNELS)} kernels ok; "
        f"{len(work.jobs)} compilations of {len(signatures)} recorded signatures, "
        f"{time.perf_counter() - start:.1f}s on {jobs} processes"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
