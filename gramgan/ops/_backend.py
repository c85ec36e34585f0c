"""The contract every backend of ``gramgan.ops`` fulfils.

A backend is a table entry: an object that says whether it can run (``Backend``) and has one method per
forward op of the contract (``_contract.FORWARD_OPS``), named as the op, taking the op's arguments as its
schema in ``_contract.SCHEMAS`` lists them and returning its outputs less the ones kept only for the
backward (``_contract.public_outputs``): the signatures are written once, in ``SCHEMAS``. The public
functions in ``gramgan.ops`` validate their arguments (``_validate``), pick a backend (``_dispatch``), call
one of these methods and apply the reduction, so a backend never re-checks arguments and never reduces.

Conventions shared by all backends (see docs/ops.md):

* ``candidates`` is a ``(B, K, C, H, W)`` tensor for the ``*_local`` ops and a non-empty list of
  ``(B, C, H_j, W_j)`` tensors for the ``*_global`` ones (element 0 is the ground truth, same size as SR).
* The texture losses return the *per-patch* loss ``(B, H/k, W/k)`` in float32 (float64 for float64 input):
  the mean over the patch's C*C Gram entries (``target="gram"``) or its C*k*k pixel values
  (``target="pixel"``) of ``d**2`` (``criterion="mse"``) or ``|d|`` (``criterion="l1"``). They are
  differentiable in ``sr`` only.
* Selection: ``argmin`` of the score, ties to the lowest index, NaN scores never win (all NaN: index 0).
* Masks are 0/1 in the input's dtype, NaN where the cell's standard deviation is NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from gramgan.ops._contract import DIFFERENTIABLE_OPS, FORWARD_OPS, public_outputs


class Backend(Protocol):
    """What ``_dispatch`` needs from a backend, besides the forward ops (module docstring)."""

    name: str

    def unavailable_reason(self, device: torch.device) -> str | None:
        """``None`` when the backend can run on ``device``, else a sentence saying what is missing."""

    def unsupported_reason(self, k: int, channels: int) -> str | None:
        """``None`` when the backend's kernels cover patch size ``k`` and ``channels``, else why not."""


def _read_kernel_coverage() -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """The patch sizes k and channel counts C the fused kernels are written for, as ``gramgan._C`` exports its
    one definition (csrc/include/gramgan_common.h); ``None`` when the extension is not built (or too old)."""
    try:
        from gramgan import _C
    except ImportError:
        return None
    export = getattr(_C, "kernel_coverage", None)
    return None if export is None else export()


# Read once at import: a constant to torch.compile, which cannot trace into the extension.
KERNEL_COVERAGE = _read_kernel_coverage()


def kernel_unsupported_reason(k: int, channels: int) -> str | None:
    """The shared coverage rule of the fused kernels; anything else goes to the reference (docs/ops.md)."""
    if KERNEL_COVERAGE is None:
        return "the fused kernels' coverage rule comes from gramgan._C, which is not built (or too old: rebuild it)"
    patch_sizes, channel_counts = KERNEL_COVERAGE
    if k not in patch_sizes:
        return f"patch size k={k} is not one of the kernel sizes {patch_sizes}"
    if channels not in channel_counts:
        return f"C={channels} channels is not one of the kernel channel counts {channel_counts}"
    return None


class LibraryBackend:
    """A backend whose ops are ``torch.ops.<namespace>.*``, defined with the shared contract (``_contract``).

    The C++/CUDA extension (``gramgan``), the Triton kernels (``gramgan_triton``) and any further namespace
    register the same op names and signatures, so all of them are this one class: ``name`` is the backend's
    table name, ``device_type`` the device its kernels run on, and ``missing`` says (or ``None``) what keeps
    the kernels from loading at all. Its forward-op methods are made from ``FORWARD_OPS`` (below): each
    calls the namespace's op with the arguments as given, except that every tensor other than the one the
    gradient flows to (candidates, the sampling sources, the mask's source image) is detached, since it is
    a constant of the autograd graph.
    """

    def __init__(
        self, name: str, namespace: str, device_type: str, missing: Callable[[], str | None] = lambda: None
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.device_type = device_type
        self._missing = missing

    def unavailable_reason(self, device: torch.device) -> str | None:
        reason = self._missing()
        if reason is not None:
            return reason
        if device.type != self.device_type:
            return f"tensor is on {device.type}, backend {self.name!r} needs a {self.device_type.upper()} tensor"
        return None

    def unsupported_reason(self, k: int, channels: int) -> str | None:
        return kernel_unsupported_reason(k, channels)

    def _run(self, name: str, args: tuple):
        """``torch.ops.<namespace>.<name>`` on ``args`` with the constants detached; the public outputs."""
        first_constant = 1 if name in DIFFERENTIABLE_OPS else 0
        args = [_detached(arg) if i >= first_constant else arg for i, arg in enumerate(args)]
        outputs = getattr(getattr(torch.ops, self.namespace), name)(*args)
        kept = public_outputs(name)
        if kept is None:  # a single tensor
            return outputs
        return outputs[0] if kept == 1 else tuple(outputs[:kept])


def _detached(arg):
    """A tensor or a list of tensors detached; anything else unchanged."""
    if isinstance(arg, torch.Tensor):
        return arg.detach()
    if isinstance(arg, list):
        return [item.detach() for item in arg]
    return arg


def _forward_op_method(name: str) -> Callable:
    def method(self: LibraryBackend, *args):
        return self._run(name, args)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"``torch.ops.<namespace>.{name}``: see ``_contract.SCHEMAS[{name!r}]``."
    return method


for _name in FORWARD_OPS:
    setattr(LibraryBackend, _name, _forward_op_method(_name))
del _name
