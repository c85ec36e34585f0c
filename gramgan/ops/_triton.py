"""The ``triton`` backend: ``torch.library`` wiring of the Triton kernels in ``gramgan.kernels``.

Each op is a ``torch.library.triton_op`` in the ``gramgan_triton`` namespace whose body only allocates
outputs and launches kernels through ``wrap_triton``, so ``torch.compile`` sees the kernels themselves
(no graph break) and the fake implementation is the body run on fake tensors. Autograd is registered
with ``register_autograd`` and saves the least: the inputs it already holds and the selected index.

The backend runs on CUDA tensors, and on CPU tensors when ``TRITON_INTERPRET=1`` was set before the
kernels were first imported (Triton's interpreter runs the kernels exactly as written, slowly).
Importing this module never fails: without a working triton (or ``gramgan.kernels``) the backend
reports why it is unavailable.

Arguments are not re-checked here: ``gramgan.ops._validate`` is the one validation layer, so calling
``torch.ops.gramgan_triton.*`` directly with inconsistent shapes is unsupported.
"""

import os
from collections.abc import Callable

import torch

from gramgan._resize_taps import half_size_taps
from gramgan.ops._backend import LibraryBackend
from gramgan.ops._contract import SCHEMAS, accumulation_dtype, patch_grid, register_contract, residual_shape

NAMESPACE = "gramgan_triton"

_IMPORT_ERROR: str | None = None
try:
    import triton
    from torch.library import triton_op, wrap_triton
except Exception as error:  # triton missing or broken (any error): the backend is unavailable, import still works
    _IMPORT_ERROR = f"triton could not be imported ({type(error).__name__}: {error})"

if _IMPORT_ERROR is None:
    try:
        from gramgan import kernels
        from gramgan.kernels.gram import patch_gram_bwd_kernel, patch_gram_fwd_kernel
        from gramgan.kernels.resize import downsample_half_kernel
        from gramgan.kernels.texture_loss import (
            LOSS_GRAM,
            LOSS_NONE,
            LOSS_PIXEL,
            global_select_kernel,
            local_select_kernel,
            loss_at_index_kernel,
            residual_bwd_kernel,
            texture_bwd_kernel,
        )
        from gramgan.kernels.texture_mask import (
            MODE_GRAD,
            MODE_MASK,
            MODE_PAIR,
            luminance_plane_kernel,
            mask_grid_kernel,
            sliding_cols_kernel,
            sliding_rows_kernel,
        )
        from gramgan.ops._triton_launch import device_guard, patch_constexprs, patches_grid
        from gramgan.ops._triton_sampled import KERNELS as _SAMPLED_KERNELS
    except Exception as error:  # e.g. a broken install of gramgan.kernels
        _IMPORT_ERROR = f"the Triton kernels (gramgan.kernels) failed to import ({type(error).__name__}: {error})"


# ----------------------------------------------------------------------------------------------- helpers


