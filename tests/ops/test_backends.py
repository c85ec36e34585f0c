"""Every fused backend against the reference, on fresh random inputs (one file for all backends).

The `backend` and `device` fixtures (conftest.py) run each test once per backend that can run here.
Selections are compared by score, not index, where two candidates are within rounding of each other.
"""

from __future__ import annotations

import pytest
import torch

import gramgan.ops as ops
from gramgan.ops import reference as ref

# (B, C, H, W, k, K): B = 1, non-square, K = 1, k = 2, 4, 8, C = 1..4; small enough for the Triton interpreter.
SHAPES = [
    (1, 3, 8, 8, 4, 1),
    (2, 3, 8, 12, 4, 3),
    (2, 1, 16, 8, 2, 2),
    (1, 3, 16, 16, 8, 2),
    (3, 4, 8, 8, 4, 2),
    (1, 2, 4, 6, 2, 4),
]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
TOL = {torch.float32: 1e-5, torch.float16: 1e-5, torch.bfloat16: 1e-5, torch.float64: 1e-10}


def rand(rng: torch.Generator, *shape: int, dtype=torch.float32, device="cpu") -> torch.Tensor:
    return torch.rand(*shape, generator=rng).to(device=device, dtype=dtype)


def local_case(rng, b, c, h, w, kk, dtype, device):
    sr = rand(rng, b, c, h, w, dtype=dtype, device=device)
    candidates = rand(rng, b, kk, c, h, w, dtype=dtype, device=device)
    return sr, candidates


