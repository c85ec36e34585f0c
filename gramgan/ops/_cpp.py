"""The ``cpu`` and ``cuda`` backends: the C++/CUDA extension ``gramgan._C`` wired into ``torch.library``.

The extension defines the operator schemas (``torch.ops.gramgan.*``, csrc/gramgan.cpp) and their CPU and
CUDA kernels. This module adds what torch needs around them, in Python: fake (meta) implementations, so
that ``torch.compile(fullgraph=True)`` traces through the ops, and autograd, whose backward recomputes
from the saved selection index (never a copy of the patches). Importing it never fails: without the
extension, both backends report why they are unavailable.
"""

from __future__ import annotations

import torch

from gramgan.ops._backend import LibraryBackend

try:
    from gramgan import _C
except ImportError as error:  # not built, or built against another torch
    _C = None
    _IMPORT_ERROR: ImportError | None = error
else:
    _IMPORT_ERROR = None

__all__ = ["CPU_BACKEND", "CUDA_BACKEND", "extension_error"]


def extension_error() -> str | None:
    """Why ``gramgan._C`` cannot be used, or ``None`` when it is loaded."""
    if _C is None:
        return f"the C++ extension gramgan._C is not built ({type(_IMPORT_ERROR).__name__}: {_IMPORT_ERROR})"
    return None


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _grid(x: torch.Tensor, k: int) -> tuple:
    return (x.shape[0], x.shape[2] // k, x.shape[3] // k)


def _register_fakes(namespace: str = "gramgan") -> None:
    """Shape-and-dtype functions of every op of ``namespace`` (the extension's schemas), for FakeTensor
    tracing (torch.compile, opcheck)."""
    lib = torch.library

    @lib.register_fake(f"{namespace}::patch_gram")
    def _(x, k):
        c = x.shape[1]
        return x.new_empty((*_grid(x, k), c, c), dtype=_acc_dtype(x.dtype))

    @lib.register_fake(f"{namespace}::patch_gram_backward")
    def _(grad, x, k):
        return torch.empty_like(x, memory_format=torch.contiguous_format)

    @lib.register_fake(f"{namespace}::gram_select_local")
    def _(sr, candidates, k, gt_weight):
        return sr.new_empty(_grid(sr, k), dtype=torch.long)

    @lib.register_fake(f"{namespace}::gram_select_global")
    def _(sr, candidates, k, gt_weight):
        return sr.new_empty(_grid(sr, k), dtype=torch.long)

    def texture_loss_fake(sr, candidates, k, gt_weight, target, criterion):
        grid = _grid(sr, k)
        return sr.new_empty(grid, dtype=_acc_dtype(sr.dtype)), sr.new_empty(grid, dtype=torch.long)

    def texture_loss_backward_fake(grad, sr, candidates, index, k, target, criterion):
        return torch.empty_like(sr, memory_format=torch.contiguous_format)

    for scope in ("local", "global"):
        lib.register_fake(f"{namespace}::texture_loss_{scope}", texture_loss_fake)
        lib.register_fake(f"{namespace}::texture_loss_{scope}_backward", texture_loss_backward_fake)

    @lib.register_fake(f"{namespace}::texture_mask")
    def _(x, k, threshold, offset_y, offset_x, mode, window):
        return x.new_empty((x.shape[0], 1, x.shape[2], x.shape[3]))

    @lib.register_fake(f"{namespace}::mask_pair")
    def _(sr, hr, k, threshold, offset_y, offset_x, mode, window):
        return (
            torch.empty_like(sr, memory_format=torch.contiguous_format),
            torch.empty_like(hr, memory_format=torch.contiguous_format),
            hr.new_empty((hr.shape[0], 1, hr.shape[2], hr.shape[3])),
        )


def _register_autograd(namespace: str = "gramgan") -> None:
    """Backward formulas of ``namespace``'s ops: gradients flow to ``sr`` / ``x`` only, recomputed from the
    saved index."""
    ops = getattr(torch.ops, namespace)

    def patch_gram_setup(ctx, inputs, output):
        x, k = inputs
        ctx.k = k
        ctx.save_for_backward(x)

    def patch_gram_backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return ops.patch_gram_backward(grad, x, ctx.k), None

    torch.library.register_autograd(f"{namespace}::patch_gram", patch_gram_backward, setup_context=patch_gram_setup)

    def local_setup(ctx, inputs, output):
        sr, candidates, k, _gt_weight, target, criterion = inputs
        ctx.args = (k, target, criterion)
        ctx.save_for_backward(sr, candidates, output[1])

    def local_backward(ctx, grad_loss, _grad_index):
        sr, candidates, index = ctx.saved_tensors
        grad_sr = None
        if ctx.needs_input_grad[0]:
            grad_sr = ops.texture_loss_local_backward(grad_loss, sr, candidates, index, *ctx.args)
        return grad_sr, None, None, None, None, None

    torch.library.register_autograd(f"{namespace}::texture_loss_local", local_backward, setup_context=local_setup)

    def global_setup(ctx, inputs, output):
        sr, candidates, k, _gt_weight, target, criterion = inputs
        ctx.args = (k, target, criterion)
        ctx.save_for_backward(sr, output[1], *candidates)

    def global_backward(ctx, grad_loss, _grad_index):
        sr, index, *candidates = ctx.saved_tensors
        grad_sr = None
        if ctx.needs_input_grad[0]:
            grad_sr = ops.texture_loss_global_backward(grad_loss, sr, candidates, index, *ctx.args)
        return grad_sr, [None] * len(candidates), None, None, None, None

    torch.library.register_autograd(f"{namespace}::texture_loss_global", global_backward, setup_context=global_setup)

    def mask_pair_setup(ctx, inputs, output):
        ctx.save_for_backward(output[2])

    def mask_pair_backward(ctx, grad_sr_masked, _grad_hr_masked, _grad_mask):
        (mask,) = ctx.saved_tensors
        grad_sr = grad_sr_masked * mask if ctx.needs_input_grad[0] else None
        return grad_sr, None, None, None, None, None, None, None

    torch.library.register_autograd(f"{namespace}::mask_pair", mask_pair_backward, setup_context=mask_pair_setup)


if _C is not None:
    _register_fakes()
    _register_autograd()


class ExtensionBackend(LibraryBackend):
    """A ``Backend`` (see ``_backend.py``) running the extension's kernels on one device type."""

    def __init__(self, name: str, device_type: str) -> None:
        self.name = name
        self.namespace = "gramgan"
        self.device_type = device_type

    def unavailable_reason(self, device: torch.device) -> str | None:
        missing = extension_error()
        if missing is not None:
            return missing
        if self.device_type == "cuda" and not _C.built_with_cuda():
            return "gramgan._C was built without CUDA (rebuild with FORCE_CUDA=1 and nvcc available)"
        if device.type != self.device_type:
            return f"tensor is on {device.type}, backend {self.name!r} needs a {self.device_type.upper()} tensor"
        return None


CPU_BACKEND = ExtensionBackend("cpu", "cpu")
CUDA_BACKEND = ExtensionBackend("cuda", "cuda")
