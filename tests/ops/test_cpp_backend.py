"""Checks specific to the C++/CUDA extension (``cpu`` and ``cuda`` backends).

Agreement with the reference is tested for every backend in test_backends.py; here: the operator
registration (``torch.library.opcheck``), float64 ``gradcheck`` of the fused backward kernels,
``torch.compile(fullgraph=True)`` through the ops, run-to-run determinism, and the availability reasons.
"""

from __future__ import annotations

import pytest
import torch

import gramgan.ops as ops
from gramgan.ops import _cpp
from gramgan.ops import reference as ref

pytestmark = pytest.mark.skipif(_cpp.extension_error() is not None, reason=str(_cpp.extension_error()))

HAS_CUDA_KERNELS = _cpp.extension_error() is None and _cpp._C.built_with_cuda() and torch.cuda.is_available()
DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param(
        "cuda",
        id="cuda",
        marks=[pytest.mark.cuda, pytest.mark.skipif(not HAS_CUDA_KERNELS, reason="no CUDA GPU or no CUDA kernels")],
    ),
]


def _rand(gen: torch.Generator, *shape: int, dtype=torch.float32, device="cpu") -> torch.Tensor:
    return torch.rand(*shape, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)


def _op_cases(device: str, gen: torch.Generator) -> list[tuple[str, tuple]]:
    """(op name, args) for every registered op, on small inputs (B=2, C=3, 8 x 12, k=4)."""
    sr = _rand(gen, 2, 3, 8, 12, device=device)
    cand = _rand(gen, 2, 3, 3, 8, 12, device=device)
    levels = [_rand(gen, 2, 3, 8, 12, device=device), _rand(gen, 2, 3, 4, 8, device=device)]
    index_global = torch.randint(0, 6 + 2, (2, 2, 3), generator=gen).to(device)
    grad = _rand(gen, 2, 2, 3, device=device)
    hr = 0.5 + 0.01 * torch.randn(2, 3, 8, 12, generator=gen).to(device)

    def req(x: torch.Tensor) -> torch.Tensor:
        return x.clone().requires_grad_()

    return [
        ("patch_gram", (req(sr), 4)),
        ("patch_gram_backward", (_rand(gen, 2, 2, 3, 3, 3, device=device), sr, 4)),
        ("gram_select_local", (sr, cand, 4, 1.0)),
        ("gram_select_global", (sr, levels, 4, 0.0)),
        ("texture_loss_local", (req(sr), cand, 4, 0.0, "gram", "mse")),
        ("texture_loss_local", (req(sr), cand, 4, 1.0, "pixel", "l1")),
        ("texture_loss_residual_backward", (grad, sr, _rand(gen, 2, 3, 3, 2, 3, device=device) - 0.5, 4, "gram", "l1")),
        ("texture_loss_residual_backward", (grad, sr, _rand(gen, 2, 3, 8, 12, device=device) - 0.5, 4, "pixel", "mse")),
        ("texture_loss_global", (req(sr), levels, 4, 1.0, "gram", "l1")),
        ("texture_loss_global", (req(sr), levels, 4, 0.0, "pixel", "mse")),
        ("texture_loss_global_backward", (grad, sr, levels, index_global, 4, "pixel", "mse")),
        ("texture_mask", (hr, 4, 0.005, 1, 2, "grid", 11)),
        ("texture_mask", (hr, 4, 0.005, 0, 0, "sliding", 5)),
        ("mask_pair", (req(sr), hr, 4, 0.005, 3, 0, "grid", 11)),
        ("mask_pair", (req(sr), hr, 4, 0.005, 0, 0, "sliding", 3)),
        ("mask_pair_backward", (_rand(gen, 2, 3, 8, 12, device=device), hr, 4, 0.005, 1, 2, "grid", 11)),
    ]


