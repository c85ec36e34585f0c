"""Derivatives beyond one backward through the fused ops (docs/ops.md, "Conventions"), on every backend.

Second order: the masked pair's gradient, ``grad * M(hr)``, is differentiable again everywhere. The fused
backward kernels of the other ops are not: on the fused backends a second backward through their gradient
raises (it is never taken silently for a constant, which would drop the op's second derivative), and the
reference backend, plain ATen, differentiates it again. Forward mode: the reference only; the fused
backends refuse a tangent, naming the op, rather than dropping it.
"""

from __future__ import annotations

import re

import pytest
import torch
import torch.autograd.forward_ad as fwad

import gramgan.ops as ops
from gramgan.ops._contract import second_backward_message
from tests.ops.test_backends import near_threshold_image, rand


def _inputs(rng, device, dtype=torch.float32):
    """SR, a local candidate stack, global levels and the sampled op's sources, small (B = 2, 8 x 16)."""
    b, c, h, w = 2, 3, 8, 16
    hr = rand(rng, b, c, h, w, dtype=dtype, device=device)
    return {
        "sr": (hr + 0.1 * rand(rng, b, c, h, w, dtype=dtype, device=device)).clamp(0, 1),
        "stack": rand(rng, b, 4, c, h, w, dtype=dtype, device=device),
        "levels": [hr, rand(rng, b, c, h // 2, w // 2, dtype=dtype, device=device)],
        "hr": hr,
        "half": rand(rng, b, c, h // 2, w // 2, dtype=dtype, device=device),
        "thetas": (torch.eye(2, 3) + 0.05 * torch.rand(b, 2, 2, 3, generator=rng)).to(device=device, dtype=dtype),
    }


# name -> (the op whose gradient refuses, the scalar it gives for SR x on a backend)
CALLS = {
    "patch_gram": ("patch_gram", lambda d, x, be: ops.patch_gram(x, 2, backend=be).square().sum()),
    "local": ("texture_loss_local", lambda d, x, be: ops.gram_texture_loss(x, d["stack"], gt_weight=0.5, backend=be)),
    "local-pixel": (
        "texture_loss_local",
        lambda d, x, be: ops.gram_texture_loss(x, d["stack"], target="pixel", backend=be),
    ),
    "global": (
        "texture_loss_global",
        lambda d, x, be: ops.gram_texture_loss(x, d["levels"], scope="global", backend=be),
    ),
    "sampled": (
        "texture_loss_sampled",
        lambda d, x, be: ops.gram_texture_loss_sampled(x, d["hr"], d["half"], d["thetas"], backend=be),
    ),
}


@pytest.mark.parametrize("name", CALLS)
def test_fused_gradient_refuses_a_second_backward(backend, device, rng, name):
    op, call = CALLS[name]
    data = _inputs(rng, device)
    x = data["sr"].clone().requires_grad_()
    (plain,) = torch.autograd.grad(call(data, x, backend), x)
    y = data["sr"].clone().requires_grad_()
    (graph,) = torch.autograd.grad(call(data, y, backend), y, create_graph=True)
    assert torch.equal(graph.detach(), plain), "create_graph=True changed the first-order gradient"
    assert graph.requires_grad
    if backend == "reference":
        (second,) = torch.autograd.grad(graph.square().sum() + y.square().sum(), y)
        assert torch.isfinite(second).all() and not torch.equal(second, 2 * y.detach())
        return
    message = re.escape(second_backward_message(op))
    # Beside a differentiable term, by autograd.grad (which runs only what leads to y) and by backward().
    with pytest.raises(RuntimeError, match=message):
        torch.autograd.grad(graph.square().sum() + y.square().sum(), y, retain_graph=True)
    with pytest.raises(RuntimeError, match=message):
        graph.sum().backward()


@pytest.mark.parametrize("name", ["patch_gram", "local", "local-pixel", "global"])
def test_reference_second_order_gradcheck(rng, name):
    """The reference backend's second derivatives, float64, against finite differences."""
    _op, call = CALLS[name]
    data = _inputs(rng, "cpu", torch.float64)
    x = data["sr"].clone().requires_grad_()
    assert torch.autograd.gradgradcheck(lambda t: call(data, t, "reference"), (x,))


def test_mask_pair_gradient_is_differentiable_again(backend, device, rng):
    """A penalty on the gradient of f(sr * M) = sum((sr * M)^3): d/dsr of |3 M sr^2|^2 is 36 M sr^3."""
    hr = near_threshold_image(rng, 2, 3, 12, 12, 0.005, torch.float32, device)
    sr = (0.5 + rand(rng, 2, 3, 12, 12, device=device)).requires_grad_()
    sr_masked, _ = ops.mask_pair(sr, hr, offset=(2, 1), backend=backend)
    (grad,) = torch.autograd.grad(sr_masked.pow(3).sum(), sr, create_graph=True)
    (second,) = torch.autograd.grad(grad.square().sum(), sr)
    mask = ops.texture_mask(hr, offset=(2, 1), backend=backend)
    assert 0 < mask.mean() < 1
    torch.testing.assert_close(second, 36 * mask * sr.detach().pow(3))


# The public ops whose input may carry a tangent, with their scalar for SR x.
FORWARD_CALLS = {
    "patch_gram": CALLS["patch_gram"],
    "local": CALLS["local"],
    "sampled": CALLS["sampled"],
    "mask_pair": ("mask_pair", lambda d, x, be: ops.mask_pair(x, d["hr"], backend=be)[0].square().sum()),
}


@pytest.mark.parametrize("name", FORWARD_CALLS)
def test_forward_mode_tangent_is_refused_not_dropped(backend, device, rng, name):
    op, call = FORWARD_CALLS[name]
    data = _inputs(rng, device)
    direction = torch.rand(data["sr"].shape, generator=rng).to(device)
    with fwad.dual_level():
        dual = fwad.make_dual(data["sr"], direction)
        if backend != "reference":
            with pytest.raises(RuntimeError, match=f"gramgan::{op}: backend '{backend}' has no forward-mode"):
                call(data, dual, backend)
            return
        tangent = fwad.unpack_dual(call(data, dual, backend)).tangent
    x = data["sr"].clone().requires_grad_()
    (grad,) = torch.autograd.grad(call(data, x, backend), x)
    torch.testing.assert_close(tangent, (grad * direction).sum())  # the directional derivative


def test_torch_func_is_right_or_refused(backend, device, rng):
    """vmap runs the op per sample (the same losses as a loop); func.jvp and func.grad raise or agree with
    autograd."""
    data = _inputs(rng, device)
    sr, stack = data["sr"], data["stack"]

    def loss(x, candidates):
        return ops.gram_texture_loss(x[None], candidates[None], backend=backend)

    looped = torch.stack([loss(x, c) for x, c in zip(sr, stack, strict=True)])
    torch.testing.assert_close(torch.vmap(loss)(sr, stack), looped, rtol=0, atol=0)
    x = sr.clone().requires_grad_()
    (expected,) = torch.autograd.grad(loss(x[0], stack[0]), x)
    direction = torch.rand(sr.shape, generator=rng).to(device)
    try:
        _, tangent = torch.func.jvp(lambda t: loss(t[0], stack[0]), (sr,), (direction,))
        torch.testing.assert_close(tangent, (expected * direction).sum())
    except RuntimeError as error:
        assert backend != "reference" and "no forward-mode derivatives" in str(error)
    try:
        got = torch.func.grad(lambda t: loss(t[0], stack[0]))(sr)
    except RuntimeError as error:
        assert backend != "reference" and "functorch" in str(error)
        return
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
