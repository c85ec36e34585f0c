"""``gram_texture_loss_sampled``: the local texture loss whose candidates the kernels sample themselves.

Every backend against the materialising path (``reference.sampled_candidates`` then the local texture
loss): same selection (compared by score), same per-patch loss and gradient, on fresh random inputs with
small, large and wrapping warps (reflection), B = 1, non-square, J = 0, k = 2/4/8, C = 1..4, fp16/bf16,
designed ties and NaN; float64 gradcheck and opcheck of the registered ops.
"""

from __future__ import annotations

import pytest
import torch

import gramgan.ops as ops
from gramgan.losses import texture
from gramgan.ops import _dispatch
from gramgan.ops import reference as ref
from tests.ops.test_backends import assert_selection_optimal

# (B, C, H, W, k, J): H and W multiples of 2k; small enough for the Triton interpreter.
SHAPES = [
    (1, 3, 16, 16, 4, 4),
    (2, 3, 8, 24, 4, 2),
    (2, 1, 8, 12, 2, 1),
    (1, 2, 16, 32, 8, 3),
    (3, 4, 8, 8, 2, 0),
]
# Warp magnitudes: the paper's tiny one, a large one, and one whose samples reflect more than once.
MAGNITUDES = [0.003, 0.4, 2.5]
CASES = [("gram", "mse"), ("gram", "l1"), ("pixel", "mse"), ("pixel", "l1")]


def make_case(rng, shape, magnitude, dtype=torch.float32, device="cpu"):
    """``(sr, hr, hr_half, thetas)``: SR near HR so that selections are meaningful."""
    b, c, h, w, _k, j = shape
    hr = torch.rand(b, c, h, w, generator=rng)
    sr = (hr + 0.1 * torch.randn(b, c, h, w, generator=rng)).clamp(0, 1)
    half = torch.rand(b, c, h // 2, w // 2, generator=rng)
    thetas = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]) + magnitude * (
        2 * torch.rand(b, j, 2, 3, generator=rng) - 1
    )
    return tuple(x.to(device=device, dtype=dtype) for x in (sr, hr, half)) + (thetas.to(device),)


def library_ops(backend: str):
    """The ``torch.ops`` namespace of a library backend (None for the reference)."""
    namespace = getattr(_dispatch._table(backend), "namespace", None)
    return None if namespace is None else getattr(torch.ops, namespace)


def selected_index(backend, sr, hr, half, thetas, k, gt_weight):
    """The index the backend's op saves for its backward (the reference's own selection for the reference)."""
    namespace = library_ops(backend)
    if namespace is None:
        candidates = ref.sampled_candidates(hr, half, thetas, k)
        return ref.gram_select(sr.to(candidates.dtype), candidates, k, "local", gt_weight)
    return namespace.texture_loss_sampled(sr, hr, half, thetas, k, gt_weight, "gram", "mse")[1]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("magnitude", MAGNITUDES)