def global_case(rng, b, c, h, w, k, dtype, device):
    """GT of SR size, a smaller level and an odd-sized one (all multiples of k)."""
    sr = rand(rng, b, c, h, w, dtype=dtype, device=device)
    sizes = [(h, w), (max(k, h // 2 // k * k), max(k, w // 2 // k * k)), (k, 3 * k)]
    return sr, [rand(rng, b, c, hh, ww, dtype=dtype, device=device) for hh, ww in sizes]


def reference_scores(sr, candidates, k, scope, gt_weight) -> torch.Tensor:
    """All scores (B, N, K or M) by the definition, float64."""
    g_sr = ref.patch_gram(sr.double(), k).flatten(1, 2)
    if scope == "local":
        g_cand = ref.patch_gram(candidates.double().flatten(0, 1), k)
        g_cand = g_cand.reshape(sr.shape[0], -1, *g_cand.shape[1:]).flatten(2, 3).transpose(1, 2)
        g_gt = g_cand[:, :, :1]
    else:
        g_cand = torch.cat([ref.patch_gram(x.double(), k).flatten(1, 2) for x in candidates], 1)[:, None]
        g_gt = ref.patch_gram(candidates[0].double(), k).flatten(1, 2)[:, :, None]
    d_sr = (g_sr[:, :, None] - g_cand).square().sum((-2, -1))
    d_gt = (g_gt - g_cand).square().sum((-2, -1))
    return d_sr + gt_weight * d_gt


def assert_selection_optimal(index, sr, candidates, k, scope, gt_weight, rtol=1e-4):
    """The chosen candidate's score is the minimum up to rounding (ties within rtol accepted)."""
    scores = reference_scores(sr.cpu(), _cpu(candidates), k, scope, gt_weight)
    flat = index.cpu().flatten(1)
    assert flat.min() >= 0 and flat.max() < scores.shape[-1]
    chosen = scores.gather(2, flat[..., None]).squeeze(-1)
    best = scores.min(dim=2).values
    slack = rtol * (best.abs() + scores.mean(dim=2)) + 1e-12
    assert torch.all(chosen <= best + slack), (chosen - best).max()


def _cpu(candidates):
    return candidates.cpu() if isinstance(candidates, torch.Tensor) else [x.cpu() for x in candidates]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_patch_gram_forward_backward(backend, device, rng, shape, dtype):
    b, c, h, w, k, _ = shape
    x = rand(rng, b, c, h, w, dtype=dtype, device=device).requires_grad_()
    x_ref = x.detach().cpu().requires_grad_()
    out = ops.patch_gram(x, k, backend=backend)
    expected = ref.patch_gram(x_ref, k)
    assert out.shape == (b, h // k, w // k, c, c) and out.dtype == torch.float32
    torch.testing.assert_close(out.cpu(), expected, rtol=TOL[dtype], atol=TOL[dtype])
    upstream = rand(rng, *out.shape) - 0.5
    out.backward(upstream.to(device))
    expected.backward(upstream)
    assert x.grad.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(x.grad.cpu().float(), x_ref.grad.float(), rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("gt_weight", [0.0, 1.0])
def test_gram_select_local_is_optimal(backend, device, rng, shape, gt_weight):
    b, c, h, w, k, kk = shape
    sr, candidates = local_case(rng, b, c, h, w, kk, torch.float32, device)
    index = ops.gram_select(sr, candidates, k, gt_weight=gt_weight, backend=backend)
    assert index.shape == (b, h // k, w // k) and index.dtype == torch.long
    assert_selection_optimal(index, sr, candidates, k, "local", gt_weight)
    agree = index.cpu() == ref.gram_select(sr.cpu(), candidates.cpu(), k, "local", gt_weight)
    assert agree.float().mean() > 0.9


@pytest.mark.parametrize("shape", SHAPES[:4])
@pytest.mark.parametrize("gt_weight", [0.0, 1.0])
def test_gram_select_global_is_optimal(backend, device, rng, shape, gt_weight):
    b, c, h, w, k, _ = shape
    sr, candidates = global_case(rng, b, c, h, w, k, torch.float32, device)
    index = ops.gram_select(sr, candidates, k, scope="global", gt_weight=gt_weight, backend=backend)
    assert index.shape == (b, h // k, w // k)
    assert_selection_optimal(index, sr, candidates, k, "global", gt_weight)


@pytest.mark.parametrize("scope", ["local", "global"])
def test_selection_exact_match_and_ties(backend, device, rng, scope):
    """SR equal to one candidate picks it; duplicates of the best candidate go to the lowest index."""
    b, c, h, w, k = 2, 3, 8, 12, 4
    sr = rand(rng, b, c, h, w, device=device)
    others = [rand(rng, b, c, h, w, device=device) for _ in range(2)]
    if scope == "local":
        exact = torch.stack([others[0], others[1], sr.clone(), sr.clone()], dim=1)  # 2 and 3 tie at 0
        tied = torch.stack([sr.clone()] * 3, dim=1)
        expect_exact = 2
    else:
        exact = [others[0], others[1], sr.clone(), sr.clone()]
        tied = [sr.clone(), sr.clone()]
        expect_exact = None  # the patch of image 2 at the same place: index 2*N + i
    index = ops.gram_select(sr, exact, k, scope=scope, backend=backend).cpu()
    n = (h // k) * (w // k)
    if scope == "local":
        assert torch.all(index == expect_exact)
    else:
        position = torch.arange(n).reshape(1, h // k, w // k)
        assert index.min() >= 0 and index.max() < len(exact) * n  # a patch of the list, before gather reads it
        chosen_scores = reference_scores(sr.cpu(), _cpu(exact), k, scope, 0.0).gather(2, index.flatten(1)[..., None])
        assert torch.all(chosen_scores == 0)
        # Same-place patches of images 2 and 3 tie at 0; the lowest index of any zero-score patch wins.
        scores = reference_scores(sr.cpu(), _cpu(exact), k, scope, 0.0)
        first_zero = (scores == 0).float().argmax(dim=2).reshape(index.shape)
        assert torch.all(index == first_zero)
        assert torch.all(first_zero <= 2 * n + position)
    tied_index = ops.gram_select(sr, tied, k, scope=scope, backend=backend).cpu()
    if scope == "local":
        assert torch.all(tied_index == 0)
    else:
        scores = reference_scores(sr.cpu(), _cpu(tied), k, scope, 0.0)
        first_min = (scores == scores.min(dim=2, keepdim=True).values).float().argmax(dim=2)
        assert torch.all(tied_index.flatten(1) == first_min)


def test_local_selection_over_more_candidates_than_a_block_has_threads(backend, device, rng):
    """K = 131 local candidates, more than the 128 threads of a CUDA block, whose threads then score
    several candidates each: the selection is optimal and the loss the reference's; SR equal to candidate
    129 (the second of its thread) selects it; copies of SR at 5 and 133 (both thread 5's) and at 70
    (thread 70's) tie, and 5 wins."""
    b, c, h, w, k, count = 1, 3, 8, 8, 4, 131
    sr = rand(rng, b, c, h, w, device=device)
    candidates = rand(rng, b, count, c, h, w, device=device)
    index = ops.gram_select(sr, candidates, k, scope="local", backend=backend).cpu()
    assert_selection_optimal(index, sr.cpu(), candidates.cpu(), k, "local", 0.0)
    loss = ops.gram_texture_loss(sr, candidates, k, reduction="none", backend=backend).cpu()
    expected = ops.gram_texture_loss(sr.cpu(), candidates.cpu(), k, reduction="none", backend="reference")
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    exact = candidates.clone()
    exact[:, 129] = sr
    assert torch.all(ops.gram_select(sr, exact, k, scope="local", backend=backend).cpu() == 129)
    tied = torch.cat([candidates, candidates[:, :3]], dim=1)  # K = 134
    tied[:, [70, 133, 5]] = sr[:, None]
    assert torch.all(ops.gram_select(sr, tied, k, scope="local", backend=backend).cpu() == 5)


CASES = [
    ("local", "gram", "mse"),
    ("local", "gram", "l1"),
    ("local", "pixel", "mse"),
    ("local", "pixel", "l1"),
    ("global", "gram", "mse"),
    ("global", "pixel", "l1"),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
@pytest.mark.parametrize("dtype", DTYPES)
def test_texture_loss_matches_reference(backend, device, rng, shape, case, dtype):
    """Per-patch loss and gradient equal the reference wherever both chose the same candidate."""
    scope, target, criterion = case
    b, c, h, w, k, kk = shape
    gt_weight = float(torch.randint(0, 2, (1,), generator=rng))
    if scope == "local":
        sr, candidates = local_case(rng, b, c, h, w, kk, dtype, device)
    else:
        sr, candidates = global_case(rng, b, c, h, w, k, dtype, device)
    sr.requires_grad_()
    sr_ref = sr.detach().cpu().requires_grad_()
    loss = ops.gram_texture_loss(
        sr, candidates, k, scope, gt_weight, target, criterion, reduction="none", backend=backend
    )
    expected = ref.texture_loss(sr_ref, _cpu(candidates), k, scope, gt_weight, target, criterion)
    assert loss.shape == (b, h // k, w // k) and loss.dtype == torch.float32
    index = ops.gram_select(sr.detach(), candidates, k, scope, gt_weight, backend=backend).cpu()
    same = index == ref.gram_select(sr_ref.detach(), _cpu(candidates), k, scope, gt_weight)
    assert same.float().mean() > 0.8
    tol = 2e-5 if dtype == torch.float32 else 1e-4
    torch.testing.assert_close(loss.detach().cpu()[same], expected.detach()[same], rtol=tol, atol=tol)
    upstream = rand(rng, *loss.shape)
    loss.backward(upstream.to(device))
    expected.backward(upstream)
    pixel_same = same.repeat_interleave(k, 1).repeat_interleave(k, 2)[:, None].expand_as(sr_ref)
    grad_tol = 1e-4 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(
        sr.grad.cpu().float()[pixel_same], sr_ref.grad.float()[pixel_same], rtol=grad_tol, atol=grad_tol
    )


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_texture_loss_reductions_and_gradient_only_to_sr(backend, device, rng, reduction):
    sr, candidates = local_case(rng, 2, 3, 8, 8, 3, torch.float32, device)
    sr.requires_grad_()
    candidates.requires_grad_()
    loss = ops.gram_texture_loss(sr, candidates, reduction=reduction, backend=backend)
    per_patch = ops.gram_texture_loss(sr, candidates, reduction="none", backend=backend)
    expected = per_patch.mean() if reduction == "mean" else per_patch.sum()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert candidates.grad is None


def test_texture_loss_k1_is_distance_to_ground_truth(backend, device, rng):
    sr, candidates = local_case(rng, 2, 3, 8, 12, 1, torch.float32, device)
    loss = ops.gram_texture_loss(sr, candidates, reduction="none", backend=backend).cpu()
    g = ref.patch_gram(sr.cpu(), 4) - ref.patch_gram(candidates[:, 0].cpu(), 4)
    torch.testing.assert_close(loss, g.square().mean((-2, -1)), rtol=1e-5, atol=1e-7)


def test_non_contiguous_inputs(backend, device, rng):
    base = rand(rng, 2, 3, 12, 8, device=device)
    sr = base.transpose(-1, -2)  # (2, 3, 8, 12), not contiguous
    candidates = rand(rng, 3, 2, 3, 8, 12, device=device).transpose(0, 1)
    assert not sr.is_contiguous() and not candidates.is_contiguous()
    loss = ops.gram_texture_loss(sr, candidates, reduction="none", backend=backend)
    expected = ref.texture_loss(sr.cpu(), candidates.cpu(), 4, "local", 0.0, "gram", "mse")
    torch.testing.assert_close(loss.cpu(), expected, rtol=2e-5, atol=1e-7)
    gram = ops.patch_gram(sr, 4, backend=backend)
    torch.testing.assert_close(gram.cpu(), ref.patch_gram(sr.cpu(), 4), rtol=1e-5, atol=1e-7)
    mask = ops.texture_mask(sr, offset=(1, 3), backend=backend)
    torch.testing.assert_close(mask.cpu(), ref.texture_mask(sr.cpu(), 4, 0.005, (1, 3), "grid", 11))


def test_nan_in_nan_out(backend, device, rng):
    sr, candidates = local_case(rng, 1, 3, 8, 8, 2, torch.float32, device)
    sr[0, 1, 5, 6] = float("nan")  # inside patch (1, 1)
    loss = ops.gram_texture_loss(sr, candidates, reduction="none", backend=backend).cpu()
    assert torch.isnan(loss[0, 1, 1]) and torch.isfinite(loss[0, 0, 0])
    assert torch.isnan(ops.gram_texture_loss(sr, candidates, backend=backend))
    gram = ops.patch_gram(sr, backend=backend).cpu()
    assert torch.isnan(gram[0, 1, 1, 1]).all() and torch.isfinite(gram[0, 0, 0]).all()
    mask = ops.texture_mask(sr, backend=backend).cpu()
    assert torch.isnan(mask[0, 0, 4:8, 4:8]).all() and not torch.isnan(mask[0, 0, :4, :4]).any()


def test_inf_in_inf_out(backend, device, rng):
    """An infinite pixel gives an infinite (not NaN) Gram entry and patch loss, for every C."""
    for channels in (1, 3):
        sr, candidates = local_case(rng, 1, channels, 8, 8, 2, torch.float32, device)
        sr[0, 0, 1, 2] = float("inf")  # inside patch (0, 0)
        gram = ops.patch_gram(sr, backend=backend).cpu()
        assert gram[0, 0, 0, 0, 0] == float("inf") and not torch.isnan(gram[0, 0, 0]).any()
        loss = ops.gram_texture_loss(sr, candidates, reduction="none", backend=backend).cpu()
        assert loss[0, 0, 0] == float("inf") and torch.isfinite(loss[0, 1, 1])


def near_threshold_image(rng, b, c, h, w, threshold, dtype, device):
    """Values whose local std is spread around the threshold (within a factor of ~3)."""
    noise = torch.randn(b, c, h, w, generator=rng)
    scale = threshold * torch.exp(torch.randn(b, 1, h, w, generator=rng) * 0.7)
    return (0.5 + noise * scale).to(device=device, dtype=dtype)


# Relative distance to the threshold within which backends may round either way (float32 luminance).
THRESHOLD_BAND = 1e-4


def undecided(std, threshold):
    """Pixels whose float64 std lies within rounding of the threshold."""
    return (std - threshold).abs() <= THRESHOLD_BAND * threshold


def clear_image(rng, make, std_of, threshold):
    """``(x, std)`` from ``make()``, redrawn until at most 10% of its pixels are undecided, so that a tiny
    image with one cell at the threshold cannot make the comparison below vacuous."""
    for _ in range(20):
        x = make()
        std = std_of(x)
        if undecided(std, threshold).float().mean() < 0.1:
            return x, std
    raise AssertionError("could not draw an image whose std is clear of the threshold")


def assert_mask_matches(mask, x, std, threshold):
    """Equal to the reference except where the float64 std is within rounding of the threshold."""
    expected = (std > threshold).to(mask.dtype)
    decided = ~undecided(std, threshold)
    assert mask.shape == (x.shape[0], 1, *x.shape[-2:]) and mask.dtype == x.dtype
    assert torch.equal(mask.cpu()[decided], expected[decided])
    assert decided.float().mean() > 0.9


@pytest.mark.parametrize("hw", [(8, 8), (13, 10), (5, 16)])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("dtype", DTYPES)
def test_texture_mask_grid(backend, device, rng, hw, channels, dtype):
    k = 4
    offset = tuple(int(o) for o in torch.randint(0, k, (2,), generator=rng))
    x, std = clear_image(
        rng,
        lambda: near_threshold_image(rng, 2, channels, *hw, 0.005, dtype, device),
        lambda x: ref._grid_std(ref.luminance(x.cpu().double()), k, offset),
        0.005,
    )
    mask = ops.texture_mask(x, k, 0.005, offset, backend=backend)
    assert_mask_matches(mask, x, std, 0.005)


@pytest.mark.parametrize("window", [1, 3, 11])
@pytest.mark.parametrize("dtype", DTYPES)
def test_texture_mask_sliding(backend, device, rng, window, dtype):
    x, std = clear_image(
        rng,
        lambda: near_threshold_image(rng, 2, 3, 14, 12, 0.025, dtype, device),
        lambda x: ref._sliding_std(ref.luminance(x.cpu().double()), window),
        0.025,
    )
    mask = ops.texture_mask(x, threshold=0.025, mode="sliding", window=window, backend=backend)
    assert_mask_matches(mask, x, std, 0.025)


@pytest.mark.parametrize("mode", ["grid", "sliding"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_mask_pair_forward_backward(backend, device, rng, mode, dtype):
    hr = near_threshold_image(rng, 2, 3, 12, 12, 0.005, dtype, device)
    sr = rand(rng, 2, 3, 12, 12, dtype=dtype, device=device).requires_grad_()
    sr_m, hr_m = ops.mask_pair(sr, hr, offset=(2, 1), mode=mode, window=5, backend=backend)
    mask = ops.texture_mask(hr, offset=(2, 1), mode=mode, window=5, backend=backend)
    assert sr_m.dtype == dtype and hr_m.dtype == dtype
    torch.testing.assert_close(sr_m, sr.detach() * mask, rtol=0, atol=0)
    torch.testing.assert_close(hr_m, hr * mask, rtol=0, atol=0)
    assert 0 < mask.float().mean() < 1
    upstream = torch.randn(sr.shape, generator=rng).to(device=device, dtype=dtype)
    sr_m.backward(upstream)
    torch.testing.assert_close(sr.grad, upstream * mask, rtol=0, atol=0)


def test_empty_batch(backend, device):
    sr = torch.zeros(0, 3, 8, 8, device=device)
    assert ops.patch_gram(sr, backend=backend).shape == (0, 2, 2, 3, 3)
    assert ops.gram_select(sr, torch.zeros(0, 2, 3, 8, 8, device=device), backend=backend).shape == (0, 2, 2)
    assert ops.gram_texture_loss(sr, torch.zeros(0, 2, 3, 8, 8, device=device), backend=backend).item() == 0
    assert ops.texture_mask(sr, backend=backend).shape == (0, 1, 8, 8)


def test_deterministic(backend, device, rng):
    sr, candidates = local_case(rng, 2, 3, 16, 8, 4, torch.float32, device)
    runs = []
    for _ in range(2):
        x = sr.clone().requires_grad_()
        loss = ops.gram_texture_loss(x, candidates, backend=backend)
        loss.backward()
        runs.append((loss.detach(), x.grad))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
