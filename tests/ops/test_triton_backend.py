"""Checks specific to the Triton backend (``gramgan.ops._triton``, kernels in ``gramgan.kernels``).

Agreement with the reference for every op, scope, dtype and shape is test_backends.py's job (it runs the
``triton`` backend too). Here: availability and import behaviour, the autotuning configurations, the
``torch.library`` registration (opcheck, what backward saves, ``torch.compile(fullgraph=True)``), float64
gradcheck, what only these kernels could get wrong (the global running argmin across candidate tiles, the
sliding mask's running sums: precision far from the image mean, NaN/inf leaving the window) and, on a GPU,
full-size agreement with the reference.

Without a GPU the kernels run under Triton's CPU interpreter: tests/conftest.py sets TRITON_INTERPRET=1
before anything imports triton. Shapes here are small for that reason, except in the ``cuda`` tests.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest
import torch

import gramgan.ops as ops
from gramgan.ops import _triton
from gramgan.ops import reference as ref

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
_REASON = _triton.TRITON_BACKEND.unavailable_reason(DEVICE)
pytestmark = pytest.mark.skipif(_REASON is not None, reason=f"backend 'triton': {_REASON}")


def _rand(gen: torch.Generator, *shape: int, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(*shape, generator=gen, dtype=torch.float64).to(device=DEVICE, dtype=dtype)


# ------------------------------------------------------------------------------------- availability


def test_an_unrelated_top_level_kernels_package_does_not_matter(monkeypatch):
    """The Triton kernels are ``gramgan.kernels``; a foreign top-level ``kernels`` module changes nothing."""
    import types

    monkeypatch.setitem(sys.modules, "kernels", types.ModuleType("kernels"))  # e.g. the PyPI package
    spec = importlib.util.spec_from_file_location("_triton_with_foreign_kernels", _triton.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module._IMPORT_ERROR is None
    assert module.TRITON_BACKEND.unavailable_reason(torch.device("cpu")) == _triton.TRITON_BACKEND.unavailable_reason(
        torch.device("cpu")
    )


def test_import_without_triton_reports_the_backend_unavailable(monkeypatch):
    """Loading the wiring module with triton missing never raises; the backend says why it cannot run."""
    monkeypatch.setitem(sys.modules, "triton", None)  # `import triton` now raises ImportError
    monkeypatch.setitem(sys.modules, "gramgan.kernels", None)
    spec = importlib.util.spec_from_file_location("_triton_without_triton", _triton.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for device in ("cpu", "cuda"):
        reason = module.TRITON_BACKEND.unavailable_reason(torch.device(device))
        assert reason is not None and "triton could not be imported" in reason


def test_unavailable_reason_by_device(monkeypatch):
    backend = _triton.TRITON_BACKEND
    assert backend.name == "triton"
    assert backend.unavailable_reason(torch.device("cuda")) is None
    assert "CUDA tensor" in backend.unavailable_reason(torch.device("meta"))
    monkeypatch.setattr(_triton.kernels, "INTERPRET", False)  # as if the kernels were compiled for a GPU
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert "TRITON_INTERPRET=1" in backend.unavailable_reason(torch.device("cpu"))
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # set too late: the kernels are already compiled kernels
    assert "set after" in backend.unavailable_reason(torch.device("cpu"))
    monkeypatch.setattr(_triton.kernels, "INTERPRET", True)
    assert backend.unavailable_reason(torch.device("cpu")) is None


def test_coverage_is_the_shared_kernel_rule():
    backend = _triton.TRITON_BACKEND
    assert backend.unsupported_reason(4, 3) is None and backend.unsupported_reason(8, 1) is None
    assert "k=3" in backend.unsupported_reason(3, 3)
    assert "C=5" in backend.unsupported_reason(4, 5)


# ---------------------------------------------------------------------------------------- autotuning


def test_autotune_configurations():
    """Every kernel is autotuned: one configuration under the interpreter; a small set of distinct ones
    on a GPU (each compiled by the AOT guard, tests/ops/aot_compile_kernels.py)."""
    from gramgan import kernels
    from gramgan.kernels import _autotune, gram, resize, texture_loss, texture_mask
    from tests.ops.aot_compile_kernels import discover

    found = discover()
    assert len(found) >= 13
    for name, kernel in found.items():
        assert hasattr(kernel, "configs"), f"{name} is not autotuned (kernels/_autotune.py's tuned)"
        if kernels.INTERPRET or not _autotune.AUTOTUNE:
            assert len(kernel.configs) == 1, name
        else:
            assert 2 <= len(kernel.configs) <= 4, name
    for gpu in (gram.GRAM_CONFIGS, texture_loss.PATCH_CONFIGS, texture_loss.GLOBAL_CONFIGS, resize.HALF_CONFIGS,
                texture_mask.GRID_CONFIGS, texture_mask.PLANE_CONFIGS, texture_mask.SLIDING_CONFIGS):  # fmt: skip
        assert 2 <= len(gpu) <= 4
        assert len({(tuple(sorted(meta.items())), warps) for meta, warps in gpu}) == len(gpu)


def _empty_kernel(x, n, BLOCK):
    pass


def test_tuned_uses_the_gpu_list_when_compiled(monkeypatch):
    import triton

    from gramgan.kernels import _autotune

    gpu = [({"BLOCK": 16}, 2), ({"BLOCK": 32}, 4)]
    monkeypatch.setattr(_autotune, "INTERPRET", False)
    compiled = _autotune.tuned(gpu, {"BLOCK": 64}, key=["n"])(triton.jit(_empty_kernel))
    assert [(c.kwargs["BLOCK"], c.num_warps) for c in compiled.configs] == [(16, 2), (32, 4)]
    monkeypatch.setattr(_autotune, "INTERPRET", True)
    single = _autotune.tuned(gpu, {"BLOCK": 64}, key=["n"])(triton.jit(_empty_kernel))
    assert [c.kwargs["BLOCK"] for c in single.configs] == [64]
    monkeypatch.setattr(_autotune, "INTERPRET", False)
    monkeypatch.setattr(_autotune, "AUTOTUNE", False)
    first = _autotune.tuned(gpu, {"BLOCK": 64}, key=["n"])(triton.jit(_empty_kernel))
    assert [(c.kwargs["BLOCK"], c.num_warps) for c in first.configs] == [(16, 2)]


# ------------------------------------------------------------------------------------ torch.library


def _op_cases(gen: torch.Generator) -> dict:
    sr = _rand(gen, 2, 3, 8, 12)
    cand = _rand(gen, 2, 3, 3, 8, 12)
    levels = [_rand(gen, 2, 3, 8, 12), _rand(gen, 2, 3, 4, 8)]
    hr = 0.5 + 0.01 * torch.randn(2, 3, 8, 12, generator=gen).to(DEVICE)

    def req(x: torch.Tensor) -> torch.Tensor:
        return x.clone().requires_grad_()

    return {
        "patch_gram": ("patch_gram", (req(sr), 4)),
        "select_local": ("gram_select_local", (sr, cand, 4, 1.0)),
        "select_global": ("gram_select_global", (sr, levels, 4, 0.0)),
        "loss_local": ("texture_loss_local", (req(sr), cand, 4, 0.0, "pixel", "l1")),
        "loss_global": ("texture_loss_global", (req(sr), levels, 4, 1.0, "gram", "mse")),
        "mask_sliding": ("texture_mask", (hr, 4, 0.005, 0, 0, "sliding", 5)),
        "mask_pair_grid": ("mask_pair", (req(sr), hr, 4, 0.005, 3, 0, "grid", 11)),
        "mask_pair_backward": ("mask_pair_backward", (_rand(gen, 2, 3, 8, 12), hr, 4, 0.005, 1, 2, "sliding", 5)),
    }


OP_CASES = list(_op_cases(torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("case", OP_CASES)
def test_opcheck(case):
    """Schema (no input mutated), fake implementation and autograd registration agree with the kernels."""
    name, args = _op_cases(torch.Generator().manual_seed(1))[case]
    utils = ("test_schema", "test_autograd_registration", "test_faketensor")
    if DEVICE.type == "cuda":
        utils += ("test_aot_dispatch_dynamic",)  # traces the kernels' bodies: needs compiled kernels
    torch.library.opcheck(getattr(torch.ops.gramgan_triton, name).default, args, test_utils=utils)


def test_global_backward_saves_the_index_not_copies():
    """The global loss node keeps SR, the int64 index and the candidate images themselves: no patch copies."""
    gen = torch.Generator().manual_seed(2)
    sr = _rand(gen, 2, 3, 8, 8).requires_grad_()
    both = _rand(gen, 2, 3, 3, 8, 8)
    candidates = [both[:, 0], both[:, 1, :, :4, :4]]
    loss = ops.gram_texture_loss(sr, candidates, scope="global", reduction="none", backend="triton")
    saved = loss.grad_fn.saved_tensors
    assert len(saved) == 2 + len(candidates)
    assert saved[0].data_ptr() == sr.data_ptr()
    assert saved[1].dtype == torch.int64 and saved[1].shape == (2, 2, 2)
    assert [t.data_ptr() for t in saved[2:]] == [t.data_ptr() for t in candidates]
    expected = ops.gram_select(sr, candidates, scope="global", backend="triton")
    assert torch.equal(saved[1], expected)


@pytest.mark.parametrize("target", ["gram", "pixel"])
@pytest.mark.parametrize("form", ["local", "sampled"])
def test_backward_saves_sr_and_the_residual_only(form, target):
    """The local and sampled loss nodes keep SR and the residual only (Gram target: C x C values per patch;
    pixel target: one image of SR's size), no candidate, no source; the backward from them equals the
    reference gradient."""
    gen = torch.Generator().manual_seed(6)
    sr, hr, half = _rand(gen, 2, 3, 8, 16).requires_grad_(), _rand(gen, 2, 3, 8, 16), _rand(gen, 2, 3, 4, 8)
    thetas = torch.eye(2, 3, device=DEVICE).expand(2, 3, 2, 3) + 0.1 * _rand(gen, 2, 3, 2, 3)
    candidates = ref.sampled_candidates(hr, half, thetas, 4)

    def loss(backend: str) -> torch.Tensor:
        if form == "local":
            return ops.gram_texture_loss(sr, candidates, target=target, reduction="none", backend=backend)
        return ops.gram_texture_loss_sampled(sr, hr, half, thetas, target=target, reduction="none", backend=backend)

    out = loss("triton")
    saved = out.grad_fn.saved_tensors
    assert len(saved) == 2 and saved[0].data_ptr() == sr.data_ptr()
    assert saved[1].dtype == torch.float32
    assert saved[1].shape == ((2, 3, 3, 2, 4) if target == "gram" else sr.shape)
    upstream = _rand(gen, 2, 2, 4)
    (grad,) = torch.autograd.grad(out, sr, upstream)
    (expected,) = torch.autograd.grad(loss("reference"), sr, upstream)
    torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-6)


def test_gradcheck_float64():
    """float64 kernels: patch_gram and the texture loss (both scopes) pass gradcheck."""
    gen = torch.Generator().manual_seed(5)
    x = _rand(gen, 1, 2, 2, 4, dtype=torch.float64).requires_grad_()
    gram = lambda t: ops.patch_gram(t, 2, backend="triton")  # noqa: E731
    assert torch.autograd.gradcheck(gram, (x,), eps=1e-6, atol=1e-6, fast_mode=True)
    cand = _rand(gen, 1, 3, 2, 2, 4, dtype=torch.float64)
    cases = [("local", cand, "gram", "mse"), ("global", [cand[:, 0], cand[:, 1, :, :, :2]], "pixel", "l1")]
    for scope, candidates, target, criterion in cases:

        def loss(t, scope=scope, candidates=candidates, target=target, criterion=criterion):
            return ops.gram_texture_loss(t, candidates, 2, scope, 0.5, target, criterion, "none", backend="triton")

        assert torch.autograd.gradcheck(loss, (x,), eps=1e-6, atol=1e-6, rtol=1e-5, fast_mode=True)
        expected = ref.texture_loss(x.detach(), candidates, 2, scope, 0.5, target, criterion)
        torch.testing.assert_close(loss(x.detach()), expected, rtol=1e-12, atol=1e-14)


class _MaskedTextureLoss(torch.nn.Module):
    """A loss module of the shape the Gram-GAN objective uses: texture loss plus the masked pair."""

    def forward(self, sr, hr, candidates, levels):
        local = ops.gram_texture_loss(sr, candidates, backend="triton")
        global_ = ops.gram_texture_loss(sr, levels, scope="global", gt_weight=1.0, target="pixel", backend="triton")
        sr_m, hr_m = ops.mask_pair(sr, hr, offset=(1, 2), backend="triton")
        sliding = ops.texture_mask(hr, mode="sliding", window=3, backend="triton")
        return local + global_ + (sr_m - hr_m).abs().mean() + (sr * sliding).mean()


def _compile_case(gen: torch.Generator, size: int):
    hr = _rand(gen, 2, 3, size, size)
    candidates = torch.stack([hr, _rand(gen, 2, 3, size, size)], dim=1)
    levels = [hr, _rand(gen, 2, 3, size // 2, size // 2)]
    return _rand(gen, 2, 3, size, size), hr, candidates, levels


def _eager_and_compiled(compiled, module, sr, *rest):
    results = []
    for fn in (module, compiled):
        x = sr.clone().requires_grad_()
        value = fn(x, *rest)
        value.backward()
        results.append((value.detach(), x.grad))
    torch.testing.assert_close(results[1][0], results[0][0])
    torch.testing.assert_close(results[1][1], results[0][1])
    assert results[0][1].abs().sum() > 0


def test_torch_compile_fullgraph_traces_without_graph_break():
    """Public API -> dispatch -> gramgan_triton ops trace in one graph (fullgraph=True raises on a break).

    Under the interpreter the compiled graph runs the ops eagerly (backend="eager"); a GPU also runs
    inductor through the kernels' bodies (test_torch_compile_inductor_keeps_the_kernels).
    """
    torch._dynamo.reset()
    module = _MaskedTextureLoss()
    _eager_and_compiled(torch.compile(module, fullgraph=True, backend="eager"), module,
                        *_compile_case(torch.Generator().manual_seed(3), 8))  # fmt: skip


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_torch_compile_inductor_keeps_the_kernels():
    """inductor compiles the loss module in one graph, calls our Triton kernels, and matches eager."""
    from torch._inductor.utils import run_and_get_code

    torch._dynamo.reset()
    module = _MaskedTextureLoss()
    compiled = torch.compile(module, fullgraph=True)
    args = _compile_case(torch.Generator().manual_seed(3), 32)
    _, code = run_and_get_code(compiled, *args)
    source = "\n".join(code)
    for kernel in ("local_select_kernel", "global_select_kernel", "mask_grid_kernel", "sliding_cols_kernel"):
        assert kernel in source, kernel
    _eager_and_compiled(compiled, module, *args)


# ------------------------------------------------------------------------------- kernel-specific cases


def test_global_argmin_runs_across_candidate_tiles():
    """M well above the candidate tile: exact copies of SR patches in a late tile and an early one, a NaN
    image in between. The earliest exact copy wins, NaN never does, and the index equals the reference's."""
    gen = torch.Generator().manual_seed(6)
    sr = _rand(gen, 1, 3, 8, 8)  # k = 2: 16 patches per 8 x 8 image
    noise = [_rand(gen, 1, 3, 8, 8) for _ in range(7)]
    nan_image = torch.full_like(sr, float("nan"))
    levels = [noise[0], *noise[1:4], nan_image, sr.clone(), *noise[4:], sr.clone()]  # M = 160
    index = ops.gram_select(sr, levels, 2, "global", backend="triton")
    n = 16
    assert torch.equal(index.flatten(), 5 * n + torch.arange(n, device=DEVICE))  # image 5 beats image 9
    levels[5] = noise[1]  # now only the copy at image 9 (rows 144..159, the last tile) is exact
    index = ops.gram_select(sr, levels, 2, "global", gt_weight=0.5, backend="triton")
    expected = ref.gram_select(sr.cpu(), [x.cpu() for x in levels], 2, "global", 0.5)
    assert torch.equal(index.cpu(), expected)
    all_nan = ops.gram_select(nan_image, [nan_image, nan_image[..., :4]], 2, "global", backend="triton")
    assert torch.equal(all_nan, torch.zeros_like(all_nan))  # every score NaN: index 0


def test_global_ties_across_slots_and_tiles_go_to_the_lowest_row():
    """Exact copies of SR at bank rows 24 + i, 56 + i and 96 + i (M = 112, not a multiple of the candidate
    tile): the copies sit in different slots of the tile, in one tile and across tiles, and the lowest row
    wins; with the ground-truth term the index is the reference's."""
    gen = torch.Generator().manual_seed(8)
    sr = _rand(gen, 1, 3, 8, 8)  # k = 2: 16 patches per 8 x 8 image, 8 per 8 x 4 one
    noise = [_rand(gen, 1, 3, 8, 8) for _ in range(3)]
    narrow = [_rand(gen, 1, 3, 8, 4) for _ in range(2)]
    levels = [noise[0], narrow[0], sr.clone(), noise[1], sr.clone(), noise[2], narrow[1], sr.clone()]
    index = ops.gram_select(sr, levels, 2, "global", backend="triton")
    assert torch.equal(index.flatten(), 24 + torch.arange(16, device=DEVICE))
    index = ops.gram_select(sr, levels, 2, "global", gt_weight=0.5, backend="triton")
    assert torch.equal(index.cpu(), ref.gram_select(sr.cpu(), [x.cpu() for x in levels], 2, "global", 0.5))


def _extreme_image(gen: torch.Generator, threshold: float, h: int, w: int) -> torch.Tensor:
    """Bright and dark halves (0.98 / 0.02, far from any mean) whose local std straddles the threshold."""
    base = torch.full((1, 3, h, w), 0.98, dtype=torch.float64)
    base[..., w // 2 :] = 0.02
    scale = threshold * torch.exp(torch.randn(1, 1, h, w, generator=gen, dtype=torch.float64) * 0.3)
    return (base + torch.randn(1, 1, h, w, generator=gen, dtype=torch.float64) * scale).float()  # grey noise


@pytest.mark.parametrize("mode", ["grid", "sliding"])
def test_mask_precision_near_threshold_far_from_the_mean(mode):
    """std = 0.005 at values near 0 and 1: float32 raw moments would miss by ~1e-3 relative."""
    gen = torch.Generator().manual_seed(7)
    x = _extreme_image(gen, 0.005, 10, 96)
    mask = ops.texture_mask(x.to(DEVICE), 4, 0.005, (1, 3), mode, 5, backend="triton").cpu()
    y = ref.luminance(x.double())
    std = ref._grid_std(y, 4, (1, 3)) if mode == "grid" else ref._sliding_std(y, 5)
    decided = (std / 0.005 - 1).abs() > 1e-4
    assert decided.float().mean() > 0.98 and 0.2 < mask.mean() < 0.8
    assert torch.equal(mask[decided], (std > 0.005).float()[decided])


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the interpreter's inf - inf
def test_sliding_mask_nan_and_inf_leave_the_window():
    """Windows holding a NaN or inf are NaN; windows after them (same running sums) are exact again."""
    gen = torch.Generator().manual_seed(8)
    x = 0.5 + 0.02 * torch.randn(2, 3, 12, 20, generator=gen)
    x[0, 1, 3, 4] = float("nan")
    x[1, 0, 8, 15] = float("inf")
    x[1, 2, 0, 0] = float("-inf")
    mask = ops.texture_mask(x.to(DEVICE), threshold=0.02, mode="sliding", window=5, backend="triton").cpu()
    expected = ref.texture_mask(x, 4, 0.02, (0, 0), "sliding", 5)
    assert torch.equal(torch.isnan(mask), torch.isnan(expected))
    assert torch.isnan(mask).sum() == 25 + 25 + 9
    finite = ~torch.isnan(expected)
    assert torch.equal(mask[finite], expected[finite])


# -------------------------------------------------------------------------------------- full size (GPU)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("scope", ["local", "global"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_full_size_texture_loss_matches_reference(scope, dtype):
    """The paper's batch: B = 8, 192 x 192 RGB, K = 6 local candidates (global: HR, HR/2, HR/4, 4 warps)."""
    gen = torch.Generator().manual_seed(9)
    sr = _rand(gen, 8, 3, 192, 192, dtype=dtype).requires_grad_()
    if scope == "local":
        candidates = _rand(gen, 8, 6, 3, 192, 192, dtype=dtype)
    else:
        candidates = [_rand(gen, 8, 3, s, s, dtype=dtype) for s in (192, 96, 48, 192, 192, 192, 192)]
    gt_weight = 0.0 if scope == "local" else 1.0
    loss = ops.gram_texture_loss(sr, candidates, scope=scope, gt_weight=gt_weight, reduction="none", backend="triton")
    sr_ref = sr.detach().clone().requires_grad_()
    expected = ref.texture_loss(sr_ref, candidates, 4, scope, gt_weight, "gram", "mse")
    index = ops.gram_select(sr.detach(), candidates, scope=scope, gt_weight=gt_weight, backend="triton")
    same = index == ref.gram_select(sr.detach(), candidates, 4, scope, gt_weight)
    assert same.float().mean() > 0.99
    tol = 2e-5 if dtype == torch.float32 else 1e-4
    torch.testing.assert_close(loss.detach()[same], expected.detach()[same], rtol=tol, atol=tol)
    upstream = torch.rand(loss.shape, generator=gen).to(DEVICE)
    loss.backward(upstream)
    expected.backward(upstream)
    pixels = same.repeat_interleave(4, 1).repeat_interleave(4, 2)[:, None].expand_as(sr)
    grad_tol = 1e-4 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(sr.grad.float()[pixels], sr_ref.grad.float()[pixels], rtol=grad_tol, atol=grad_tol)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(("mode", "threshold", "window"), [("grid", 0.005, 11), ("sliding", 0.025, 11)])
def test_full_size_masks_match_reference(mode, threshold, window):
    gen = torch.Generator().manual_seed(10)
    noise = torch.randn(8, 3, 192, 192, generator=gen)
    scale = threshold * torch.exp(torch.randn(8, 1, 192, 192, generator=gen) * 0.7)
    hr = (0.5 + noise * scale).to(DEVICE)
    sr = _rand(gen, 8, 3, 192, 192).requires_grad_()
    offset = (1, 3)
    sr_m, hr_m = ops.mask_pair(sr, hr, 4, threshold, offset, mode, window, backend="triton")
    mask = ops.texture_mask(hr, 4, threshold, offset, mode, window, backend="triton")
    y = ref.luminance(hr.double())
    std = ref._grid_std(y, 4, offset) if mode == "grid" else ref._sliding_std(y, window)
    decided = (std / threshold - 1).abs() > 1e-4
    assert torch.equal(mask[decided], (std > threshold).float()[decided])
    assert torch.equal(sr_m, sr.detach() * mask) and torch.equal(hr_m, hr * mask)
    sr_m.sum().backward()
    assert torch.equal(sr.grad, mask.expand_as(sr))


def test_interpreter_flag_matches_environment():
    """The interpreter runs exactly when TRITON_INTERPRET=1 was set before the kernels were imported."""
    from gramgan import kernels

    if DEVICE.type == "cpu":
        assert kernels.INTERPRET and os.environ.get("TRITON_INTERPRET") == "1"


_COMPILE_SCRIPT = r"""
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from gramgan.kernels import gram, texture_loss as tl_, texture_loss_sampled as ts, texture_mask as tm

FLOATS = {"gt_weight", "threshold", "inv_n", "inv_n1"}
POINTERS = {"idx_ptr": "*i64", "scratch_ptr": "*fp64", "y_ptr": "*fp64", "res_ptr": "*fp32", "loss_ptr": "*fp32",
            "th_ptr": "*fp32", "grid_ptr": "*fp32", "up_ptr": "*fp32", "sr_pairs_ptr": "*fp32", "bank_ptr": "*fp32"}
patch = dict(PATCH=4, C=3, PP=8, F64=False)
cases = [
    (gram.patch_gram_fwd_kernel, dict(PATCH=4, C=3, WIDTH=16, PAIRS=False, F64=False)),
    (gram.patch_gram_fwd_kernel, dict(PATCH=4, C=3, WIDTH=8, PAIRS=True, F64=False)),
    (gram.patch_gram_bwd_kernel, patch),
    (tl_.local_select_kernel, dict(patch, USE_GT=True, LOSS=1, L1=False)),
    (tl_.local_select_kernel, dict(patch, USE_GT=False, LOSS=2, L1=True)),
    (tl_.global_select_kernel, dict(C=3, F64=False, USE_GT=True, GRAM_LOSS=True, L1=False)),
    (tl_.loss_at_index_kernel, dict(patch, TARGET_GRAM=False, L1=True)),
    (tl_.texture_bwd_kernel, dict(patch, TARGET_GRAM=False, L1=True)),
    (tl_.residual_bwd_kernel, dict(patch, TARGET_GRAM=True, L1=False)),
    (tl_.residual_bwd_kernel, dict(patch, TARGET_GRAM=False, L1=True)),
    (ts.sampled_select_kernel, dict(patch, USE_GT=False, TARGET_GRAM=True, L1=False)),
    (ts.sampled_select_kernel, dict(patch, USE_GT=True, TARGET_GRAM=False, L1=True)),
    (tm.mask_grid_kernel, dict(PATCH=4, C=3, F64=False, MODE=1)),
    (tm.luminance_plane_kernel, dict(C=3, F64=True)),
    (tm.sliding_rows_kernel, dict(F64=True)),
    (tm.sliding_cols_kernel, dict(C=3, F64=True, IO64=False, MODE=1)),
]
for kernel, constexprs in cases:
    config = kernel.configs[-1]  # the largest tile
    constexprs = dict(constexprs, **config.kwargs)
    signature = {
        name: "constexpr" if name in constexprs else POINTERS.get(name, "*bf16" if name.endswith("_ptr") else
                                                                   "fp32" if name in FLOATS else "i32")
        for name in kernel.fn.arg_names
    }
    source = ASTSource(fn=kernel.fn, signature=signature, constexprs=constexprs)
    triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": config.num_warps})
print("compiled", len(cases))
"""


@pytest.mark.slow
def test_kernels_compile_for_hopper_without_a_gpu():
    """The interpreter accepts code the GPU compiler rejects: compile the main kernels for sm_90 (no GPU
    needed, in a process without TRITON_INTERPRET), bfloat16 inputs, the largest autotuning tile."""
    import subprocess

    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", _COMPILE_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "compiled 16" in done.stdout, done.stderr[-3000:]
