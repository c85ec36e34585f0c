"""The reference backend against cases computed by hand (it is the definition the others are held to)."""

from __future__ import annotations

import itertools

import pytest
import torch

import gramgan.ops as ops
from gramgan.ops import reference as ref


def test_patch_gram_by_hand():
    # One 2x2 patch of C = 2: pixels (1, 0), (0, 2), (1, 1), (3, 0).
    x = torch.tensor([[[[1.0, 0.0], [1.0, 3.0]], [[0.0, 2.0], [1.0, 0.0]]]])
    g = ops.patch_gram(x, k=2, backend="reference")
    # sum x x^T = [[1+0+1+9, 0+0+1+0], [0+0+1+0, 0+4+1+0]] = [[11, 1], [1, 5]], divided by k^2 = 4.
    expected = torch.tensor([[11.0, 1.0], [1.0, 5.0]]) / 4
    assert g.shape == (1, 1, 1, 2, 2)
    torch.testing.assert_close(g[0, 0, 0], expected)


def test_patch_gram_patch_layout_is_row_major():
    x = torch.zeros(1, 1, 4, 6)
    x[0, 0, 2:4, 4:6] = 2.0  # patch (1, 2) with k = 2
    g = ops.patch_gram(x, k=2, backend="reference")
    assert g.shape == (1, 2, 3, 1, 1)
    assert g[0, 1, 2, 0, 0] == 4.0 and g.sum() == 4.0


def test_gram_ignores_pixel_position_inside_patch():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8)
    cells = x.reshape(2, 3, 2, 4, 2, 4).permute(0, 1, 2, 4, 3, 5).reshape(2, 3, 2, 2, 16)
    shuffled = cells[..., torch.randperm(16)]
    y = shuffled.reshape(2, 3, 2, 2, 4, 4).permute(0, 1, 2, 4, 3, 5).reshape(2, 3, 8, 8)
    assert not torch.equal(x, y)
    torch.testing.assert_close(ops.patch_gram(x, backend="reference"), ops.patch_gram(y, backend="reference"))


def test_select_picks_exact_match_and_lowest_tie():
    torch.manual_seed(1)
    sr = torch.rand(1, 3, 4, 8)
    other = torch.rand(1, 3, 4, 8)
    candidates = torch.stack([other, sr, sr], dim=1)  # 1 and 2 tie exactly at score 0
    assert ops.gram_select(sr, candidates, backend="reference").tolist() == [[[1, 1]]]
    assert ops.gram_select(sr, torch.stack([sr, sr], 1), backend="reference").tolist() == [[[0, 0]]]


def test_select_by_hand_with_gt_weight():
    # C = 1, k = 1: Grams are squares. SR = 1, GT (candidate 0) = 0, candidates 1 -> 1.1, 2 -> 0.5.
    sr = torch.tensor([[[[1.0]]]])
    candidates = torch.tensor([0.0, 1.1, 0.5]).reshape(1, 3, 1, 1, 1)
    # beta = 0: |1 - g|^2 with g = 0, 1.21, 0.25 -> candidate 1 (0.0441).
    assert ops.gram_select(sr, candidates, k=1, backend="reference").item() == 1
    # beta = 1: adds |0 - g|^2 -> 1, 0.0441 + 1.4641, 0.5625 + 0.0625 -> candidate 2.
    assert ops.gram_select(sr, candidates, k=1, gt_weight=1.0, backend="reference").item() == 2


def test_global_index_runs_level_by_level():
    gt = torch.zeros(1, 1, 2, 2)
    small = torch.zeros(1, 1, 1, 3)
    small[0, 0, 0, 2] = 5.0
    sr = torch.full((1, 1, 2, 2), 5.0)
    index = ops.gram_select(sr, [gt, small], k=1, scope="global", backend="reference")
    assert index.tolist() == [[[6, 6], [6, 6]]]  # 4 GT patches, then patch 2 of the small image


def test_global_chunking_does_not_change_the_answer(monkeypatch):
    torch.manual_seed(2)
    sr = torch.rand(2, 3, 16, 16)
    candidates = [torch.rand(2, 3, 16, 16), torch.rand(2, 3, 8, 8)]
    full = ops.gram_select(sr, candidates, scope="global", gt_weight=1.0, backend="reference")
    monkeypatch.setattr(ref, "GLOBAL_CHUNK_ELEMENTS", 7)
    chunked = ops.gram_select(sr, candidates, scope="global", gt_weight=1.0, backend="reference")
    assert torch.equal(full, chunked)


