"""The VGG-style discriminator (docs/networks.md), with taps for the discriminator perceptual loss.

Layer names follow BasicSR's ``VGGStyleDiscriminator`` (``conv{stage}_{0,1}``, ``bn{stage}_{0,1}``,
``linear1``, ``linear2``): stage s has a 3x3 stride-1 conv ``conv{s}_0`` and a 4x4 stride-2 conv
``conv{s}_1``; every conv but ``conv0_0`` is followed by BatchNorm (and has no bias).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["VGGStyleDiscriminator"]

NUM_STAGES = 6
NUM_CONVS = 2 * NUM_STAGES
_LRELU_SLOPE = 0.2
_POOLED = 3  # spatial size the head expects (192 / 2**6)


def check_input_size(size: int, what: str = "input size") -> None:
    """Raise ``ValueError`` unless ``size`` is a multiple of 32 and at least 64."""
    if not isinstance(size, int) or size < 64 or size % 32:
        raise ValueError(f"VGGStyleDiscriminator {what} must be a multiple of 32 and >= 64, got {size!r}")


class VGGStyleDiscriminator(nn.Module):
    """Six stages of (3x3 s1, 4x4 s2) convs, channels nf, 2nf, 4nf, 8nf, 8nf, 8nf; then
    Linear(8nf*3*3, 100) -> LeakyReLU(0.2) -> Linear(100, 1).

    Args:
        num_in_ch: input channels.
        num_feat: nf, the first stage's width (64, ours: docs/networks.md).
        input_size: the training crop size the network is built for (192 gives a 3x3 map before
            the head). Any H and W that are multiples of 32 from 64 up are accepted at run time:
            the last feature map is average-pooled adaptively to 3x3 (the identity for 192).
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 192) -> None:
        super().__init__()
        check_input_size(input_size)
        if not isinstance(num_feat, int) or num_feat < 1:
            raise ValueError(f"num_feat must be a positive int, got {num_feat!r}")
        self.num_in_ch = num_in_ch
        self.num_feat = num_feat
        self.input_size = input_size
        widths = [num_feat * m for m in (1, 2, 4, 8, 8, 8)]
        in_ch = num_in_ch
        for s, out_ch in enumerate(widths):
            self.add_module(f"conv{s}_0", nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=s == 0))
            if s > 0:
                self.add_module(f"bn{s}_0", nn.BatchNorm2d(out_ch, affine=True))
            self.add_module(f"conv{s}_1", nn.Conv2d(out_ch, out_ch, 4, 2, 1, bias=False))
            self.add_module(f"bn{s}_1", nn.BatchNorm2d(out_ch, affine=True))
            in_ch = out_ch
        self.linear1 = nn.Linear(widths[-1] * _POOLED * _POOLED, 100)
        self.linear2 = nn.Linear(100, 1)
        # One shared activation module (called 13 times per forward) so hooks can observe it.
        self.lrelu = nn.LeakyReLU(_LRELU_SLOPE)

    def _layers(self) -> list[tuple[nn.Conv2d, nn.Module | None]]:
        """(conv, batch norm) pairs in forward order; the first conv has no norm."""
        return [
            (getattr(self, f"conv{s}_{j}"), getattr(self, f"bn{s}_{j}", None))
            for s in range(NUM_STAGES)
            for j in range(2)
        ]

    def forward(self, x: Tensor, taps: Sequence[int] = (5, 11)) -> tuple[Tensor, list[Tensor]]:
        """Return the logit ``(B, 1)`` and the activations after the LeakyReLU of the requested
        convolutions (counted from 1 in forward order, 1..12), in the order of ``taps``.

        For nf = 64 and a 192x192 input, taps 5 and 11 are (B, 256, 48, 48) and (B, 512, 6, 6).
        """
        if x.dim() != 4 or x.shape[1] != self.num_in_ch:
            raise ValueError(
                f"VGGStyleDiscriminator expects (B, {self.num_in_ch}, H, W) input, got {tuple(x.shape)}"
            )
        check_input_size(int(x.shape[-2]), "input height")
        check_input_size(int(x.shape[-1]), "input width")
        taps = tuple(taps)
        for t in taps:
            if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= NUM_CONVS:
                raise ValueError(f"discriminator tap indices must be ints in 1..{NUM_CONVS}, got {t!r}")
        wanted = set(taps)
        found: dict[int, Tensor] = {}
        feat = x
        for i, (conv, norm) in enumerate(self._layers(), start=1):
            feat = conv(feat)
            if norm is not None:
                feat = norm(feat)
            feat = self.lrelu(feat)
            if i in wanted:
                found[i] = feat
        feat = F.adaptive_avg_pool2d(feat, _POOLED)
        logit = self.linear2(self.lrelu(self.linear1(feat.flatten(1))))
        return logit, [found[t] for t in taps]
