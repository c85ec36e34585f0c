"""What this installation of gramgan can do here: ``python -m gramgan.info``.

Prints the versions (gramgan, Python, torch, Triton, CUDA), whether the C++/CUDA extension was built
with its CUDA part and for which GPU architectures, which op backends can run on the CPU and on the
GPU (and why not), where the VGG19 and LPIPS weights were found (nothing is downloaded), and the
thread count. pip hides the build's messages, so this is the way to check that a CUDA build
happened. Exits 0 (2 if given arguments: it takes none).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import gramgan
from gramgan._build_sources import source_digest

__all__ = ["BUILD_INFO_FILE", "build_record", "collect", "format_report", "main", "sources_state"]

# Written by setup.py next to the extension when it builds it: {"cuda": bool, "torch_cuda_arch_list": str | None,
# "why": str, "torch": str, "sources": the digest of csrc/ (gramgan/_build_sources.py) or None}.
BUILD_INFO_FILE = Path(__file__).with_name("_build_info.json")
# torchvision's AlexNet file, the backbone LPIPS (net="alex") loads from torch hub's cache.
ALEXNET_FILENAME = "alexnet-owt-7be5be79.pth"

Report = dict[str, dict[str, str]]


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    """gramgan, Python, torch (and the CUDA it was built with), Triton."""
    return {
        "gramgan": f"{gramgan.__version__} ({Path(gramgan.__file__).parent})",
        "python": f"{platform.python_version()} ({sys.executable})",
        "torch": torch.__version__,
        "torch CUDA": torch.version.cuda or "none (CPU-only torch build)",
        "triton": _version("triton"),
    }


def build_record() -> dict[str, Any] | None:
    """What setup.py wrote when it built the extension (``BUILD_INFO_FILE``), or None without one."""
    try:
        return json.loads(BUILD_INFO_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def sources_state(built_from: str | None, checkout: Path | None = None) -> str:
    """Whether the extension was built from the sources of the checkout it is loaded from (an editable
    install or an in-place build): csrc/ edited since the build means kernels older than the code."""
    current = source_digest(checkout or Path(gramgan.__file__).resolve().parent.parent)
    if current is None:
        return f"built from csrc/ {built_from}" if built_from else "not recorded by this build"
    if built_from is None:
        return f"not recorded by this build (csrc/ here is {current})"
    if built_from == current:
        return f"this checkout's csrc/ ({current})"
    return (
        f"STALE: built from csrc/ {built_from}, but csrc/ here is now {current}; "
        "rebuild (pip install --no-build-isolation -e .)"
    )


def extension() -> dict[str, str]:
    """Whether ``gramgan._C`` loads, holds CUDA code, for which architectures, and why the build chose so."""
    try:
        from gramgan import _C
    except ImportError as err:
        return {"gramgan._C": f"not loadable ({err}); reinstall with pip install --no-build-isolation -e ."}
    out = {"gramgan._C": str(Path(_C.__file__).name)}
    record = build_record() or {}
    out["sources"] = sources_state(record.get("sources"))
    why = f"; the build chose so: {record['why']}" if record.get("why") else ""
    if not _C.built_with_cuda():
        out["CUDA code"] = f"no (CPU kernels only{why}; rebuild with FORCE_CUDA=1 to add them)"
        return out
    out["CUDA code"] = f"yes ({record['why']})" if record.get("why") else "yes"
    out["built for"] = record.get("torch_cuda_arch_list") or "not recorded by this build (its TORCH_CUDA_ARCH_LIST)"
    out["torch built for"] = " ".join(torch.cuda.get_arch_list()) or "none"
    return out


def gpus() -> dict[str, str]:
    """The visible CUDA devices and their compute capability."""
    if not torch.cuda.is_available():
        return {"CUDA devices": "none visible"}
    out = {}
    for i in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(i)
        out[f"cuda:{i}"] = f"{torch.cuda.get_device_name(i)}, compute capability {major}.{minor}"
    return out


def backends() -> dict[str, str]:
    """Each op backend on the CPU and, when there is one, the GPU: "yes" or the reason it cannot run."""
    from gramgan.ops import backend_availability

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    out = {}
    for device in devices:
        for name, reason in backend_availability(device).items():
            out[f"{name} ({device} tensors)"] = "yes" if reason is None else f"no: {reason}"
    return out


def weights() -> dict[str, str]:
    """Where VGG19 (perceptual loss) and LPIPS (evaluation) weights are, looked up without downloading."""
    from gramgan.models.vgg import ENV_OFFLINE, ENV_WEIGHTS, VGGWeightsError, resolve_vgg19_weights

    out = {}
    try:
        out["VGG19"] = f"found: {resolve_vgg19_weights(download=False)}"
    except VGGWeightsError as err:
        lines = [line.strip() for line in str(err).splitlines()]
        places = [line.split(". ", 1)[1] for line in lines if line[:1].isdigit() and "download" not in line]
        out["VGG19"] = (
            f"not found ({'; '.join(places)}): set the config key loss.vgg_weights or ${ENV_WEIGHTS}, "
            f"or let training download it (unless ${ENV_OFFLINE}=1)"
        )
    spec = importlib.util.find_spec("lpips")
    if spec is None or spec.origin is None:
        out["LPIPS"] = "the lpips package is not installed (pip install lpips); evaluate skips LPIPS"
    else:
        linear = Path(spec.origin).parent / "weights" / "v0.1" / "alex.pth"
        out["LPIPS layers"] = f"found: {linear}" if linear.is_file() else f"missing: {linear}"
        alexnet = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILENAME
        out["LPIPS AlexNet"] = f"found: {alexnet}" if alexnet.is_file() else f"not in the cache ({alexnet})"
    return out


def threads() -> dict[str, str]:
    return {"torch threads": str(torch.get_num_threads()), "CPU cores": str(os.cpu_count())}


def collect() -> Report:
    """Everything the command prints, section by section."""
    return {
        "Versions": versions(),
        "Extension": extension(),
        "GPUs": gpus(),
        "Backends": backends(),
        "Weights": weights(),
        "Threads": threads(),
    }


def format_report(report: Report) -> str:
    lines = []
    for section, entries in report.items():
        lines.append(f"{section}:")
        width = max(len(key) for key in entries)
        lines.extend(f"  {key:<{width}}  {value}" for key, value in entries.items())
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: print the report; exit 0 (2 for unknown arguments)."""
    parser = argparse.ArgumentParser(
        prog="python -m gramgan.info",
        description="What this installation of gramgan can do: versions, the extension's CUDA part and "
        "architectures, which backends run here and why not, VGG19/LPIPS weights, threads.",
    )
    parser.parse_args(argv)
    print(format_report(collect()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
