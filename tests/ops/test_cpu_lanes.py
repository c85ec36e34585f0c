"""The cpu backend's vector kernels: strips of patches, one per vector lane, and the blocked global search.

test_backends.py compares every backend with the reference on small shapes; here are the cases those do
not reach: patch-rows that are not a multiple of a strip's patches (the padded last strip), global searches over
several SR blocks and thousands of candidates with the minimum at the very end, exact ties between
far-apart candidates, NaN and +inf candidates, and the baseline (non-AVX2) build of the kernels, run in
a subprocess with GRAMGAN_CPU_SIMD=generic. Global selections are checked against float64 scores
computed directly as sums of squared differences.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import gramgan.ops as ops
from gramgan.ops import _cpp
from gramgan.ops import reference as ref

pytestmark = pytest.mark.skipif(_cpp.extension_error() is not None, reason=str(_cpp.extension_error()))


def _rand(seed: int, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _grams64(x: torch.Tensor, k: int) -> torch.Tensor:
    """(B, N, C*C) float64 Grams of x's patches in flat order."""
    return ref.patch_gram(x.double(), k).flatten(1, 2).flatten(2)


def global_scores64(sr: torch.Tensor, levels: list[torch.Tensor], k: int, gt_weight: float) -> torch.Tensor:
    """(B, N, M) float64 scores, each a direct sum of squared differences, NaN as +inf (+inf kept)."""
    g_sr, g_gt = _grams64(sr, k), _grams64(levels[0], k)
    bank = torch.cat([_grams64(x, k) for x in levels], 1)[:, None]
    scores = (g_sr[:, :, None] - bank).square().sum(-1)
    if gt_weight:
        scores = scores + gt_weight * (g_gt[:, :, None] - bank).square().sum(-1)
    inf = torch.tensor(float("inf"), dtype=scores.dtype)
    return torch.where(scores.isnan(), inf, torch.where(scores == inf, torch.finfo(scores.dtype).max, scores))


def assert_global_exact(index: torch.Tensor, scores: torch.Tensor, margin: float = 1e-3) -> None:
    """The chosen score is the float64 minimum within float32 rounding; where the minimum is separated
    from the runner-up by `margin` (relative), the index is the float64 argmin."""
    flat = index.flatten(1)
    chosen = scores.gather(2, flat[..., None]).squeeze(-1)
    two = scores.topk(2, dim=2, largest=False)
    best, second = two.values[..., 0], two.values[..., 1]
    assert torch.all(chosen <= best + 1e-5 * best.abs() + 1e-9), (chosen - best).max()
    separated = second - best > margin * (best.abs() + 1e-6)
    assert separated.float().mean() > 0.5  # the exact-index check below is not vacuous
    assert torch.equal(flat[separated], scores.argmin(dim=2)[separated])


