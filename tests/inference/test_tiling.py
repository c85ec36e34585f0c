"""Tiled inference: exact where the margin covers the receptive field, weights a partition of unity."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gramgan.inference.runner import super_resolve
from gramgan.inference.tiling import axis_plan, blend_weights, mirror_pad, run_padded, run_tiled, tile_starts
from gramgan.models import RRDBNet


def _three_conv_x4() -> nn.Module:
    """Receptive field radius 3 input pixels (three 3x3 convs), then x4 pixel shuffle."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(8, 8, 3, 1, 1), nn.Tanh(),
        nn.Conv2d(8, 48, 3, 1, 1), nn.PixelShuffle(4),
    ).eval()  # fmt: skip


@torch.no_grad()
def test_tiled_equals_untiled_when_margin_covers_receptive_field() -> None:
    net = _three_conv_x4()
    x = torch.rand(2, 3, 52, 60)  # tiles start at rows 0, 20 and columns 0, 20, 28 (flush last tile)
    full = net(x)
    tiled = run_tiled(net, x, 4, tile=32, overlap=12)  # margin 12 // 4 = 3 = receptive radius
    assert tiled.shape == full.shape
    torch.testing.assert_close(tiled, full, rtol=0, atol=1e-5)
    # ... and the test can fail: a margin of 2 lets zero padding at tile edges leak in.
    assert (run_tiled(net, x, 4, tile=32, overlap=8) - full).abs().max() > 1e-3


def test_tiled_tiny_rrdbnet_matches_untiled() -> None:
    torch.manual_seed(0)
    model = RRDBNet(num_block=1, num_feat=8, num_grow_ch=4).eval()
    x = torch.rand(1, 3, 120, 110)
    full = super_resolve(model, x, scale=4)
    # Receptive radius of this RRDBNet: 17 convs at LR + 0.5 + 0.75 at x2/x4 < 20 = 80 // 4.
    tiled = super_resolve(model, x, scale=4, tile=100, tile_overlap=80)
    torch.testing.assert_close(tiled, full, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("length", "tile", "overlap"), [(100, 32, 8), (33, 32, 8), (32, 32, 8), (10, 32, 8), (97, 20, 0)]
)
def test_tile_starts_cover_the_axis(length: int, tile: int, overlap: int) -> None:
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + min(tile, length) == length
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


@pytest.mark.parametrize(
    ("length", "tile", "overlap", "margin", "scale"),
    [(100, 32, 16, 4, 1), (90, 40, 12, 3, 2), (64, 20, 1, 0, 4), (70, 70, 8, 2, 1)],
)
def test_blend_weights_sum_to_one_and_ignore_the_margin(
    length: int, tile: int, overlap: int, margin: int, scale: int
) -> None:
    plan = axis_plan(length, tile, overlap, margin, scale)
    total = torch.zeros(length * scale, dtype=torch.float64)
    count = torch.zeros(length * scale, dtype=torch.int64)
    for i, (start, w) in enumerate(plan):
        assert w.shape == (min(tile, length) * scale,)
        if i > 0:
            assert (w[: margin * scale] == 0).all() and w[margin * scale] > 0
        if i < len(plan) - 1:
            assert (w[len(w) - margin * scale :] == 0).all()
        total[start * scale : start * scale + len(w)] += w
        count[start * scale : start * scale + len(w)] += 1
    assert (total > 0).all()  # run_tiled divides by it
    pairwise = count <= 2  # where the flush last tile makes three overlap, run_tiled's division normalises
    torch.testing.assert_close(total[pairwise], torch.ones(int(pairwise.sum()), dtype=torch.float64))
    assert pairwise.float().mean() > 0.8


def test_blend_weights_ramp_linearly() -> None:
    w = blend_weights(16, left_overlap=8, right_overlap=0, margin=2)
    expected = [0, 0, 0.125, 0.375, 0.625, 0.875] + [1] * 10
    torch.testing.assert_close(w, torch.tensor(expected, dtype=torch.float64))


def test_run_padded_handles_sizes_the_model_cannot_take() -> None:
    torch.manual_seed(0)
    model = RRDBNet(scale=2, num_block=1, num_feat=8, num_grow_ch=4).eval()
    x = torch.rand(1, 3, 33, 35)
    with pytest.raises(ValueError, match="divisible by 2"):
        model(x)
    out = super_resolve(model, x, scale=2)
    assert out.shape == (1, 3, 66, 70)
    with torch.no_grad():  # on an even-sized image, padding changes nothing
        even = x[..., :32, :34]
        torch.testing.assert_close(run_padded(model, even, 2, 2), model(even))


def test_bad_tiling_arguments() -> None:
    net = _three_conv_x4()
    x = torch.rand(1, 3, 20, 20)
    with pytest.raises(ValueError, match="overlap"):
        run_tiled(net, x, 4, tile=16, overlap=16)
    with pytest.raises(ValueError, match="tile must be positive"):
        run_tiled(net, x, 4, tile=0)


def test_mirror_pad_reflects_beyond_the_image_and_replicates_one_pixel() -> None:
    x = torch.arange(3.0).view(1, 1, 1, 3)  # one row: the row axis can only replicate
    out = mirror_pad(x, 2, 1, 5, 4)
    assert out.shape == (1, 1, 4, 12)
    # columns: reflect 0 1 2 out to 5 left / 4 right by repeated reflection (no edge pixel doubled)
    assert out[0, 0, 0].tolist() == [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2]
    assert (out == out[:, :, :1]).all()  # every row the same
    assert mirror_pad(torch.ones(1, 3, 1, 1), 3, 3, 3, 3).shape == (1, 3, 7, 7)


def test_run_padded_crops_back_what_it_padded() -> None:
    x = torch.rand(1, 3, 10, 7)
    seen = []

    def fn(t: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(t.shape[-2:]))
        return t.repeat_interleave(2, -2).repeat_interleave(2, -1)  # nearest x2

    out = run_padded(fn, x, 2, multiple=4, min_size=16)
    assert seen == [(16, 16)]
    torch.testing.assert_close(out, fn(x))


@pytest.mark.parametrize("size", [(10, 10), (1, 1), (3, 17)])
def test_small_flat_images_stay_flat(size: tuple[int, int]) -> None:
    """Zero padding inside the network must not reach a small picture: a flat colour comes back as
    flat as the network's own response to a large flat area of that colour (no dark corners)."""
    torch.manual_seed(0)
    model = RRDBNet(num_block=1, num_feat=8, num_grow_ch=4).eval()
    colour = torch.tensor([0.8, 0.3, 0.2]).view(1, 3, 1, 1)
    big = super_resolve(model, colour.expand(1, 3, 200, 200), scale=4)
    expected = big[..., 400, 400].view(1, 3, 1, 1)
    out = super_resolve(model, colour.expand(1, 3, *size).contiguous(), scale=4)
    assert out.shape == (1, 3, size[0] * 4, size[1] * 4)
    torch.testing.assert_close(out, expected.expand_as(out), rtol=0, atol=1e-4)
    # ... and the test can fail: the bare network on the 10x10 image has visible border effects.
    with torch.no_grad():
        bare = model(colour.expand(1, 3, 10, 10).contiguous())
    assert (bare - expected).abs().max() > 1e-2
