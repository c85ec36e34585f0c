"""The contract every backend of ``gramgan.ops`` fulfils.

A backend is a table entry: an object with the five low-level functions below. The public functions in
``gramgan.ops`` validate their arguments (``_validate``), pick a backend (``_dispatch``), call one of these
functions and apply the reduction, so a backend never re-checks arguments and never reduces.

Conventions shared by all backends (see docs/ops.md):

* ``candidates`` is a ``(B, K, C, H, W)`` tensor for ``scope == "local"`` and a non-empty list of
  ``(B, C, H_j, W_j)`` tensors for ``scope == "global"`` (element 0 is the ground truth, same size as SR).
* ``texture_loss`` returns the *per-patch* loss ``(B, H/k, W/k)`` in float32 (float64 for float64 input):
  the mean over the patch's C*C Gram entries (``target="gram"``) or its C*k*k pixel values
  (``target="pixel"``) of ``d**2`` (``criterion="mse"``) or ``|d|`` (``criterion="l1"``). It is
  differentiable in ``sr`` only.
* Selection: ``argmin`` of the score, ties to the lowest index, NaN scores never win (all NaN: index 0).
* Masks are 0/1 in the input's dtype, NaN where the cell's standard deviation is NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, Union

import torch

Candidates = Union[torch.Tensor, "list[torch.Tensor]"]


class Backend(Protocol):
    """What ``_dispatch`` needs from a backend."""

    name: str

    def unavailable_reason(self, device: torch.device) -> str | None:
        """``None`` when the backend can run on ``device``, else a sentence saying what is missing."""

    def unsupported_reason(self, k: int, channels: int) -> str | None:
        """``None`` when the backend's kernels cover patch size ``k`` and ``channels``, else why not."""

    def patch_gram(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Per-patch Gram matrices ``(B, H/k, W/k, C, C)``, differentiable in ``x``."""

    def gram_select(
        self, sr: torch.Tensor, candidates: Candidates, k: int, scope: str, gt_weight: float
    ) -> torch.Tensor:
        """Index of the chosen candidate per SR patch, int64 ``(B, H/k, W/k)``."""

    def texture_loss(
        self,
        sr: torch.Tensor,
        candidates: Candidates,
        k: int,
        scope: str,
        gt_weight: float,
        target: str,
        criterion: str,
    ) -> torch.Tensor:
        """Per-patch texture loss ``(B, H/k, W/k)``, differentiable in ``sr`` only."""

    def texture_loss_sampled(
        self,
        sr: torch.Tensor,
        hr: torch.Tensor,
        hr_half: torch.Tensor,
        thetas: torch.Tensor,
        k: int,
        gt_weight: float,
        target: str,
        criterion: str,
    ) -> torch.Tensor:
        """Per-patch local texture loss against candidates sampled from ``hr``, ``hr_half`` and ``thetas``."""

    def downsample_half(self, x: torch.Tensor) -> torch.Tensor:
        """MATLAB's bicubic ``imresize(x, 0.5)``, ``(B, C, H/2, W/2)`` in the accumulation dtype."""

    def texture_mask(
        self, x: torch.Tensor, k: int, threshold: float, offset: tuple[int, int], mode: str, window: int
    ) -> torch.Tensor:
        """Texture mask ``(B, 1, H, W)`` of 0/1 in ``x``'s dtype."""

    def mask_pair(
        self,
        sr: torch.Tensor,
        hr: torch.Tensor,
        k: int,
        threshold: float,
        offset: tuple[int, int],
        mode: str,
        window: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sr * M, hr * M)`` with ``M`` the mask of ``hr``; differentiable in ``sr`` only."""


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
    the kernels from loading at all. Candidates and the mask's source image are constants of the autograd
    graph, hence detached.
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

    @property
    def _ops(self):
        return getattr(torch.ops, self.namespace)

    def patch_gram(self, x: torch.Tensor, k: int) -> torch.Tensor:
        return self._ops.patch_gram(x, k)

    def gram_select(
        self, sr: torch.Tensor, candidates: Candidates, k: int, scope: str, gt_weight: float
    ) -> torch.Tensor:
        if scope == "local":
            return self._ops.gram_select_local(sr.detach(), candidates.detach(), k, gt_weight)
        images = [image.detach() for image in candidates]
        return self._ops.gram_select_global(sr.detach(), images, k, gt_weight)

    def texture_loss(
        self,
        sr: torch.Tensor,
        candidates: Candidates,
        k: int,
        scope: str,
        gt_weight: float,
        target: str,
        criterion: str,
    ) -> torch.Tensor:
        if scope == "local":
            op, cands = self._ops.texture_loss_local, candidates.detach()
        else:
            op, cands = self._ops.texture_loss_global, [image.detach() for image in candidates]
        return op(sr, cands, k, gt_weight, target, criterion)[0]

    def texture_loss_sampled(
        self,
        sr: torch.Tensor,
        hr: torch.Tensor,
        hr_half: torch.Tensor,
        thetas: torch.Tensor,
        k: int,
        gt_weight: float,
        target: str,
        criterion: str,
    ) -> torch.Tensor:
        sources = (hr.detach(), hr_half.detach(), thetas.detach())
        return self._ops.texture_loss_sampled(sr, *sources, k, gt_weight, target, criterion)[0]

    def downsample_half(self, x: torch.Tensor) -> torch.Tensor:
        return self._ops.downsample_half(x.detach())

    def texture_mask(
        self, x: torch.Tensor, k: int, threshold: float, offset: tuple[int, int], mode: str, window: int
    ) -> torch.Tensor:
        return self._ops.texture_mask(x.detach(), k, threshold, offset[0], offset[1], mode, window)

    def mask_pair(
        self,
        sr: torch.Tensor,
        hr: torch.Tensor,
        k: int,
        threshold: float,
        offset: tuple[int, int],
        mode: str,
        window: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self._ops.mask_pair(sr, hr.detach(), k, threshold, offset[0], offset[1], mode, window)
