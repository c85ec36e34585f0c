"""What a benchmark ran on: device and CPU names, versions, thread count, git commit."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
from pathlib import Path
from typing import Any

import torch


def _repo_root() -> Path:
    """The checkout that holds this package (it has benchmarks/), else the current folder: the benchmark
    scripts run from a checkout's root, while gramgan itself may be installed elsewhere."""
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / "benchmarks").is_dir() else Path.cwd()


REPO_ROOT = _repo_root()


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown-cpu"


def cpu_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def device_name(device: torch.device) -> str:
    """Human-readable device name: the GPU's name, or the CPU model and core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} ({cpu_cores()} cores)"


def slug(text: str) -> str:
    """Lower case, runs of anything but letters and digits become one '-'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def device_slug(device: torch.device) -> str:
    """Folder-name form of the device: ``nvidia-h100-80gb-hbm3`` or ``cpu-amd-epyc-2core``."""
    if device.type == "cuda":
        return slug(torch.cuda.get_device_name(device))
    return f"cpu-{slug(cpu_model())}-{cpu_cores()}core"


def today() -> str:
    """UTC date, YYYY-MM-DD."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")


def environment(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on: device, versions, threads, date, git commit."""
    info: dict[str, Any] = {
        "device": device_name(device),
        "device_slug": device_slug(device),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cpu": cpu_model(),
        "cpu_cores": cpu_cores(),
        "torch_threads": torch.get_num_threads(),
        "git_commit": _git_commit(),
        "extension_built": _extension_state(),
    }
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu_memory_GiB"] = round(props.total_memory / 2**30, 1)
        info["gpu_multiprocessors"] = props.multi_processor_count
        info["gpu_capability"] = f"{props.major}.{props.minor}"
    return info


def _git_commit() -> str | None:
    head = REPO_ROOT / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (REPO_ROOT / ".git" / ref[5:]).read_text().strip()[:12]
        return ref[:12]
    except OSError:
        return None


def _extension_state() -> str:
    try:
        import gramgan._C as ext
    except Exception as error:  # noqa: BLE001 - any import failure means "not usable"
        return f"not importable ({type(error).__name__}: {error})"
    probe = getattr(ext, "built_with_cuda", None) or getattr(ext, "has_cuda", None)
    return f"built (CUDA part: {bool(probe())})" if callable(probe) else "built"