@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_sampled_matches_materialised(backend, device, rng, shape, magnitude, case):
    """Loss and gradient equal the materialising path wherever both chose the same candidate."""
    target, criterion = case
    k = shape[4]
    gt_weight = float(torch.randint(0, 2, (1,), generator=rng))
    sr, hr, half, thetas = make_case(rng, shape, magnitude, device=device)
    sr.requires_grad_()
    loss = ops.gram_texture_loss_sampled(
        sr, hr, half, thetas, k, gt_weight, target, criterion, reduction="none", backend=backend
    )
    candidates = ref.sampled_candidates(hr.cpu(), half.cpu(), thetas.cpu(), k)
    sr_ref = sr.detach().cpu().requires_grad_()
    expected = ref.texture_loss(sr_ref, candidates, k, "local", gt_weight, target, criterion)
    assert loss.shape == expected.shape and loss.dtype == torch.float32

    index = selected_index(backend, sr.detach(), hr, half, thetas, k, gt_weight).cpu()
    assert_selection_optimal(index, sr_ref.detach(), candidates, k, "local", gt_weight)
    same = index == ref.gram_select(sr_ref.detach(), candidates, k, "local", gt_weight)
    assert same.float().mean() > 0.8
    torch.testing.assert_close(loss.detach().cpu()[same], expected.detach()[same], rtol=2e-5, atol=2e-6)

    upstream = torch.rand(loss.shape, generator=rng)
    loss.backward(upstream.to(device))
    expected.backward(upstream)
    pixel_same = same.repeat_interleave(k, 1).repeat_interleave(k, 2)[:, None].expand_as(sr_ref)
    torch.testing.assert_close(sr.grad.cpu()[pixel_same], sr_ref.grad[pixel_same], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("magnitude", MAGNITUDES)
def test_sampled_candidates_are_read_exactly(backend, device, rng, magnitude):
    """SR equal to one candidate selects it everywhere at (float) zero pixel loss: the kernels sample what
    affine_grid + grid_sample give. Many patch-rows (strips shared by several threads), and a width that
    is not a multiple of 8 (the CPU's vector loop has a scalar tail)."""
    shape = (2, 3, 32, 44, 2, 3)
    _, hr, half, thetas = make_case(rng, shape, magnitude, device=device)
    candidates = ref.sampled_candidates(hr.cpu(), half.cpu(), thetas.cpu(), 2)
    # The C++ kernels repeat grid_sample's operations (fused multiply-adds included) to the bit, from the grid
    # affine_grid gives when its matrix product rounds each product and sum on its own, as torch's CPU bmm does
    # here. On other hosts that product may fuse (MKL on the H200 run's Intel Xeon, where the CPU-made
    # reference missed the CUDA samples by 3.5e-12 to 3.1e-11 in pixel loss): a coordinate one ulp off moves
    # a sample by that ulp times the image's slope (docs/ops.md). Triton's compiler contracts its own way.
    tol = 1e-12 if backend in ("cpu", "cuda_emulated") else 1e-10
    for m in range(candidates.shape[1]):
        sr = candidates[:, m].contiguous().to(device)
        loss = ops.gram_texture_loss_sampled(
            sr, hr, half, thetas, 2, 0.0, "pixel", "mse", reduction="none", backend=backend
        )
        index = selected_index(backend, sr, hr, half, thetas, 2, 0.0).cpu()
        assert torch.all(index == m), (m, index)
        assert loss.abs().max().item() <= tol, m


def test_sampled_grid_is_kept_per_size_and_dtype(backend, device, rng):
    """The kernels build affine_grid's base coordinates once per side length, dtype and device and keep
    them: calls that alternate sizes (W and H swapped) and dtypes must each still read their own warps."""
    tol = 1e-12 if backend in ("cpu", "cuda_emulated") else 1e-10  # as in the test above
    for h, w, dtype in [(8, 12, torch.float32), (12, 8, torch.float64), (8, 12, torch.float64), (12, 8, torch.float32)]:
        _, hr, half, thetas = make_case(rng, (1, 2, h, w, 2, 1), 0.4, dtype=dtype, device=device)
        warped = ref.sampled_candidates(hr.cpu(), half.cpu(), thetas.cpu(), 2)[:, 2]
        sr = warped.contiguous().to(device)
        loss = ops.gram_texture_loss_sampled(
            sr, hr, half, thetas, 2, 0.0, "pixel", "mse", reduction="none", backend=backend
        )
        assert loss.abs().max().item() <= tol, (h, w, dtype)


def test_sampled_non_contiguous_inputs(backend, device, rng):
    """Strided views of every input give the result of their contiguous copies."""
    sr, hr, half, thetas = make_case(rng, (2, 3, 16, 24, 4, 3), 0.4, device=device)

    def strided(x):  # the same values, every stride changed
        return x.transpose(-1, -2).contiguous().transpose(-1, -2)[:, torch.arange(x.shape[1] - 1, -1, -1)].flip(1)

    views = [strided(x) for x in (sr, hr, half)] + [thetas.transpose(-1, -2).contiguous().transpose(-1, -2)]
    assert not any(v.is_contiguous() for v in views)
    # Bit for bit, except Triton on a GPU: it compiles each launch for its inputs' strides (unit stride,
    # multiples of 16), and two layouts' code may contract and order the float operations differently
    # (the H200 run: 2.5e-6 relative). A layout bug is off by far more than float32 rounding.
    same = {"rtol": 1e-5, "atol": 1e-8} if backend == "triton" else {"rtol": 0, "atol": 0}
    expected = ops.gram_texture_loss_sampled(sr, hr, half, thetas, reduction="none", backend=backend)
    loss = ops.gram_texture_loss_sampled(*views, reduction="none", backend=backend)
    torch.testing.assert_close(loss, expected, **same)
    views[0].requires_grad_()
    ops.gram_texture_loss_sampled(*views, backend=backend).backward()
    sr.requires_grad_()
    ops.gram_texture_loss_sampled(sr, hr, half, thetas, backend=backend).backward()
    torch.testing.assert_close(views[0].grad, sr.grad, **same)


@pytest.mark.parametrize("magnitude", MAGNITUDES)
def test_sampled_candidate_pixels_are_the_materialised_ones(backend, device, rng, magnitude):
    """Every candidate's pixels, as the op compares them with the patches that chose it (the pixel target's
    residual SR - c*), are those of the materialised stack (affine_grid + grid_sample) to float32 rounding
    of the sampling point. SR is candidate m itself (with a different m on each row of patches), so that
    every candidate gets chosen."""
    namespace = library_ops(backend)
    if namespace is None:
        pytest.skip("the reference backend registers no op")
    b, c, h, w, k, j = 2, 4, 32, 24, 4, 3
    _sr, hr, half, thetas = make_case(rng, (b, c, h, w, k, j), magnitude, device=device)
    expected = ref.sampled_candidates(hr.cpu(), half.cpu(), thetas.cpu(), k)
    want = (torch.arange(h // k) % (2 + j)).view(1, -1, 1).expand(b, -1, w // k)
    rows = want.repeat_interleave(k, 1).repeat_interleave(k, 2)[:, None, None].expand(b, 1, c, h, w)
    sr = expected.gather(1, rows)[:, 0]
    _loss, index, residual = namespace.texture_loss_sampled(sr.to(device), hr, half, thetas, k, 0.0, "pixel", "mse")
    assert torch.equal(index.cpu(), want)
    torch.testing.assert_close(residual.cpu(), torch.zeros_like(sr), rtol=0, atol=2e-5)


def test_sampled_residual_is_against_the_selected_candidate(backend, device, rng):
    """The op's third output is, patch by patch, the residual against the candidate its index names, in
    float32: SR - c* (pixel target) or G(SR) - G(c*) as (B, C, C, H/k, W/k) (Gram target); the backward
    reads it (not the sources): changing hr after the forward leaves the gradient as it was."""
    namespace = library_ops(backend)
    if namespace is None:
        pytest.skip("the reference backend registers no op")
    b, c, h, w, k, j = 2, 3, 16, 24, 4, 3
    for dtype in (torch.float32, torch.float16):
        sr, hr, half, thetas = make_case(rng, (b, c, h, w, k, j), 0.4, dtype=dtype, device=device)
        candidates = ref.sampled_candidates(hr.cpu(), half.cpu(), thetas.cpu(), k)
        for target in ("pixel", "gram"):
            _loss, index, residual = namespace.texture_loss_sampled(sr, hr, half, thetas, k, 0.0, target, "mse")
            rows = index.cpu().repeat_interleave(k, 1).repeat_interleave(k, 2)[:, None, None].expand(b, 1, c, h, w)
            chosen = candidates.gather(1, rows)[:, 0].double()
            expected = sr.cpu().double() - chosen
            if target == "gram":
                expected = (ref.patch_gram(sr.cpu().double(), k) - ref.patch_gram(chosen, k)).permute(0, 3, 4, 1, 2)
            assert residual.dtype == torch.float32
            torch.testing.assert_close(residual.cpu().double(), expected, rtol=1e-4, atol=2e-5)
    sr = sr.float().requires_grad_()
    hr, half = hr.float(), half.float()
    ops.gram_texture_loss_sampled(sr, hr, half, thetas, backend=backend).backward()
    expected = sr.grad.clone()
    sr.grad = None
    loss = ops.gram_texture_loss_sampled(sr, hr, half, thetas, backend=backend)
    hr.fill_(0.5)
    half.fill_(0.5)
    loss.backward()
    torch.testing.assert_close(sr.grad, expected, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_sampled_low_precision(backend, device, rng, dtype):
    """fp16/bf16 inputs are read as they are and sampled and accumulated in float32."""
    shape = (2, 3, 16, 8, 4, 3)
    sr, hr, half, thetas = make_case(rng, shape, 0.4, dtype=dtype, device=device)
    sr.requires_grad_()
    loss = ops.gram_texture_loss_sampled(sr, hr, half, thetas, reduction="none", backend=backend)
    sr_ref = sr.detach().cpu().requires_grad_()
    expected = ref.texture_loss_sampled(sr_ref, hr.cpu(), half.cpu(), thetas.cpu(), 4, 0.0, "gram", "mse")
    assert loss.dtype == torch.float32
    index = selected_index(backend, sr.detach(), hr, half, thetas, 4, 0.0).cpu()
    candidates = ref.sampled_candidates(hr.cpu(), half.cpu(), thetas.cpu(), 4)
    same = index == ref.gram_select(sr_ref.detach().float(), candidates, 4, "local", 0.0)
    assert same.float().mean() > 0.8
    torch.testing.assert_close(loss.detach().cpu()[same], expected.detach()[same], rtol=1e-4, atol=1e-6)
    loss.sum().backward()
    expected.sum().backward()
    pixel_same = same.repeat_interleave(4, 1).repeat_interleave(4, 2)[:, None].expand_as(sr_ref)
    assert sr.grad.dtype == dtype
    torch.testing.assert_close(sr.grad.cpu().float()[pixel_same], sr_ref.grad.float()[pixel_same], rtol=2e-2, atol=1e-4)


def test_sampled_ties_go_to_the_lowest_index(backend, device, rng):
    """HR equal to its re-tiled half (candidates 0 and 1 tie) and two equal warps (2 and 3 tie)."""
    b, c, h, w, k = 2, 3, 16, 16, 4
    half = torch.rand(b, c, h // 2, w // 2, generator=rng)
    hr = ref.retile_half(half, k).contiguous()
    theta = torch.tensor([[0.7, 0.2, 0.3], [-0.25, 0.8, -0.1]])
    thetas = torch.stack([theta, theta, theta * 0.5], 0).expand(b, 3, 2, 3).contiguous()
    args = [x.to(device) for x in (hr, half, thetas)]
    near_hr = hr + 1e-3 * torch.rand(hr.shape, generator=rng)
    index = selected_index(backend, near_hr.to(device), *args, k, 0.0).cpu()
    assert torch.all(index == 0), index
    on_warp = ref.warp(hr, thetas)[:, 0].contiguous()
    index = selected_index(backend, on_warp.to(device), *args, k, 0.0).cpu()
    expected = ref.gram_select(on_warp, ref.sampled_candidates(hr, half, thetas, k), k, "local", 0.0)
    assert torch.all(expected != 3) and torch.all(index != 3), index  # the first of the equal warps wins
    assert (index == 2).float().mean() > 0.9 and (index == expected).float().mean() > 0.9


def test_sampled_more_candidates_than_a_block_has_threads(backend, device, rng):
    """J = 130 warps: 132 candidates, more than the 128 threads of a CUDA block, whose threads then score
    several candidates each. SR on warp 127 (candidate 129, the second of its thread) selects it; with
    every warp equal, the first warp wins the tie across all threads; random SR matches the materialised
    path."""
    k, shape = 2, (1, 3, 8, 8, 2, 130)
    sr, hr, half, thetas = make_case(rng, shape, 0.4, device=device)
    candidates = ref.sampled_candidates(hr.cpu(), half.cpu(), thetas.cpu(), k)
    loss = ops.gram_texture_loss_sampled(sr, hr, half, thetas, k, reduction="none", backend=backend).cpu()
    index = selected_index(backend, sr, hr, half, thetas, k, 0.0).cpu()
    assert_selection_optimal(index, sr.cpu(), candidates, k, "local", 0.0)
    same = index == ref.gram_select(sr.cpu(), candidates, k, "local", 0.0)
    expected = ref.texture_loss(sr.cpu(), candidates, k, "local", 0.0, "gram", "mse")
    torch.testing.assert_close(loss[same], expected[same], rtol=2e-5, atol=2e-6)

    on_warp = candidates[:, 129].contiguous().to(device)
    assert torch.all(selected_index(backend, on_warp, hr, half, thetas, k, 0.0).cpu() == 129)
    equal_thetas = thetas[:, :1].expand_as(thetas).contiguous()
    on_first = ref.sampled_candidates(hr.cpu(), half.cpu(), equal_thetas.cpu(), k)[:, 2].contiguous().to(device)
    assert torch.all(selected_index(backend, on_first, hr, half, equal_thetas, k, 0.0).cpu() == 2)


def test_sampled_nan_in_hr(backend, device, rng):
    """A NaN pixel of HR makes every candidate that reads it NaN; NaN scores never win, as materialised."""
    shape = (1, 3, 16, 16, 4, 2)
    sr, hr, half, thetas = make_case(rng, shape, 0.4, device=device)
    hr[0, 1, 5, 6] = float("nan")
    loss = ops.gram_texture_loss_sampled(sr, hr, half, thetas, reduction="none", backend=backend).cpu()
    expected = ref.texture_loss_sampled(sr.cpu(), hr.cpu(), half.cpu(), thetas.cpu(), 4, 0.0, "gram", "mse")
    index = selected_index(backend, sr, hr, half, thetas, 4, 0.0).cpu()
    candidates = ref.sampled_candidates(hr.cpu(), half.cpu(), thetas.cpu(), 4)
    ref_index = ref.gram_select(sr.cpu(), candidates, 4, "local", 0.0)
    assert torch.equal(loss.isnan(), expected.isnan())
    assert (index == ref_index).float().mean() > 0.9
    grams = ref.patch_gram(candidates.flatten(0, 1), 4).reshape(1, 4, 4, 4, 3, 3)
    nan_candidate = grams.isnan().any(dim=(-2, -1))  # (B, K, I, J)
    all_nan = nan_candidate.all(dim=1)
    chose_nan = nan_candidate.gather(1, index[:, None]).squeeze(1)
    assert torch.all(~chose_nan | all_nan) and chose_nan.any() == all_nan.any()


def test_sampled_float64_gradcheck(backend, device, rng):
    namespace = library_ops(backend)
    sr, hr, half, thetas = make_case(rng, (1, 2, 8, 8, 2, 2), 0.4, dtype=torch.float64, device=device)
    sr.requires_grad_()

    def loss(x):
        return ops.gram_texture_loss_sampled(
            x, hr, half, thetas, 2, 0.5, "gram", "mse", reduction="sum", backend=backend
        )

    assert torch.autograd.gradcheck(loss, (sr,), eps=1e-6, atol=1e-6, rtol=1e-5)
    assert namespace is None or loss(sr).dtype == torch.float64


def test_sampled_opcheck(backend, device, rng):
    namespace = library_ops(backend)
    if namespace is None:
        pytest.skip("the reference backend registers no op")
    sr, hr, half, thetas = make_case(rng, (2, 3, 8, 16, 4, 2), 0.4, device=device)
    sr.requires_grad_()
    utils = "ALL"
    if backend == "triton" and device.type == "cpu":  # aot_dispatch traces the kernels' bodies: a GPU only
        utils = ("test_schema", "test_autograd_registration", "test_faketensor")
    op = namespace.texture_loss_sampled.default
    torch.library.opcheck(op, (sr, hr, half, thetas, 4, 0.5, "gram", "mse"), test_utils=utils)


def test_sampled_empty_batch(backend, device):
    sr = torch.zeros(0, 3, 8, 8, device=device, requires_grad=True)
    half = torch.zeros(0, 3, 4, 4, device=device)
    loss = ops.gram_texture_loss_sampled(sr, sr.detach(), half, torch.zeros(0, 2, 2, 3, device=device), backend=backend)
    loss.backward()
    assert loss.item() == 0 and sr.grad.shape == sr.shape


def test_loss_module_sampled_equals_materialised(backend, device, rng):
    """``texture_loss`` draws the same maps from the same RNG state on both paths: same loss and gradient."""
    hr = torch.rand(2, 3, 24, 16, generator=rng, device="cpu").to(device)
    sr = (hr + 0.05 * torch.randn(hr.shape, generator=rng).to(device)).requires_grad_()
    results = []
    for materialize in (True, False):
        generator = torch.Generator().manual_seed(7)
        loss = texture.texture_loss(
            sr, hr, magnitude=0.2, generator=generator, backend=backend, materialize=materialize
        )
        results.append((loss.detach(), torch.autograd.grad(loss, sr)[0]))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: {**a, "hr": a["hr"][..., :8]}, "hr has shape"),
        (lambda a: {**a, "hr_half": a["hr_half"][:, :, :2]}, "hr_half must have shape"),
        (lambda a: {**a, "thetas": a["thetas"][..., :2]}, "thetas must have shape"),
        (lambda a: {**a, "thetas": a["thetas"].long()}, "thetas must be a floating tensor"),
        (lambda a: {**a, "hr": a["hr"].double()}, "hr has dtype"),
        (lambda a: {**a, "k": 8}, "multiples of 2k = 16"),
    ],
)
def test_sampled_bad_input_is_named(change, message):
    sr = torch.rand(2, 3, 8, 16)
    args = {"hr": torch.rand(2, 3, 8, 16), "hr_half": torch.rand(2, 3, 4, 8), "thetas": torch.rand(2, 1, 2, 3), "k": 4}
    args = change(args)
    with pytest.raises((TypeError, ValueError), match=message):
        ops.gram_texture_loss_sampled(sr, args["hr"], args["hr_half"], args["thetas"], k=args["k"], backend="reference")
