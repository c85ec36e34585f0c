"""The ``cuda_emulated`` test backend: the CUDA kernels of ``csrc/cuda/*.cu`` run on the CPU.

The same ``.cu`` sources compile as C++ against ``csrc/emulation/cuda_shim.h`` (the threads of a block
are real host threads that meet at ``__syncthreads``), with AddressSanitizer and UndefinedBehaviorSanitizer,
into a library that registers the kernels for CPU tensors under ``torch.ops.gramgan_emulated.*`` (schemas,
fake kernels and autograd from the shared contract, ``_contract.define_ops``). It exists
so that the CUDA code runs in CI without a GPU; it is slow and is not one of the user-facing backends
(``gramgan.ops.BACKEND_NAMES``). See docs/cuda-emulation.md.

The library needs a source checkout and a C++ compiler with the sanitizer runtimes, and it can only be
loaded into a process that was started with the ASan runtime preloaded (``sanitizer_environment``).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from gramgan.ops._backend import LibraryBackend
from gramgan.ops._contract import define_ops

NAME = "cuda_emulated"
NAMESPACE = "gramgan_emulated"

REPO_ROOT = Path(__file__).resolve().parents[2]
# Overridable so that tests/mutation/run_mutations.py can build mutated copies of csrc/.
CSRC_ENV = "GRAMGAN_EMULATION_CSRC"
BUILD_ENV = "GRAMGAN_EMULATION_BUILD"

SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-sanitize=vptr"]


def contraction_flags(machine: str | None = None, cpu_flags: str | None = None) -> list[str]:
    """Flags that make the host compiler contract ``a * b + c`` into one fused multiply-add, as nvcc does by
    default (``-fmad=true``), so that code whose result depends on contraction behaves as on a GPU.

    g++ contracts only when the target has an FMA instruction (always on aarch64; on x86-64 with ``-mfma``,
    given when this CPU has FMA, as every x86-64 CPU since 2013 has) and only in the pass that
    ``-fexpensive-optimizations`` enables (on from -O2; the emulation builds at -O1). On a CPU without FMA
    the emulation rounds every product separately and cannot see such differences.
    """
    machine = platform.machine() if machine is None else machine
    contract = ["-ffp-contract=fast", "-fexpensive-optimizations"]
    if machine in ("aarch64", "arm64"):
        return contract
    if machine in ("x86_64", "AMD64") and "fma" in (_cpu_flags() if cpu_flags is None else cpu_flags).split():
        return ["-mfma", *contract]
    return []


def _cpu_flags() -> str:
    """The feature flags of this CPU (``/proc/cpuinfo``), or ``""`` where they cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            return next((line.split(":", 1)[1] for line in cpuinfo if line.startswith("flags")), "")
    except OSError:
        return ""


CFLAGS = [
    "-O1", "-g1", "-fno-omit-frame-pointer", "-DGRAMGAN_CUDA_EMULATION", "-Wno-unknown-pragmas",
    *contraction_flags(), *SANITIZE,
]  # fmt: skip
# Leaks are not checked (Python and torch keep memory until exit); any other report ends the process.
ASAN_OPTIONS = "detect_leaks=0:halt_on_error=1:protect_shadow_gap=0:detect_odr_violation=0"
UBSAN_OPTIONS = "halt_on_error=1:print_stacktrace=1"

_state: dict = {}  # "path": the loaded .so


def csrc_dir() -> Path:
    """The csrc/ tree to build: ``$GRAMGAN_EMULATION_CSRC``, else the repository's."""
    return Path(os.environ.get(CSRC_ENV) or REPO_ROOT / "csrc").resolve()


def build_dir() -> Path:
    """Where the library is built: ``$GRAMGAN_EMULATION_BUILD``, else build/cuda_emulated/<torch>-<python> in
    the repository. One folder per torch and Python: a library built against one torch cannot load in
    another, and torch's build lock differs between versions (up to 2.13 a lock file left by a newer
    torch's build makes an older torch wait forever)."""
    if os.environ.get(BUILD_ENV):
        return Path(os.environ[BUILD_ENV]).resolve()
    version = f"torch{torch.__version__.split('+')[0]}-py{sys.version_info[0]}{sys.version_info[1]}"
    return (REPO_ROOT / "build" / "cuda_emulated" / version).resolve()