def test_texture_loss_by_hand():
    sr = torch.tensor([[[[1.0]]]], requires_grad=True)
    candidates = torch.tensor([0.0, 1.1, 0.5]).reshape(1, 3, 1, 1, 1)
    gram = ops.gram_texture_loss(sr, candidates, k=1, backend="reference")
    torch.testing.assert_close(gram, torch.tensor((1 - 1.21) ** 2))
    pixel = ops.gram_texture_loss(sr, candidates, k=1, target="pixel", backend="reference")
    torch.testing.assert_close(pixel, torch.tensor(0.1**2))
    l1 = ops.gram_texture_loss(sr, candidates, k=1, target="pixel", criterion="l1", backend="reference")
    torch.testing.assert_close(l1, torch.tensor(0.1))
    gram.backward()
    # d/dx (x^2 - 1.21)^2 = 2 (x^2 - 1.21) * 2x at x = 1.
    torch.testing.assert_close(sr.grad, torch.tensor([[[[4 * (1 - 1.21)]]]]))


@pytest.mark.parametrize("scope", ["local", "global"])
@pytest.mark.parametrize(("target", "criterion"), [("gram", "mse"), ("gram", "l1"), ("pixel", "mse"), ("pixel", "l1")])
def test_texture_loss_gradcheck(scope, target, criterion):
    torch.manual_seed(3)
    sr = torch.rand(2, 2, 4, 6, dtype=torch.float64, requires_grad=True)
    if scope == "local":
        candidates = torch.rand(2, 3, 2, 4, 6, dtype=torch.float64)
    else:
        candidates = [torch.rand(2, 2, 4, 6, dtype=torch.float64), torch.rand(2, 2, 2, 4, dtype=torch.float64)]

    def loss(x):
        return ops.gram_texture_loss(x, candidates, 2, scope, 0.5, target, criterion, "sum", backend="reference")

    assert torch.autograd.gradcheck(loss, (sr,), eps=1e-6, atol=1e-5)


def test_mask_with_clipped_offset_cell_by_hand():
    # C = 1, 5 x 5 image, k = 4, offset (1, 2): row cells [0, 3), [3, 5); column cells [0, 2), [2, 5).
    x = torch.full((1, 1, 5, 5), 0.5)
    x[0, 0, 0, 0] = 0.52  # top-left cell: 6 pixels, one at +0.02 -> std = 0.02 * sqrt(1/6) = 0.00816
    x[0, 0, 4, 4] = 0.505  # bottom-right cell: 6 pixels, std = 0.005 * sqrt(1/6) = 0.00204
    mask = ops.texture_mask(x, k=4, threshold=0.005, offset=(1, 2), backend="reference")[0, 0]
    expected = torch.zeros(5, 5)
    expected[:3, :2] = 1
    assert torch.equal(mask, expected)


def test_mask_one_pixel_cell_has_zero_std():
    x = torch.rand(1, 1, 5, 5)
    mask = ops.texture_mask(x, k=4, threshold=0.0, offset=(3, 3), backend="reference")[0, 0]
    assert mask[0, 0] == 0  # the cell covering rows/cols [-3, 1) holds one pixel
    assert mask[1:, 1:].all()


def test_mask_luminance_weights():
    x = torch.zeros(1, 3, 4, 4)
    x[0, 0, 0, 0] = 1.0  # red only
    y = ref.luminance(x)
    assert y[0, 0, 0, 0].item() == pytest.approx(0.299)
    assert ref.luminance(torch.ones(1, 2, 1, 1) * torch.tensor([0.2, 0.4]).view(1, 2, 1, 1)).item() == pytest.approx(
        0.3
    )


def test_sliding_mask_against_direct_loop():
    torch.manual_seed(4)
    x = torch.rand(1, 3, 7, 9) * 0.05 * torch.linspace(0.2, 2.0, 9) + 0.5
    window, threshold = 5, 0.01
    mask = ops.texture_mask(x, threshold=threshold, mode="sliding", window=window, backend="reference")[0, 0]
    y = ref.luminance(x.double())[0, 0]
    r = window // 2

    def reflect(i: int, n: int) -> int:
        return -i if i < 0 else (2 * (n - 1) - i if i >= n else i)

    for i, j in itertools.product(range(7), range(9)):
        values = torch.stack(
            [y[reflect(i + di, 7), reflect(j + dj, 9)] for di in range(-r, r + 1) for dj in range(-r, r + 1)]
        )
        assert mask[i, j].item() == float(values.std(unbiased=True).item() > threshold), (i, j)
    assert 0 < mask.mean() < 1


def test_mask_pair_gradient_to_sr_only():
    hr = (torch.rand(1, 3, 8, 8) * 0.2).requires_grad_()
    sr = torch.rand(1, 3, 8, 8, requires_grad=True)
    sr_m, hr_m = ops.mask_pair(sr, hr, backend="reference")
    (sr_m.sum() + hr_m.sum()).backward()
    mask = ops.texture_mask(hr, backend="reference")
    assert torch.equal(sr.grad, mask.expand_as(sr))
    assert hr.grad is None
