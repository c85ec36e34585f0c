"""The candidate database of docs/candidates.md: shapes, the re-tiled x2 candidate, the affine warps, global list."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gramgan.data.resize import imresize
from gramgan.losses.candidates import (
    build_global_candidates,
    build_local_candidates,
    downsample_retiled,
    random_affine_thetas,
    warp_images,
)

IDENTITY = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _textured(b: int = 2, c: int = 3, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, h, w, generator=g)


def test_local_shapes_and_order():
    hr = _textured(2, 3, 32, 48)
    cands = build_local_candidates(hr, num_affine_warps=4, magnitude=0.003, patch_size=4)
    assert cands.shape == (2, 6, 3, 32, 48)
    assert cands.dtype == hr.dtype and not cands.requires_grad
    torch.testing.assert_close(cands[:, 0], hr, rtol=0, atol=0)
    assert build_local_candidates(hr, num_affine_warps=0).shape == (2, 2, 3, 32, 48)


@pytest.mark.parametrize("k", [2, 4, 8])
def test_downsampled_candidate_is_retiled_by_patch(k):
    hr = _textured(2, 3, 4 * k, 6 * k, seed=k)
    small = imresize(hr, scale=0.5).clamp(0, 1)
    cands = build_local_candidates(hr, num_affine_warps=1, patch_size=k)
    tiled = cands[:, 1]
    torch.testing.assert_close(tiled, downsample_retiled(hr, k))
    for i in range(hr.shape[-2] // k):
        for j in range(hr.shape[-1] // k):
            got = tiled[..., i * k : (i + 1) * k, j * k : (j + 1) * k]
            want = small[..., (i // 2) * k : (i // 2 + 1) * k, (j // 2) * k : (j // 2 + 1) * k]
            torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    # It is not a pixel upsampling: neighbouring pixels inside one patch differ.
    assert not torch.allclose(tiled[..., 0, 0], tiled[..., 0, 1])


def test_downsampled_candidate_is_clamped():
    hr = torch.zeros(1, 3, 16, 16)
    hr[..., 8:] = 1.0  # a step edge: bicubic overshoots on both sides of it without the clamp
    small = imresize(hr, scale=0.5)
    assert small.min() < -0.005 and small.max() > 1.005
    tiled = downsample_retiled(hr, 4)
    assert tiled.min() >= 0 and tiled.max() <= 1
    unclamped = downsample_retiled(hr, 4, clamp=False)
    assert unclamped.min() < -0.005 and unclamped.max() > 1.005


@pytest.mark.parametrize("shape", [(1, 3, 36, 32), (1, 3, 32, 28), (1, 3, 12, 16)])
def test_local_needs_multiples_of_2k(shape):
    with pytest.raises(ValueError, match="multiples of 8"):
        build_local_candidates(torch.rand(shape), patch_size=4)


@pytest.mark.parametrize("bad", [torch.rand(3, 32, 32), torch.zeros(1, 3, 16, 16, dtype=torch.long), "image"])
def test_bad_input(bad):
    with pytest.raises((TypeError, ValueError)):
        build_local_candidates(bad)


def test_theta_bound_and_spread():
    m = 0.003
    thetas = random_affine_thetas(64, 4, m)
    assert thetas.shape == (64, 4, 2, 3)
    dev = thetas - IDENTITY
    assert dev.abs().max() <= m + 1e-9
    # Uniform on [-m, m]: both signs occur and the spread reaches close to m in every entry.
    assert (dev.amax(dim=(0, 1)) > 0.8 * m).all() and (dev.amin(dim=(0, 1)) < -0.8 * m).all()
    assert torch.equal(random_affine_thetas(3, 2, 0.0), IDENTITY.expand(3, 2, 2, 3))
    with pytest.raises(ValueError):
        random_affine_thetas(2, 2, -0.1)


def test_thetas_reach_a_cuda_device_by_one_pinned_non_blocking_copy(monkeypatch):
    """Drawn on the CPU (the same numbers whatever the device), then copied without making the host wait
    for the GPU: pinned, ``non_blocking``. No GPU here, so the copy to CUDA is recorded and left on the host."""
    calls: list[tuple] = []
    host_to = torch.Tensor.to

    def pin(self):
        calls.append(("pin", self.dtype))
        return self

    def to(self, *args, **kwargs):
        target = kwargs.get("device", args[0] if args else None)
        if isinstance(target, (str, torch.device)) and torch.device(target).type == "cuda":
            calls.append(("to cuda", kwargs.get("dtype"), kwargs.get("non_blocking", False)))
            return self
        return host_to(self, *args, **kwargs)

    torch.manual_seed(7)
    on_host = random_affine_thetas(2, 3, 0.01)
    monkeypatch.setattr(torch.Tensor, "pin_memory", pin)
    monkeypatch.setattr(torch.Tensor, "to", to)
    random_affine_thetas(2, 3, 0.01, device="cpu")
    assert calls == []  # the CPU: a plain copy, no pinning
    torch.manual_seed(7)
    copied = random_affine_thetas(2, 3, 0.01, device=torch.device("cuda", 0))
    assert calls == [("pin", torch.float32), ("to cuda", None, True)]
    assert torch.equal(copied, on_host)


def test_warps_follow_the_global_rng_and_the_definition():
    hr = _textured(2, 3, 32, 32)
    torch.manual_seed(123)
    cands = build_local_candidates(hr, num_affine_warps=3, magnitude=0.01)
    torch.manual_seed(123)
    thetas = random_affine_thetas(2, 3, 0.01)
    for b in range(2):
        for j in range(3):
            grid = F.affine_grid(thetas[b, j][None], [1, 3, 32, 32], align_corners=False)
            want = F.grid_sample(hr[b : b + 1], grid, mode="bilinear", padding_mode="reflection", align_corners=False)
            torch.testing.assert_close(cands[b, 2 + j], want[0])
    # Same seed, same database; a generator argument is honoured too.
    torch.manual_seed(123)
    torch.testing.assert_close(build_local_candidates(hr, num_affine_warps=3, magnitude=0.01), cands, rtol=0, atol=0)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    torch.testing.assert_close(build_local_candidates(hr, generator=g1), build_local_candidates(hr, generator=g2))


def test_warps_differ_per_image_and_per_warp():
    one = _textured(1, 3, 64, 64)
    hr = one.expand(2, -1, -1, -1).contiguous()  # the same picture twice
    warps = build_local_candidates(hr, num_affine_warps=4, magnitude=0.02)[:, 2:]
    assert not torch.allclose(warps[0], warps[1], atol=1e-4)  # per image
    for a in range(4):
        for b in range(a + 1, 4):
            assert not torch.allclose(warps[0, a], warps[0, b], atol=1e-4)  # per warp
        assert not torch.allclose(warps[0, a], one[0], atol=1e-4)  # and not the identity


def test_identity_warp_is_the_image():
    hr = _textured(2, 3, 16, 24)
    out = warp_images(hr, IDENTITY.expand(2, 3, 2, 3))
    torch.testing.assert_close(out, hr[:, None].expand(-1, 3, -1, -1, -1), rtol=0, atol=1e-5)


def test_global_list():
    hr = _textured(2, 3, 64, 48)
    torch.manual_seed(7)
    levels = build_global_candidates(hr, num_affine_warps=2, magnitude=0.003, patch_size=4)
    assert [tuple(x.shape) for x in levels] == [(2, 3, 64, 48), (2, 3, 32, 24), (2, 3, 16, 12)] + [(2, 3, 64, 48)] * 2
    torch.testing.assert_close(levels[0], hr, rtol=0, atol=0)
    torch.testing.assert_close(levels[1], imresize(hr, scale=0.5).clamp(0, 1))
    torch.testing.assert_close(levels[2], imresize(hr, scale=0.25).clamp(0, 1))
    torch.manual_seed(7)
    local = build_local_candidates(hr, num_affine_warps=2, magnitude=0.003)
    torch.testing.assert_close(torch.stack(levels[3:], dim=1), local[:, 2:])  # the same warps


def test_global_crops_levels_to_whole_patches():
    hr = _textured(1, 3, 40, 36)  # /4 gives 10 x 9: cropped to 8 x 8
    levels = build_global_candidates(hr, num_affine_warps=0, patch_size=4)
    assert [tuple(x.shape[-2:]) for x in levels] == [(40, 36), (20, 16), (8, 8)]
    torch.testing.assert_close(levels[2], imresize(hr, scale=0.25).clamp(0, 1)[..., :8, :8])
    with pytest.raises(ValueError, match="too small"):
        build_global_candidates(_textured(1, 3, 12, 12), patch_size=4)
    with pytest.raises(ValueError, match="multiples of 4"):
        build_global_candidates(_textured(1, 3, 30, 32), patch_size=4)