def _levels(seed: int, b: int, c: int, h: int, w: int, k: int) -> list[torch.Tensor]:
    """GT of SR size, a half-size level and an odd-sized one (all multiples of k)."""
    sizes = [(h, w), (max(k, h // 2 // k * k), max(k, w // 2 // k * k)), (3 * k, 5 * k)]
    return [_rand(seed + i, b, c, hh, ww) for i, (hh, ww) in enumerate(sizes)]


# (B, C, H, W, k): patch-rows of 1, 7, 9, 11, 13 patches (the last strip padded), B = 1, non-square.
GLOBAL_SHAPES = [(1, 3, 52, 44, 4), (2, 3, 24, 26, 2), (1, 2, 64, 56, 8), (1, 1, 20, 36, 4), (2, 4, 16, 4, 4)]


@pytest.mark.parametrize("shape", GLOBAL_SHAPES)
@pytest.mark.parametrize("gt_weight", [0.0, 1.0])
def test_global_selection_matches_float64_direct_scores(shape, gt_weight):
    b, c, h, w, k = shape
    sr, levels = _rand(0, b, c, h, w), _levels(1, b, c, h, w, k)
    index = ops.gram_select(sr, levels, k, scope="global", gt_weight=gt_weight, backend="cpu")
    assert_global_exact(index, global_scores64(sr, levels, k, gt_weight))


def test_global_minimum_in_the_last_candidate_and_far_ties():
    """Thousands of candidates, several SR blocks: the exact copy of SR in the last level wins (score 0),
    and with a second copy far earlier in the list the earlier one wins (lowest index)."""
    b, c, h, w, k = 2, 3, 44, 76, 4  # N = 11 * 19 = 209 patches: several blocks, a padded last strip
    sr = _rand(0, b, c, h, w)
    big = [_rand(i, b, c, 96, 64) for i in range(1, 4)]  # 3 x 384 candidates
    n = (h // k) * (w // k)
    position = torch.arange(n).reshape(1, h // k, w // k)
    last = [_rand(9, b, c, h, w), *big, sr.clone()]
    index = ops.gram_select(sr, last, k, scope="global", backend="cpu")
    offset = sum((x.shape[2] // k) * (x.shape[3] // k) for x in last[:-1])
    assert torch.equal(index, (offset + position).expand(b, -1, -1))
    tied = [_rand(9, b, c, h, w), sr.clone(), *big, sr.clone()]
    index = ops.gram_select(sr, tied, k, scope="global", backend="cpu")
    assert torch.equal(index, (n + position).expand(b, -1, -1))


def test_global_nan_never_wins_and_inf_beats_nan():
    b, c, h, w, k = 1, 3, 16, 40, 4
    sr = _rand(0, b, c, h, w)
    gt, other = _rand(1, b, c, h, w), _rand(2, b, c, 8, 12)
    gt[..., :4, :8] = float("nan")  # candidates 0, 1 (and every SR patch's GT term there) are NaN
    other[..., 4:, :] = float("nan")
    index = ops.gram_select(sr, [gt, other], k, scope="global", backend="cpu")
    assert_global_exact(index, global_scores64(sr, [gt, other], k, 0.0))
    nan, inf = torch.full((b, c, h, w), float("nan")), torch.full((b, c, 4, 8), float("inf"))
    index = ops.gram_select(sr, [nan, inf], k, scope="global", backend="cpu")
    assert torch.all(index == (h // k) * (w // k))  # the first +inf candidate beats every NaN one
    index = ops.gram_select(sr, [nan, nan[..., :8, :8]], k, scope="global", backend="cpu")
    assert torch.all(index == 0)  # all NaN: the first candidate


# (B, C, H, W, k, K): patch-rows of 1, 7, 9, 11, 13 and 3 patches, every k and C.
LOCAL_SHAPES = [
    (1, 3, 8, 4, 4, 3),
    (2, 3, 12, 28, 4, 6),
    (1, 1, 6, 18, 2, 4),
    (1, 2, 16, 88, 8, 2),
    (2, 4, 8, 52, 4, 3),
    (1, 3, 24, 48, 8, 5),
]


@pytest.mark.parametrize("shape", LOCAL_SHAPES)
@pytest.mark.parametrize(("target", "criterion"), [("gram", "mse"), ("gram", "l1"), ("pixel", "mse")])
def test_local_loss_and_gradient_on_padded_strips(shape, target, criterion):
    b, c, h, w, k, kk = shape
    sr, cand = _rand(0, b, c, h, w).requires_grad_(), _rand(1, b, kk, c, h, w)
    loss = ops.gram_texture_loss(sr, cand, k, "local", 0.5, target, criterion, "none", backend="cpu")
    (grad,) = torch.autograd.grad(loss.sum(), sr)
    sr64 = sr.detach().double().requires_grad_()
    expected = ref.texture_loss(sr64, cand.double(), k, "local", 0.5, target, criterion)
    (grad64,) = torch.autograd.grad(expected.sum(), sr64)
    torch.testing.assert_close(loss.double(), expected.detach(), rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(grad.double(), grad64, rtol=1e-3, atol=1e-6)


def test_local_ties_and_nan_in_every_lane():
    """Duplicates of SR at candidates 1 and 2 pick 1 in every lane of every strip; a NaN candidate 0
    never wins, an all-NaN stack picks 0."""
    b, c, h, w, k = 2, 3, 8, 52, 4  # 13 patches per row: a full strip and a padded one
    sr = _rand(0, b, c, h, w)
    other = _rand(1, b, c, h, w)
    nan = torch.full_like(sr, float("nan"))
    index = ops.gram_select(sr, torch.stack([nan, sr, sr.clone(), other], 1), k, scope="local", backend="cpu")
    assert torch.all(index == 1)
    index = ops.gram_select(sr, torch.stack([nan, nan], 1), k, scope="local", backend="cpu")
    assert torch.all(index == 0)


BASELINE_SCRIPT = """
import sys, torch
import gramgan.ops as ops
g = torch.Generator().manual_seed(0)
sr = torch.rand(2, 3, 12, 88, generator=g).requires_grad_()
cand = torch.rand(2, 4, 3, 12, 88, generator=g)
levels = [torch.rand(2, 3, 12, 88, generator=g), torch.rand(2, 3, 8, 20, generator=g)]
loss = ops.gram_texture_loss(sr, cand, 4, "local", 0.5, "gram", "mse", "none", backend="cpu")
(grad,) = torch.autograd.grad(loss.sum(), sr)
index = ops.gram_select(sr.detach(), levels, 4, scope="global", gt_weight=1.0, backend="cpu")
sr64 = sr.detach().double().requires_grad_()
levels64 = [x.double() for x in levels]
loss64 = ops.gram_texture_loss(sr64, levels64, 4, "global", 1.0, "gram", "l1", "none", backend="cpu")
(grad64,) = torch.autograd.grad(loss64.sum(), sr64)
sampled = []
for w, magnitude in ((44, 0.2), (72, 0.003), (64, 0.03)):  # every vector path of the samplers, and the tails
    hr, half = torch.rand(2, 3, 16, w, generator=g), torch.rand(2, 3, 8, w // 2, generator=g)
    thetas = torch.eye(2, 3) + magnitude * (2 * torch.rand(2, 3, 2, 3, generator=g) - 1)
    sampled.append(torch.ops.gramgan.texture_loss_sampled(hr + 0.1, hr, half, thetas, 2, 0.0, "pixel", "mse"))
float64 = (loss64.detach(), grad64)
torch.save({"loss": loss.detach(), "grad": grad, "index": index, "sampled": sampled, "float64": float64}, sys.argv[1])
"""


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo (the names __builtin_cpu_supports tests), None off Linux."""
    try:
        with open("/proc/cpuinfo") as info:
            return {flag for line in info if line.startswith("flags") for flag in line.partition(":")[2].split()}
    except OSError:
        return None


_FLAGS = _cpu_flags()
# What the kernels' dispatch checks (csrc/cpu/cpu_common.h) before it takes the AVX2 or the AVX-512 copy
HAS_AVX2 = _FLAGS is not None and {"avx2", "fma"} <= _FLAGS
HAS_AVX512 = HAS_AVX2 and {"avx512f", "avx512dq", "avx512vl", "avx512bw"} <= _FLAGS


@pytest.fixture(scope="module")
def simd_runs(tmp_path_factory):
    """BASELINE_SCRIPT's results per GRAMGAN_CPU_SIMD value (None: unset), each run once in a subprocess."""
    folder, runs = tmp_path_factory.mktemp("simd"), {}

    def run(simd: str | None) -> dict:
        if simd not in runs:
            env = dict(os.environ)
            env.pop("GRAMGAN_CPU_SIMD", None)
            if simd is not None:
                env["GRAMGAN_CPU_SIMD"] = simd
            path = folder / f"{simd or 'default'}.pt"
            subprocess.run([sys.executable, "-c", BASELINE_SCRIPT, str(path)], env=env, check=True, timeout=300)
            runs[simd] = torch.load(path)
        return runs[simd]

    return run


def _assert_sampled_equal(default: dict, other: dict) -> None:
    """The pixel target's residual SR - c*: the chosen candidates' pixels, to the bit."""
    for case, (loss, index, residual) in enumerate(default["sampled"]):
        loss_other, index_other, residual_other = other["sampled"][case]
        assert torch.equal(index, index_other) and torch.equal(residual, residual_other), case
        torch.testing.assert_close(loss, loss_other, rtol=1e-5, atol=1e-8)


@pytest.mark.skipif(not HAS_AVX2, reason="the CPU has no AVX2 + FMA: the default build is the baseline one already")
def test_baseline_build_agrees_with_the_default_one(simd_runs):
    """GRAMGAN_CPU_SIMD=generic runs the kernels compiled for the baseline target (what a CPU without
    AVX2 runs): same selections, losses and gradients up to rounding, and the same warped samples to the
    bit (the vector samplers repeat the scalar one's operations)."""
    default, generic = simd_runs(None), simd_runs("generic")
    assert torch.equal(default["index"], generic["index"])
    torch.testing.assert_close(default["loss"], generic["loss"], rtol=1e-5, atol=1e-8)
    scale = default["grad"].abs().max().item()  # entries that cancel differ by rounding of the largest
    torch.testing.assert_close(default["grad"], generic["grad"], rtol=1e-5, atol=1e-5 * scale)
    for ours, theirs in zip(default["float64"], generic["float64"]):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12 * theirs.abs().max().item())
    _assert_sampled_equal(default, generic)


@pytest.mark.skipif(not HAS_AVX512, reason="the CPU has no AVX-512 F/DQ/VL/BW: the default build is the AVX2 one")
def test_avx2_build_agrees_with_the_avx512_one(simd_runs):
    """GRAMGAN_CPU_SIMD=avx2 caps the kernels at AVX2 (the default takes AVX-512 where the CPU has it),
    with the same results to the bit."""
    default, avx2 = simd_runs(None), simd_runs("avx2")
    # AVX-512 (sixteen float32 patches per vector) and AVX2 (eight) sum the Grams alike
    assert torch.equal(default["loss"], avx2["loss"]) and torch.equal(default["grad"], avx2["grad"])
    assert torch.equal(default["index"], avx2["index"])
    assert all(torch.equal(a, b) for a, b in zip(default["float64"], avx2["float64"]))  # eight lanes vs four
    _assert_sampled_equal(default, avx2)