def _launch_gram(
    x: torch.Tensor, out: torch.Tensor, k: int, out_sb: int, out_sp: int, out_sq: int, row0: int, pairs: bool
) -> None:
    """Grams of every patch of ``x`` (its C*C entries, or its unique pairs) into rows ``row0 + n`` of ``out``:
    entry ``q`` of patch ``n`` of image ``b`` at ``b * out_sb + (row0 + n) * out_sp + q * out_sq``."""
    b, c, h, w = x.shape
    n = (h // k) * (w // k)
    constexprs = patch_constexprs(x, k)
    pairs_width = constexprs.pop("PP")
    width = pairs_width if pairs else triton.next_power_of_2(c * c)
    wrap_triton(patch_gram_fwd_kernel)[patches_grid(b * n)](
        x, *x.stride(), out, out_sb, out_sp, out_sq, row0, b * n, n, w // k,
        WIDTH=width, PAIRS=pairs, **constexprs,
    )  # fmt: skip


def _levels(candidates: list[torch.Tensor], k: int) -> list[tuple[int, int, int]]:
    """(first bank row, patch count, patches per row) of each global candidate image."""
    rows, start = [], 0
    for image in candidates:
        hp, wp = image.shape[-2] // k, image.shape[-1] // k
        rows.append((start, hp * wp, wp))
        start += hp * wp
    return rows


# -------------------------------------------------------------------------------------------- patch_gram


def _patch_gram(x: torch.Tensor, k: int) -> torch.Tensor:
    b, c, h, w = x.shape
    out = torch.empty((b, h // k, w // k, c, c), dtype=accumulation_dtype(x.dtype), device=x.device)
    with device_guard(x):
        _launch_gram(x, out, k, (h // k) * (w // k) * c * c, c * c, 1, 0, False)
    return out


def _patch_gram_backward(grad: torch.Tensor, x: torch.Tensor, k: int) -> torch.Tensor:
    b, c, h, w = x.shape
    grad = grad.contiguous()
    dx = torch.empty((b, c, h, w), dtype=x.dtype, device=x.device)
    n = (h // k) * (w // k)
    with device_guard(x):
        wrap_triton(patch_gram_bwd_kernel)[patches_grid(b * n)](
            x, *x.stride(), grad, dx, *dx.stride(), b * n, n, w // k, **patch_constexprs(x, k)
        )
    return dx


def _downsample_half(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    out = torch.empty((b, c, h // 2, w // 2), dtype=accumulation_dtype(x.dtype), device=x.device)
    planes = x.reshape(b * c, h, w)  # a view for the usual layouts; a copy otherwise
    n = out.numel()
    with device_guard(x):
        weights = _half_weights(x.device, out.dtype)
        wrap_triton(downsample_half_kernel)[lambda meta: (triton.cdiv(n, meta["BLOCK"]),)](
            planes, *planes.stride(), weights, out, n, h, w, F64=out.dtype == torch.float64
        )
    return out


def _half_weights(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The eight taps of imresize(x, 0.5), from the one definition in gramgan._resize_taps."""
    return torch.tensor(half_size_taps(), dtype=dtype, device=device)


# ------------------------------------------------------------------------------------- selection & loss


def _launch_local(
    sr: torch.Tensor, candidates: torch.Tensor, index: torch.Tensor, loss: torch.Tensor, residual: torch.Tensor,
    k: int, gt_weight: float, mode: int, l1: bool,
) -> None:  # fmt: skip
    b, _, h, w = sr.shape
    n = (h // k) * (w // k)
    wrap_triton(local_select_kernel)[patches_grid(b * n)](
        sr, *sr.stride(), candidates, *candidates.stride(), index, loss, residual,
        b * n, n, w // k, candidates.shape[1], gt_weight,
        USE_GT=gt_weight != 0.0, LOSS=mode, L1=l1, **patch_constexprs(sr, k),
    )  # fmt: skip


def _select_local(sr: torch.Tensor, candidates: torch.Tensor, k: int, gt_weight: float) -> torch.Tensor:
    index = torch.empty(patch_grid(sr, k), dtype=torch.int64, device=sr.device)
    with device_guard(sr):
        _launch_local(sr, candidates, index, index, index, k, gt_weight, LOSS_NONE, False)
    return index


def _texture_loss_local(
    sr: torch.Tensor, candidates: torch.Tensor, k: int, gt_weight: float, target: str, criterion: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    index = torch.empty(patch_grid(sr, k), dtype=torch.int64, device=sr.device)
    loss = torch.empty(patch_grid(sr, k), dtype=accumulation_dtype(sr.dtype), device=sr.device)
    residual = torch.empty(residual_shape(sr, k, target), dtype=loss.dtype, device=sr.device)
    mode = LOSS_GRAM if target == "gram" else LOSS_PIXEL
    with device_guard(sr):
        _launch_local(sr, candidates, index, loss, residual, k, gt_weight, mode, criterion == "l1")
    return loss, index, residual


def _launch_global_select(
    sr: torch.Tensor, candidates: list[torch.Tensor], index: torch.Tensor, loss: torch.Tensor,
    k: int, gt_weight: float, gram_loss: bool, l1: bool,
) -> None:  # fmt: skip
    """Gram pairs of the SR patches (B, P, N) and of the candidates, the bank (B, P, M), both pair-major;
    then the running argmin (and the Gram-target loss)."""
    b, c, h, w = sr.shape
    pairs = c * (c + 1) // 2
    levels = _levels(candidates, k)
    m = sum(count for _, count, _ in levels)
    n = (h // k) * (w // k)
    bank = torch.empty((b, pairs, m), dtype=accumulation_dtype(sr.dtype), device=sr.device)
    for image, (start, _, _) in zip(candidates, levels):
        _launch_gram(image, bank, k, pairs * m, 1, m, start, True)
    sr_pairs = torch.empty((b, pairs, n), dtype=bank.dtype, device=sr.device)
    _launch_gram(sr, sr_pairs, k, pairs * n, 1, n, 0, True)
    wrap_triton(global_select_kernel)[lambda meta: (triton.cdiv(n, meta["BLOCK_P"]), b)](
        sr_pairs, bank, index, loss, n, m, gt_weight,
        C=c, F64=bank.dtype == torch.float64, USE_GT=gt_weight != 0.0, GRAM_LOSS=gram_loss, L1=l1,
    )  # fmt: skip


def _select_global(sr: torch.Tensor, candidates: list[torch.Tensor], k: int, gt_weight: float) -> torch.Tensor:
    index = torch.empty(patch_grid(sr, k), dtype=torch.int64, device=sr.device)
    with device_guard(sr):
        _launch_global_select(sr, candidates, index, index, k, gt_weight, False, False)
    return index


def _texture_loss_global(
    sr: torch.Tensor, candidates: list[torch.Tensor], k: int, gt_weight: float, target: str, criterion: str
) -> tuple[torch.Tensor, torch.Tensor]:
    b, _, h, w = sr.shape
    index = torch.empty(patch_grid(sr, k), dtype=torch.int64, device=sr.device)
    loss = torch.empty(patch_grid(sr, k), dtype=accumulation_dtype(sr.dtype), device=sr.device)
    l1 = criterion == "l1"
    with device_guard(sr):
        _launch_global_select(sr, candidates, index, loss, k, gt_weight, target == "gram", l1)
        if target == "pixel":  # the chosen pixels live in one of the candidate images: one launch each
            n = (h // k) * (w // k)
            for image, (start, count, wp_c) in zip(candidates, _levels(candidates, k)):
                wrap_triton(loss_at_index_kernel)[patches_grid(b * n)](
                    sr, *sr.stride(), image, image.stride(0), *image.stride()[1:], index, loss,
                    b * n, n, w // k, start, count, wp_c,
                    TARGET_GRAM=False, L1=l1, **patch_constexprs(sr, k),
                )  # fmt: skip
    return loss, index


def _launch_global_backward(
    grad: torch.Tensor, sr: torch.Tensor, image: torch.Tensor, index: torch.Tensor, dx: torch.Tensor,
    k: int, target: str, criterion: str, start: int, count: int, wp_c: int,
) -> None:  # fmt: skip
    b, _, h, w = sr.shape
    n = (h // k) * (w // k)
    wrap_triton(texture_bwd_kernel)[patches_grid(b * n)](
        sr, *sr.stride(), image, *image.stride(), index, grad, dx, *dx.stride(),
        b * n, n, w // k, start, count, wp_c,
        TARGET_GRAM=target == "gram", L1=criterion == "l1", **patch_constexprs(sr, k),
    )  # fmt: skip


def _texture_loss_residual_backward(
    grad: torch.Tensor, sr: torch.Tensor, residual: torch.Tensor, k: int, target: str, criterion: str
) -> torch.Tensor:
    b, _, h, w = sr.shape
    n = (h // k) * (w // k)
    dx = torch.empty(sr.shape, dtype=sr.dtype, device=sr.device)
    with device_guard(sr):
        wrap_triton(residual_bwd_kernel)[patches_grid(b * n)](
            sr, *sr.stride(), residual.contiguous(), grad.contiguous(), dx, *dx.stride(), b * n, n, w // k,
            TARGET_GRAM=target == "gram", L1=criterion == "l1", **patch_constexprs(sr, k),
        )  # fmt: skip
    return dx


def _texture_loss_global_backward(
    grad: torch.Tensor, sr: torch.Tensor, candidates: list[torch.Tensor], index: torch.Tensor,
    k: int, target: str, criterion: str,
) -> torch.Tensor:  # fmt: skip
    dx = torch.empty(sr.shape, dtype=sr.dtype, device=sr.device)
    grad = grad.contiguous()
    with device_guard(sr):  # each patch is written by the launch of the image holding its choice
        for image, (start, count, wp_c) in zip(candidates, _levels(candidates, k)):
            _launch_global_backward(grad, sr, image, index, dx, k, target, criterion, start, count, wp_c)
    return dx


# ------------------------------------------------------------------------------------------ texture mask


def _launch_mask(
    x: torch.Tensor, a: torch.Tensor, out1: torch.Tensor, out2: torch.Tensor,
    k: int, threshold: float, oy: int, ox: int, mode: str, window: int, kind: int,
) -> None:  # fmt: skip
    """Mask of ``x`` and the outputs of ``kind`` (see ``kernels.texture_mask``)."""
    b, c, h, w = x.shape
    c, f64 = int(c), x.dtype == torch.float64
    tensors = (*(x, *x.stride()), *(a, *a.stride()), *(out1, *out1.stride()), *(out2, *out2.stride()))
    if mode == "grid":
        hc, wc = triton.cdiv(h + oy, k), triton.cdiv(w + ox, k)
        wrap_triton(mask_grid_kernel)[patches_grid(b * hc * wc)](
            *tensors, b * hc * wc, hc * wc, wc, h, w, oy, ox, threshold, PATCH=k, C=c, F64=f64, MODE=kind
        )
        return
    # Sliding statistics are float64 whatever x's dtype (see kernels.texture_mask).
    scratch = torch.empty((3, b, h, w), dtype=torch.float64, device=x.device)  # luminance, row sums of Y, Y^2
    radius, n, plane = window // 2, window * window, b * h * w
    wrap_triton(luminance_plane_kernel)[lambda meta: (triton.cdiv(h * w, meta["BLOCK_P"]), b)](
        x, *x.stride(), scratch, h, w, C=c, F64=True
    )
    wrap_triton(sliding_rows_kernel)[lambda meta: (triton.cdiv(b * h, meta["BLOCK"]), triton.cdiv(w, meta["SEG"]))](
        scratch, plane, b * h, w, radius, F64=True
    )
    wrap_triton(sliding_cols_kernel)[lambda meta: (triton.cdiv(b * w, meta["BLOCK"]), triton.cdiv(h, meta["SEG"]))](
        scratch, plane, *tensors, b * w, h, w, radius, 1.0 / n, 1.0 / (n - 1) if n > 1 else 0.0, threshold,
        C=c, F64=True, IO64=f64, MODE=kind,
    )  # fmt: skip


def _texture_mask(x: torch.Tensor, k: int, threshold: float, oy: int, ox: int, mode: str, window: int) -> torch.Tensor:
    b, _, h, w = x.shape
    mask = torch.empty((b, 1, h, w), dtype=x.dtype, device=x.device)
    with device_guard(x):
        _launch_mask(x, mask, mask, mask, k, threshold, oy, ox, mode, window, MODE_MASK)
    return mask


def _mask_pair(
    sr: torch.Tensor, hr: torch.Tensor, k: int, threshold: float, oy: int, ox: int, mode: str, window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    sr_m = torch.empty(sr.shape, dtype=sr.dtype, device=sr.device)
    hr_m = torch.empty(hr.shape, dtype=hr.dtype, device=hr.device)
    with device_guard(hr):
        _launch_mask(hr, sr, sr_m, hr_m, k, threshold, oy, ox, mode, window, MODE_PAIR)
    return sr_m, hr_m


def _mask_pair_backward(
    grad: torch.Tensor, hr: torch.Tensor, k: int, threshold: float, oy: int, ox: int, mode: str, window: int
) -> torch.Tensor:
    dx = torch.empty(hr.shape, dtype=hr.dtype, device=hr.device)
    with device_guard(hr):
        _launch_mask(hr, grad.to(hr.dtype), dx, dx, k, threshold, oy, ox, mode, window, MODE_GRAD)
    return dx


# ------------------------------------------------------------------------------------------ registration


_KERNELS = {
    "patch_gram": _patch_gram,
    "patch_gram_backward": _patch_gram_backward,
    "gram_select_local": _select_local,
    "gram_select_global": _select_global,
    "texture_loss_local": _texture_loss_local,
    "texture_loss_global": _texture_loss_global,
    "texture_loss_residual_backward": _texture_loss_residual_backward,
    "texture_loss_global_backward": _texture_loss_global_backward,
    "texture_mask": _texture_mask,
    "mask_pair": _mask_pair,
    "mask_pair_backward": _mask_pair_backward,
    "downsample_half": _downsample_half,
}


def _register() -> None:
    """Defines the ``gramgan_triton::*`` ops with the shared schemas, fakes and autograd (``_contract``).

    A ``triton_op``'s own fake implementation is its body run on fake tensors, which on a GPU records the
    kernels without running them (so inductor sees them); the interpreter would run them on data-less
    tensors instead, so under ``TRITON_INTERPRET=1`` the contract's shape-only fakes replace it. With
    those, ``torch.compile(backend="eager")`` traces the ops on the CPU (the kernels run eagerly at call
    time); compilers that trace into the body (aot_eager, inductor) need a GPU.
    """
    for name, fn in {**_KERNELS, **_SAMPLED_KERNELS}.items():
        _triton_op_with_schema(f"{NAMESPACE}::{name}", fn, SCHEMAS[name])
    register_contract(NAMESPACE, fakes=kernels.INTERPRET)


def _triton_op_with_schema(qualname: str, fn: Callable, schema: str) -> None:
    """``triton_op`` with the contract's schema, on every supported torch (2.11 to 2.14).

    torch 2.14's ``triton_op`` uses its ``schema=`` argument; torch 2.11's accepts it and ignores it: it
    calls ``torch._library.triton.infer_schema(fn)`` unconditionally, which types every ``int`` as ``SymInt``
    and drops the outputs' names, so the Triton ops would not have the contract's signatures. There is no
    public way around that in 2.11: annotations cannot say ``int`` or name outputs, and the public
    alternatives that take a schema (``torch.library.custom_op``, ``Library.define``) make an opaque op
    whose Triton kernels inductor can no longer see, the reason ``triton_op`` is used at all. So, for this one
    call, the module's ``infer_schema`` answers with the contract's schema (on 2.14 it is not called);
    test_contract.py checks the resulting signatures on whatever torch runs the tests.
    """
    import torch._library.triton as triton_op_module

    inferred = getattr(triton_op_module, "infer_schema", None)
    triton_op_module.infer_schema = lambda *args, **kwargs: schema
    try:
        triton_op(qualname, fn, mutates_args=(), schema=schema)
    finally:
        if inferred is None:
            del triton_op_module.infer_schema
        else:
            triton_op_module.infer_schema = inferred


if _IMPORT_ERROR is None:
    try:
        _register()
    except Exception as error:  # e.g. a torch without triton_op: report it instead of failing the import
        _IMPORT_ERROR = f"the gramgan_triton ops could not be registered ({type(error).__name__}: {error})"


# ----------------------------------------------------------------------------------------------- backend


class TritonBackend(LibraryBackend):
    """The ``triton`` table entry of ``gramgan.ops``: CUDA tensors, and CPU ones under the interpreter."""

    def __init__(self) -> None:
        super().__init__("triton", NAMESPACE, "cuda")

    def unavailable_reason(self, device: torch.device) -> str | None:
        if _IMPORT_ERROR is not None:
            return _IMPORT_ERROR
        if device.type == "cuda":
            return None
        if device.type == "cpu":
            if kernels.INTERPRET:
                return None
            if os.environ.get("TRITON_INTERPRET", "") not in ("", "0"):
                return (
                    "TRITON_INTERPRET was set after the Triton kernels were loaded; set it before Python "
                    "starts to run them on the CPU interpreter"
                )
        return f"backend 'triton' needs a CUDA tensor (or TRITON_INTERPRET=1 for the CPU interpreter), got {device}"


TRITON_BACKEND = TritonBackend()