def sanitizer_runtime_loaded() -> bool:
    """Whether this process runs with the ASan runtime (without it, loading the library aborts the process)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return any("libasan" in line for line in maps)
    except OSError:
        return False


def _runtime_library(name: str) -> str:
    """Path of one of the C++ compiler's runtime libraries."""
    compiler = os.environ.get("CXX", "c++")
    try:
        path = subprocess.run(
            [compiler, f"-print-file-name={name}"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as error:
        raise RuntimeError(f"cannot ask the C++ compiler {compiler!r} for its {name}: {error}") from error
    if not os.path.isabs(path) or not os.path.exists(path):
        raise RuntimeError(f"the C++ compiler {compiler!r} has no {name} (needed by the emulated CUDA kernels)")
    return path


def sanitizer_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) plus what a process needs to load the library: the ASan
    runtime first, and libstdc++ with it (ASan intercepts C++ exceptions only when libstdc++ is there at start)."""
    env = dict(os.environ if base is None else base)
    preload = [_runtime_library("libasan.so"), _runtime_library("libstdc++.so.6"), env.get("LD_PRELOAD", "")]
    env["LD_PRELOAD"] = " ".join(filter(None, preload))
    env["ASAN_OPTIONS"] = ASAN_OPTIONS
    env["UBSAN_OPTIONS"] = UBSAN_OPTIONS
    return env


def _wrappers(csrc: Path, out: Path) -> list[str]:
    """The sources: one C++ file per source of csrc/cuda that includes it (so that the .cu files compile as
    C++), and the emulator with its self-test kernels (csrc/emulation)."""
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted((csrc / "cuda").glob("*.cu")) + sorted((csrc / "cuda").glob("*.cpp"))
    wrappers = []
    for source in sources:
        wrapper = out / f"{source.stem}_{source.suffix[1:]}.cpp"
        text = f'// Generated by gramgan/ops/_emulated.py: {source.name} compiled as C++.\n#include "{source}"\n'
        if not wrapper.exists() or wrapper.read_text() != text:  # unchanged files keep their mtime
            wrapper.write_text(text)
        wrappers.append(str(wrapper))
    return wrappers + [str(path) for path in sorted((csrc / "emulation").glob("*.cpp"))]


def load(verbose: bool = False) -> str:
    """Builds (when a source changed) and loads the emulated kernels once; returns the library's path."""
    if "path" in _state:
        return _state["path"]
    if not sanitizer_runtime_loaded():
        raise RuntimeError(
            "the emulated CUDA kernels are built with AddressSanitizer: start Python with the ASan runtime "
            "preloaded (gramgan.ops._emulated.sanitizer_environment(), or run `python -m pytest -m cuda_emulated`)"
        )
    from torch.utils.cpp_extension import load as load_extension

    csrc, out = csrc_dir(), build_dir()
    define_ops(NAMESPACE)
    path = load_extension(
        name="gramgan_emulated_kernels",
        sources=_wrappers(csrc, out / "sources"),
        extra_cflags=CFLAGS,
        extra_ldflags=SANITIZE,
        extra_include_paths=[str(csrc / "include"), str(csrc / "emulation"), str(csrc / "cuda")],
        build_directory=str(out),
        is_python_module=False,
        verbose=verbose,
    )
    _state["path"] = path
    return path


def _not_loaded() -> str | None:
    """Why the emulated kernels cannot run (not loaded into this process), or ``None``."""
    return None if "path" in _state else "the emulated CUDA kernels are not loaded (gramgan.ops._emulated.load())"


# Runs the emulated CUDA kernels on CPU tensors, once loaded.
EMULATED_BACKEND = LibraryBackend(NAME, NAMESPACE, "cpu", _not_loaded)
