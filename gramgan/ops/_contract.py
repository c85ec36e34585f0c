"""The op contract shared by every ``torch.library`` namespace of gramgan's fused kernels.

One table of operator schemas (``SCHEMAS``), one set of fake (shape-and-dtype) implementations and one
set of autograd formulas serve every namespace that holds the fused ops: ``gramgan`` (the C++/CUDA
extension, whose kernels csrc/ registers with ``TORCH_LIBRARY_IMPL``), ``gramgan_triton`` (the Triton
kernels, defined as ``triton_op`` with these schemas) and any further namespace, such as one for the
host emulation of the CUDA kernels, which needs nothing more than ``define_ops(namespace)`` and its
kernels. The same op therefore has the same signature everywhere (see docs/ops.md).

Autograd: gradients flow to ``sr`` / ``x`` only. The local and sampled texture losses return, besides
the loss and the index, the *residual* of each patch against its chosen candidate (``G(e) - G(c*)`` for
the Gram target, ``e - c*`` for the pixel target): their backward reads SR and that residual only, so the
candidates (or their sources) are neither kept for nor read by it. The global texture loss's backward
re-reads the chosen candidate patches in place from the saved index. The masked pair's backward
recomputes the mask of ``hr``.

Second-order gradients (docs/ops.md): the masked pair's gradient ``grad * M(hr)`` is differentiable again.
The other ops' fused backward kernels are not: under ``create_graph=True`` their gradient is marked so that
a second backward through it raises (:func:`refuse_second_backward`) rather than taking it for a constant.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

_MASK_ARGS = "int k, float threshold, int offset_y, int offset_x, str mode, int window"

# Every op of every namespace: name -> schema without the name (torch.library's schema syntax).
SCHEMAS: dict[str, str] = {
    # (B, C, H, W) -> (B, H/k, W/k, C, C) Gram of every k x k patch, in the accumulation dtype.
    "patch_gram": "(Tensor x, int k) -> Tensor",
    "patch_gram_backward": "(Tensor grad, Tensor x, int k) -> Tensor",
    # Index of the chosen candidate per SR patch, int64 (B, H/k, W/k).
    "gram_select_local": "(Tensor sr, Tensor candidates, int k, float gt_weight) -> Tensor",
    "gram_select_global": "(Tensor sr, Tensor[] candidates, int k, float gt_weight) -> Tensor",
    # Per-patch texture loss (B, H/k, W/k), the selected index and the residual against the chosen
    # candidate, in the accumulation dtype (residual_shape): what the backward reads besides SR.
    "texture_loss_local": (
        "(Tensor sr, Tensor candidates, int k, float gt_weight, str target, str criterion)"
        " -> (Tensor loss, Tensor index, Tensor residual)"
    ),
    # Gradient with respect to SR of sum(grad * loss) from the forward's residual (local and sampled scope).
    "texture_loss_residual_backward": (
        "(Tensor grad, Tensor sr, Tensor residual, int k, str target, str criterion) -> Tensor"
    ),
    "texture_loss_global": (
        "(Tensor sr, Tensor[] candidates, int k, float gt_weight, str target, str criterion)"
        " -> (Tensor loss, Tensor index)"
    ),
    "texture_loss_global_backward": (
        "(Tensor grad, Tensor sr, Tensor[] candidates, Tensor index, int k, str target, str criterion) -> Tensor"
    ),
    # The local texture loss with its candidates sampled in the kernel (docs/ops.md, "Sampled candidates"):
    # candidate 0 is hr, 1 the re-tiled hr_half (B, C, H/2, W/2), 2 + j the warp of hr by thetas[:, j]
    # (B, J, 2, 3), bilinear, reflection padding, align_corners=False. Returns the residual as the local op.
    "texture_loss_sampled": (
        "(Tensor sr, Tensor hr, Tensor hr_half, Tensor thetas, int k, float gt_weight, str target, str criterion)"
        " -> (Tensor loss, Tensor index, Tensor residual)"
    ),
    # MATLAB's bicubic imresize(x, 0.5), antialiased (B, C, H/2, W/2), in the accumulation dtype; no gradient.
    "downsample_half": "(Tensor x) -> Tensor",
    # 0/1 (NaN for a NaN std) mask (B, 1, H, W) in x's dtype; mask_pair returns sr * M and hr * M.
    "texture_mask": f"(Tensor x, {_MASK_ARGS}) -> Tensor",
    "mask_pair": f"(Tensor sr, Tensor hr, {_MASK_ARGS}) -> (Tensor sr_masked, Tensor hr_masked)",
    # grad * M(hr): the gradient of sr_masked with respect to sr.
    "mask_pair_backward": f"(Tensor grad, Tensor hr, {_MASK_ARGS}) -> Tensor",
}


def schema(name: str) -> str:
    """The full schema of op ``name`` (without a namespace), e.g. ``"patch_gram(Tensor x, int k) -> Tensor"``."""
    return name + SCHEMAS[name]


# The ops a backend runs (a method each, named as the op); the *_backward ops serve the autograd formulas.
FORWARD_OPS: tuple[str, ...] = tuple(name for name in SCHEMAS if not name.endswith("_backward"))
# Outputs an op returns only for its backward (saved by the autograd formulas, never shown to a caller).
BACKWARD_ONLY_OUTPUTS = ("index", "residual")


def _count_public_outputs(name: str) -> int | None:
    """``None`` for an op returning one unnamed tensor, else the number of its outputs before the first
    backward-only one (read from the schema's named outputs)."""
    returns = SCHEMAS[name].rsplit("->", 1)[1].strip()
    if not returns.startswith("("):
        return None
    names = [field.split()[-1] for field in returns[1:-1].split(",")]
    kept = [n for n in names if n not in BACKWARD_ONLY_OUTPUTS]
    assert names[: len(kept)] == kept, f"{name}: backward-only outputs must come last"
    return len(kept)


_PUBLIC_OUTPUTS = {name: _count_public_outputs(name) for name in FORWARD_OPS}


def public_outputs(name: str) -> int | None:
    """How many leading outputs of forward op ``name`` a backend returns: ``None`` when the op returns a
    single tensor (returned as it is), else the outputs before the index and residual kept for the
    backward (one is returned alone, several as a tuple)."""
    return _PUBLIC_OUTPUTS[name]


# ----------------------------------------------------------------------------------- dtype and shapes


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype of Grams and losses: float64 stays float64, every other float type is computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def patch_grid(x: torch.Tensor, k: int) -> tuple[int, int, int]:
    """``(B, H/k, W/k)``: the shape of every per-patch output of a ``(B, C, H, W)`` image."""
    return x.shape[0], x.shape[-2] // k, x.shape[-1] // k


def gram_shape(x: torch.Tensor, k: int) -> tuple[int, ...]:
    """``(B, H/k, W/k, C, C)``: the shape of ``patch_gram(x, k)``."""
    return (*patch_grid(x, k), x.shape[1], x.shape[1])


def residual_shape(sr: torch.Tensor, k: int, target: str) -> tuple[int, ...]:
    """Shape of the texture losses' residual: ``(B, C, C, H/k, W/k)``, ``G(e) - G(c*)`` of every patch
    (channel pair first, so that neighbouring patches are neighbours in memory), for the Gram target;
    ``(B, C, H, W)``, ``e - c*`` pixel by pixel, for the pixel target."""
    if target == "gram":
        b, hp, wp = patch_grid(sr, k)
        return b, sr.shape[1], sr.shape[1], hp, wp
    return tuple(sr.shape)


def mask_shape(x: torch.Tensor) -> tuple[int, int, int, int]:
    """``(B, 1, H, W)``: the shape of the texture mask of ``x``."""
    return x.shape[0], 1, x.shape[-2], x.shape[-1]


# ---------------------------------------------------------------------------------------------- fakes


def _like(x: torch.Tensor) -> torch.Tensor:
    """A contiguous tensor of x's shape, dtype and device (what every kernel returns for an image)."""
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


def _loss_and_index(sr: torch.Tensor, candidates, k: int, *_) -> tuple[torch.Tensor, torch.Tensor]:
    grid = patch_grid(sr, k)
    return sr.new_empty(grid, dtype=accumulation_dtype(sr.dtype)), sr.new_empty(grid, dtype=torch.long)


def _loss_index_residual(sr: torch.Tensor, k: int, target: str) -> tuple[torch.Tensor, ...]:
    residual = sr.new_empty(residual_shape(sr, k, target), dtype=accumulation_dtype(sr.dtype))
    return (*_loss_and_index(sr, None, k), residual)


def _index(sr: torch.Tensor, candidates, k: int, *_) -> torch.Tensor:
    return sr.new_empty(patch_grid(sr, k), dtype=torch.long)


# Shape-and-dtype implementation of every op, for FakeTensor tracing (torch.compile, opcheck).
FAKES: dict[str, Callable] = {
    "patch_gram": lambda x, k: x.new_empty(gram_shape(x, k), dtype=accumulation_dtype(x.dtype)),
    "patch_gram_backward": lambda grad, x, k: _like(x),
    "gram_select_local": _index,
    "gram_select_global": _index,
    "texture_loss_local": lambda sr, _cand, k, _gt_weight, target, _criterion: _loss_index_residual(sr, k, target),
    "texture_loss_global": _loss_and_index,
    "texture_loss_residual_backward": lambda grad, sr, *_: _like(sr),
    "texture_loss_global_backward": lambda grad, sr, *_: _like(sr),
    "texture_loss_sampled": lambda sr, _hr, _hr_half, _thetas, k, _gt_weight, target, _criterion: (
        _loss_index_residual(sr, k, target)
    ),
    "downsample_half": lambda x: x.new_empty(
        (*x.shape[:2], x.shape[2] // 2, x.shape[3] // 2), dtype=accumulation_dtype(x.dtype)
    ),
    "texture_mask": lambda x, *_: x.new_empty(mask_shape(x)),
    "mask_pair": lambda sr, hr, *_: (_like(sr), _like(hr)),
    "mask_pair_backward": lambda grad, hr, *_: _like(hr),
}


# ------------------------------------------------------------------------------------------- autograd


def _patch_gram_setup(ctx, inputs, output) -> None:
    x, k = inputs
    ctx.save_for_backward(x)
    ctx.k = k


def _texture_loss_global_setup(ctx, inputs, output) -> None:
    """Saves SR, the int64 index and the candidate images themselves (no patch copies)."""
    sr, candidates, k, _gt_weight, target, criterion = inputs
    ctx.save_for_backward(sr, output[1], *candidates)
    ctx.args = (k, target, criterion)


def _texture_loss_residual_setup(ctx, inputs, output) -> None:
    """Local and sampled scope: saves SR and the residual, nothing of the candidates or their sources. The
    index and residual outputs take no gradient, and none is made up for them (no zero-filled images)."""
    sr, (k, _gt_weight, target, criterion) = inputs[0], inputs[-4:]
    ctx.save_for_backward(sr, output[2])
    ctx.mark_non_differentiable(output[1], output[2])
    ctx.set_materialize_grads(False)
    ctx.args = (k, target, criterion)
    ctx.n_inputs = len(inputs)


def _mask_pair_setup(ctx, inputs, output) -> None:
    _sr, hr, *args = inputs
    ctx.save_for_backward(hr)
    ctx.args = args
    ctx.mark_non_differentiable(output[1])


def second_backward_message(op: str) -> str:
    """The error of a second backward through the gradient of fused op ``op`` (the same from C++)."""
    return (
        f"gramgan::{op}: the gradient of the fused kernels cannot be differentiated again (a second backward "
        "through create_graph=True, e.g. a gradient penalty); backend='reference' can"
    )


class _SecondBackwardRefused(torch.autograd.Function):
    """Identity on a gradient; its backward, reached from anything the gradient depends on, raises."""

    @staticmethod
    def forward(ctx, message: str, grad: torch.Tensor, *_depends_on: torch.Tensor) -> torch.Tensor:
        ctx.message = message
        return grad.detach()

    @staticmethod
    def backward(ctx, *_grads):
        raise RuntimeError(ctx.message)


def refuse_second_backward(op: str, kernel: Callable[[], torch.Tensor], *depends_on: torch.Tensor) -> torch.Tensor:
    """The gradient ``kernel()`` of fused op ``op``, computed from ``depends_on`` without a graph.

    Under ``create_graph=True`` (grad mode on inside a backward) it is wrapped so that differentiating it
    again raises, naming ``op``: unwrapped, a second backward would take it for a constant and silently
    leave out the op's second derivative. (``torch.autograd.function.once_differentiable`` wraps only
    when an incoming gradient requires grad, and links its error to none of the inputs.)"""
    with torch.no_grad():
        grad = kernel()
    if not torch.is_grad_enabled():
        return grad
    return _SecondBackwardRefused.apply(second_backward_message(op), grad, *depends_on)


def _backward_formulas(namespace: str) -> dict[str, tuple[Callable, Callable]]:
    """``name -> (backward, setup_context)`` of the differentiable ops of ``namespace``."""

    def ops():
        return getattr(torch.ops, namespace)

    def patch_gram_grad(ctx, grad):
        (x,) = ctx.saved_tensors
        return refuse_second_backward("patch_gram", lambda: ops().patch_gram_backward(grad, x, ctx.k), grad, x), None

    def texture_loss_global_grad(ctx, grad_loss, _grad_index):
        sr, index, *images = ctx.saved_tensors
        grad_sr = None
        if ctx.needs_input_grad[0]:
            grad_sr = refuse_second_backward(
                "texture_loss_global",
                lambda: ops().texture_loss_global_backward(grad_loss, sr, images, index, *ctx.args),
                grad_loss,
                sr,
            )
        return grad_sr, [None] * len(images), None, None, None, None  # same structure as the input

    def texture_loss_residual_grad(op, ctx, grad_loss, _grad_index, _grad_residual):
        """The backward of op ``op`` (local or sampled scope), bound to it by ``functools.partial``."""
        sr, residual = ctx.saved_tensors
        grad_sr = None
        if ctx.needs_input_grad[0] and grad_loss is not None:
            grad_sr = refuse_second_backward(
                op,
                lambda: ops().texture_loss_residual_backward(grad_loss, sr, residual, *ctx.args),
                grad_loss,
                sr,
            )
        elif ctx.needs_input_grad[0]:  # the loss took no part in what was differentiated
            grad_sr = torch.zeros_like(sr)
        return (grad_sr, *[None] * (ctx.n_inputs - 1))

    def mask_pair_grad(ctx, grad_sr_masked, _grad_hr_masked):
        """The fused grad * M(hr); under create_graph=True the mask, then a product autograd differentiates."""
        (hr,) = ctx.saved_tensors
        grad = None
        if ctx.needs_input_grad[0] and torch.is_grad_enabled():
            with torch.no_grad():
                mask = ops().texture_mask(hr, *ctx.args)
            grad = grad_sr_masked * mask
        elif ctx.needs_input_grad[0]:
            grad = ops().mask_pair_backward(grad_sr_masked, hr, *ctx.args)
        return grad, None, None, None, None, None, None, None

    return {
        "patch_gram": (patch_gram_grad, _patch_gram_setup),
        "texture_loss_local": (partial(texture_loss_residual_grad, "texture_loss_local"), _texture_loss_residual_setup),
        "texture_loss_global": (texture_loss_global_grad, _texture_loss_global_setup),
        "texture_loss_sampled": (
            partial(texture_loss_residual_grad, "texture_loss_sampled"),
            _texture_loss_residual_setup,
        ),
        "mask_pair": (mask_pair_grad, _mask_pair_setup),
    }


# The ops with an autograd formula; their gradient flows to their first argument only.
DIFFERENTIABLE_OPS: tuple[str, ...] = tuple(_backward_formulas("gramgan"))

# ------------------------------------------------------------------------------------------ registration

_LIBRARIES: dict[str, torch.library.Library] = {}


def register_contract(namespace: str, *, fakes: bool = True, autograd: bool = True) -> None:
    """Registers the fake implementations (unless ``fakes`` is false) and the autograd formulas (unless
    ``autograd`` is false) of the ops of ``namespace``, which must already be defined with ``SCHEMAS``."""
    if fakes:
        for name, fake in FAKES.items():
            torch.library.register_fake(f"{namespace}::{name}", fake)
    if not autograd:
        return
    for name, (backward, setup) in _backward_formulas(namespace).items():
        torch.library.register_autograd(f"{namespace}::{name}", backward, setup_context=setup)


def define_ops(namespace: str, *, autograd: bool = True) -> None:
    """Defines every op of ``SCHEMAS`` as ``torch.ops.<namespace>.*`` with its fake and autograd.

    For namespaces whose kernels are registered from C++ (``TORCH_LIBRARY_IMPL(<namespace>, CPU, m)``);
    the kernels may be loaded before or after. ``autograd=False`` leaves the autograd to the kernels' own
    registration (the extension's ``gramgan`` ops: csrc/autograd.cpp). Calling it again for the same
    namespace does nothing.
    """
    if namespace in _LIBRARIES:
        return
    library = torch.library.Library(namespace, "DEF")
    for name in SCHEMAS:
        library.define(schema(name))
    _LIBRARIES[namespace] = library
    register_contract(namespace, autograd=autograd)
