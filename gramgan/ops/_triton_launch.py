"""Launch helpers shared by the Triton op wirings (``gramgan.ops._triton`` and ``_triton_sampled``).

Imports ``triton``: import this module only where triton is known to import (the wirings do so inside
their guarded import block).
"""

import contextlib

import torch
import triton


def device_guard(x: torch.Tensor):
    """Kernels launch on the current CUDA device: make it the tensor's (nothing to do without a GPU,
    e.g. when tracing with fake CUDA tensors)."""
    return torch.cuda.device(x.device) if x.is_cuda and torch.cuda.is_available() else contextlib.nullcontext()


def patches_grid(n: int):
    """Launch grid of a kernel that handles ``n`` patches, ``BLOCK_P`` per program."""
    return lambda meta: (triton.cdiv(n, meta["BLOCK_P"]),)


def patch_constexprs(x: torch.Tensor, k: int) -> dict:
    """The constexpr arguments every patch kernel takes (C specialised to an int under dynamic shapes);
    ``PP`` is the width of a Gram tile of unique channel pairs (kernels/_tiles.py)."""
    c = int(x.shape[1])
    return {"PATCH": k, "C": c, "PP": triton.next_power_of_2(c * (c + 1) // 2), "F64": x.dtype == torch.float64}
