"""The ``cpu`` and ``cuda`` backends: the C++/CUDA extension ``gramgan._C`` wired into ``torch.library``.

The ops ``torch.ops.gramgan.*`` are defined here from the shared contract (``_contract.define_ops``:
schemas and fake implementations for ``torch.compile(fullgraph=True)``); the extension registers their
CPU and CUDA kernels and their autograd, the contract's formulas written in C++ so that no forward or
backward through them enters Python (``TORCH_LIBRARY_IMPL`` in csrc/). Importing this module never
fails: without the extension, both backends report why they are unavailable.
"""

from __future__ import annotations

from gramgan.ops._backend import LibraryBackend
from gramgan.ops._contract import define_ops

NAMESPACE = "gramgan"

try:
    from gramgan import _C
except ImportError as error:  # not built, or built against another torch
    _C = None
    _IMPORT_ERROR: ImportError | None = error
else:
    _IMPORT_ERROR = None
    define_ops(NAMESPACE, autograd=False)  # csrc/autograd.cpp registers it

__all__ = ["CPU_BACKEND", "CUDA_BACKEND", "extension_error"]


def _probe_extension() -> str | None:
    """Why ``gramgan._C`` cannot be used, or ``None`` when it is loaded."""
    if _C is None:
        return f"the C++ extension gramgan._C is not built ({type(_IMPORT_ERROR).__name__}: {_IMPORT_ERROR})"
    return None


def _probe_cuda() -> str | None:
    """Why the extension's CUDA kernels cannot run at all, or ``None``: asks the extension itself."""
    missing = _probe_extension()
    if missing is None and not _C.built_with_cuda():
        return "gramgan._C was built without CUDA (rebuild with FORCE_CUDA=1 and nvcc available)"
    return missing


# Asked once, here at import: the dispatch reads these strings while torch.compile traces it, and dynamo
# cannot trace a call into the extension (a graph break, an error under fullgraph=True).
_EXTENSION_MISSING = _probe_extension()
_CUDA_MISSING = _probe_cuda()


def extension_error() -> str | None:
    """Why ``gramgan._C`` cannot be used, or ``None`` when it is loaded."""
    return _EXTENSION_MISSING


def _cuda_missing() -> str | None:
    """Why the extension's CUDA kernels cannot run at all, or ``None`` (asked once, at import)."""
    return _CUDA_MISSING


CPU_BACKEND = LibraryBackend("cpu", NAMESPACE, "cpu", extension_error)
CUDA_BACKEND = LibraryBackend("cuda", NAMESPACE, "cuda", _cuda_missing)