CASE_IDS = [
    "patch_gram",
    "patch_gram_backward",
    "gram_select_local",
    "gram_select_global",
    "loss_local_gram",
    "loss_local_pixel",
    "residual_backward_gram",
    "residual_backward_pixel",
    "loss_global_gram",
    "loss_global_pixel",
    "loss_global_backward",
    "mask_grid",
    "mask_sliding",
    "mask_pair_grid",
    "mask_pair_sliding",
    "mask_pair_backward",
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", range(len(CASE_IDS)), ids=CASE_IDS)
def test_opcheck(device, case):
    """Schema, fake kernel, autograd registration and AOT dispatch agree with the real kernel."""
    name, args = _op_cases(device, torch.Generator().manual_seed(case))[case]
    torch.library.opcheck(getattr(torch.ops.gramgan, name).default, args)


def _gradcheck(fn, x: torch.Tensor) -> None:
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_patch_gram(device):
    gen = torch.Generator().manual_seed(0)
    x = _rand(gen, 2, 3, 4, 8, dtype=torch.float64, device=device).requires_grad_()
    _gradcheck(lambda t: torch.ops.gramgan.patch_gram(t, 2), x)


GRADCHECK_CASES = [
    ("local", "gram", "mse"),
    ("local", "gram", "l1"),
    ("local", "pixel", "mse"),
    ("local", "pixel", "l1"),
    ("global", "gram", "mse"),
    ("global", "gram", "l1"),
    ("global", "pixel", "mse"),
    ("global", "pixel", "l1"),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=["-".join(c) for c in GRADCHECK_CASES])
def test_gradcheck_texture_loss(device, case):
    """float64 gradcheck; the seed gives well-separated scores and differences away from l1's kink."""
    scope, target, criterion = case
    gen = torch.Generator().manual_seed(1)
    sr = _rand(gen, 2, 2, 4, 8, dtype=torch.float64, device=device).requires_grad_()
    if scope == "local":
        candidates = _rand(gen, 2, 3, 2, 4, 8, dtype=torch.float64, device=device)
    else:
        candidates = [_rand(gen, 2, 2, *hw, dtype=torch.float64, device=device) for hw in [(4, 8), (4, 4)]]
    index = ops.gram_select(sr.detach(), candidates, 2, scope, 0.5, backend=device)
    assert index.unique().numel() > 1  # the case really mixes candidates

    def loss(t: torch.Tensor) -> torch.Tensor:
        return ops.gram_texture_loss(t, candidates, 2, scope, 0.5, target, criterion, "none", backend=device)

    _gradcheck(loss, sr)
    expected = ref.texture_loss(sr.detach(), candidates, 2, scope, 0.5, target, criterion)
    torch.testing.assert_close(loss(sr.detach()), expected, rtol=1e-12, atol=1e-14)


class _MaskedTextureLoss(torch.nn.Module):
    """A small loss module of the shape the Gram-GAN objective uses: texture loss plus masked pair."""

    def __init__(self, backend: str) -> None:
        super().__init__()
        self.backend = backend

    def forward(self, sr, hr, candidates):
        texture = ops.gram_texture_loss(sr, candidates, backend=self.backend)
        sr_m, hr_m = ops.mask_pair(sr, hr, offset=(1, 2), backend=self.backend)
        return texture + (sr_m - hr_m).abs().mean()


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph(device):
    """The ops trace under torch.compile(fullgraph=True), forward and backward, and match eager."""
    torch._dynamo.reset()
    gen = torch.Generator().manual_seed(3)
    hr = _rand(gen, 2, 3, 8, 8, device=device)
    candidates = torch.stack([hr, _rand(gen, 2, 3, 8, 8, device=device)], dim=1)
    sr = _rand(gen, 2, 3, 8, 8, device=device)
    module = _MaskedTextureLoss(device)
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager" if device == "cpu" else "inductor")
    results = []
    for fn in (module, compiled):
        x = sr.clone().requires_grad_()
        value = fn(x, hr, candidates)
        value.backward()
        results.append((value.detach(), x.grad))
    torch.testing.assert_close(results[1][0], results[0][0])
    torch.testing.assert_close(results[1][1], results[0][1])
    assert results[0][1].abs().sum() > 0


@pytest.mark.parametrize("device", DEVICES)
def test_deterministic_global_and_masks(device):
    """Bitwise-equal results run to run on inputs large enough to use every thread / many blocks."""
    gen = torch.Generator().manual_seed(4)
    sr = _rand(gen, 3, 3, 32, 48, device=device)
    levels = [_rand(gen, 3, 3, 32, 48, device=device), _rand(gen, 3, 3, 16, 24, device=device)]
    hr = 0.5 + 0.01 * torch.randn(3, 3, 32, 48, generator=gen).to(device)
    runs = []
    for _ in range(2):
        x = sr.clone().requires_grad_()
        loss = ops.gram_texture_loss(x, levels, scope="global", gt_weight=1.0, reduction="sum", backend=device)
        loss.backward()
        masks = [ops.texture_mask(hr, mode=mode, backend=device) for mode in ("grid", "sliding")]
        runs.append([loss.detach(), x.grad, *masks])
    for first, second in zip(*runs):
        assert torch.equal(first, second)


def test_direct_op_rejects_bad_input():
    """torch.ops.gramgan.* called directly (bypassing the Python validation) raises, never crashes."""
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(RuntimeError, match="k in"):
        torch.ops.gramgan.patch_gram(x, 3)
    with pytest.raises(RuntimeError, match="multiples of k"):
        torch.ops.gramgan.patch_gram(torch.rand(1, 3, 8, 6), 4)
    with pytest.raises(RuntimeError, match="channels"):
        torch.ops.gramgan.patch_gram(torch.rand(1, 5, 8, 8), 4)
    with pytest.raises(RuntimeError, match="target"):
        torch.ops.gramgan.texture_loss_local(x, x[:, None], 4, 0.0, "grams", "mse")
    with pytest.raises(RuntimeError, match="aligned"):
        torch.ops.gramgan.gram_select_local(x, torch.rand(1, 2, 3, 8, 4), 4, 0.0)
    with pytest.raises(RuntimeError, match="out of range"):
        torch.ops.gramgan.texture_loss_global_backward(
            torch.ones(1, 2, 2), x, [x], torch.full((1, 2, 2), 5), 4, "gram", "mse"
        )
    with pytest.raises(RuntimeError, match="index must be int64"):
        torch.ops.gramgan.texture_loss_global_backward(
            torch.ones(1, 2, 2), x, [x], torch.zeros((1, 2, 2), dtype=torch.int32), 4, "gram", "mse"
        )
    with pytest.raises(RuntimeError, match="residual must be"):  # the Gram target's residual is (B, C, C, H/k, W/k)
        torch.ops.gramgan.texture_loss_residual_backward(torch.ones(1, 2, 2), x, x, 4, "gram", "mse")
    with pytest.raises(RuntimeError, match="residual must be"):  # in the accumulation dtype
        torch.ops.gramgan.texture_loss_residual_backward(torch.ones(1, 2, 2), x, x.double(), 4, "pixel", "mse")
    with pytest.raises(RuntimeError, match="reflect padding"):
        torch.ops.gramgan.texture_mask(x, 4, 0.005, 0, 0, "sliding", 17)
    with pytest.raises(RuntimeError, match="same shape"):
        torch.ops.gramgan.mask_pair_backward(torch.ones(1, 3, 8, 4), x, 4, 0.005, 0, 0, "grid", 11)


def test_availability_reasons():
    assert _cpp.CPU_BACKEND.unavailable_reason(torch.device("cpu")) is None
    assert "needs a CUDA tensor" in _cpp.CUDA_BACKEND.unavailable_reason(torch.device("cpu")) or (
        not _cpp._C.built_with_cuda()
    )
    assert "needs a CPU tensor" in _cpp.CPU_BACKEND.unavailable_reason(torch.device("cuda"))
    assert _cpp.CPU_BACKEND.unsupported_reason(4, 3) is None
    assert "k=3" in _cpp.CPU_BACKEND.unsupported_reason(3, 3)
    assert "C=5" in _cpp.CUDA_BACKEND.unsupported_reason(4, 5)


def test_coverage_rule_is_the_extensions(monkeypatch):
    """Python routes by the coverage rule the extension exports (its one definition, gramgan_common.h), which
    is the one its dispatchers instantiate; without the extension the fused backends name the reason."""
    from gramgan.ops import _backend

    patch_sizes, channel_counts = _cpp._C.kernel_coverage()
    assert (patch_sizes, channel_counts) == _backend.KERNEL_COVERAGE == ((2, 4, 8), (1, 2, 3, 4))
    for k in patch_sizes:  # every covered k and C runs; the next ones past them are refused in C++ too
        for channels in channel_counts:
            assert torch.ops.gramgan.patch_gram(torch.rand(1, channels, 8 * k, 8 * k), k).shape[-1] == channels
    with pytest.raises(RuntimeError, match=r"k in \{2, 4, 8\}, got k=16"):
        torch.ops.gramgan.patch_gram(torch.rand(1, 3, 16, 16), 16)
    with pytest.raises(RuntimeError, match=r"C in \{1, 2, 3, 4\} channels, x has 5"):
        torch.ops.gramgan.patch_gram(torch.rand(1, 5, 8, 8), 4)
    monkeypatch.setattr(_backend, "KERNEL_COVERAGE", None)
    assert "gramgan._C, which is not built" in _cpp.CPU_BACKEND.unsupported_reason(4, 3)
