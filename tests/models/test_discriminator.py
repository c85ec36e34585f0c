"""VGG-style discriminator: docs/networks.md layer list, taps checked against forward hooks, input sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gramgan.models import VGGStyleDiscriminator


def test_layer_list_matches_spec():
    nf = 8
    d = VGGStyleDiscriminator(num_feat=nf)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 12
    widths = [nf, nf, 2 * nf, 2 * nf, 4 * nf, 4 * nf, 8 * nf, 8 * nf, 8 * nf, 8 * nf, 8 * nf, 8 * nf]
    assert [c.out_channels for c in convs] == widths
    assert [c.kernel_size for c in convs] == [(3, 3), (4, 4)] * 6
    assert [c.stride for c in convs] == [(1, 1), (2, 2)] * 6
    assert [c.bias is not None for c in convs] == [True] + [False] * 11
    bns = [m for m in d.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [b.num_features for b in bns] == widths[1:]
    assert (d.linear1.in_features, d.linear1.out_features) == (8 * nf * 9, 100)
    assert (d.linear2.in_features, d.linear2.out_features) == (100, 1)
    assert d.lrelu.negative_slope == 0.2
    # Parameter count from the layer list above, for nf = 64.
    nf = 64
    w = [nf, nf, 2 * nf, 2 * nf, 4 * nf, 4 * nf, 8 * nf, 8 * nf, 8 * nf, 8 * nf, 8 * nf, 8 * nf]
    ins = [3] + w[:-1]
    n = sum(i * o * (9 if k % 2 == 0 else 16) for k, (i, o) in enumerate(zip(ins, w))) + nf
    n += sum(2 * o for o in w[1:]) + (8 * nf * 9 * 100 + 100) + (100 + 1)
    assert sum(p.numel() for p in VGGStyleDiscriminator().parameters()) == n


def test_taps_are_the_5th_and_11th_leaky_relu_at_full_size():
    torch.manual_seed(0)
    d = VGGStyleDiscriminator()  # nf = 64, 192 input: the real configuration
    seen: list[torch.Tensor] = []
    handle = d.lrelu.register_forward_hook(lambda _m, _i, out: seen.append(out))
    x = torch.rand(1, 3, 192, 192)
    with torch.no_grad():
        logit, taps = d(x)
    handle.remove()
    assert logit.shape == (1, 1)
    assert len(seen) == 13  # 12 convs + the head
    assert taps[0].shape == (1, 256, 48, 48) and taps[1].shape == (1, 512, 6, 6)
    assert torch.equal(taps[0], seen[4]) and torch.equal(taps[1], seen[10])
    # Independent recomputation of tap 5: conv2_0 + bn2_0 + leaky relu on the 4th activation.
    with torch.no_grad():
        pre = d.bn2_0(d.conv2_0(seen[3]))
    torch.testing.assert_close(taps[0], torch.where(pre >= 0, pre, 0.2 * pre))


def test_head_sees_the_3x3_map_unpooled_at_192():
    torch.manual_seed(0)
    d = VGGStyleDiscriminator(num_feat=8).eval()
    x = torch.rand(2, 3, 192, 192)
    with torch.no_grad():
        logit, (last,) = d(x, taps=(12,))
        assert last.shape == (2, 64, 3, 3)
        head = d.linear2(nn.functional.leaky_relu(d.linear1(last.flatten(1)), 0.2))
    torch.testing.assert_close(logit, head)


@pytest.mark.parametrize("size", [64, 96, 128, 160])
def test_other_sizes_work(size):
    torch.manual_seed(0)
    d = VGGStyleDiscriminator(num_feat=8)
    logit, taps = d(torch.rand(2, 3, size, size), taps=(1, 12))
    assert logit.shape == (2, 1)
    assert taps[0].shape == (2, 8, size, size)
    assert taps[1].shape[-1] == max(size // 64, 1)
    logit.sum().backward()  # trains at small crops
    assert d.conv0_0.weight.grad is not None


def test_taps_order_and_empty():
    d = VGGStyleDiscriminator(num_feat=8).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        _, both = d(x, taps=(11, 5))
        _, none = d(x, taps=())
    assert [t.shape[1] for t in both] == [64, 32]
    assert none == []


@pytest.mark.parametrize(
    ("shape", "taps", "match"),
    [
        ((1, 3, 100, 100), (5,), "multiple of 32"),
        ((1, 3, 32, 32), (5,), "multiple of 32"),
        ((1, 3, 64, 100), (5,), "width"),
        ((1, 1, 64, 64), (5,), r"\(B, 3, H, W\)"),
        ((1, 3, 64, 64), (0,), "1..12"),
        ((1, 3, 64, 64), (13,), "1..12"),
    ],
)
def test_bad_input(shape, taps, match):
    d = VGGStyleDiscriminator(num_feat=4)
    with pytest.raises(ValueError, match=match):
        d(torch.rand(*shape), taps=taps)


def test_bad_construction():
    with pytest.raises(ValueError, match="multiple of 32"):
        VGGStyleDiscriminator(input_size=100)
