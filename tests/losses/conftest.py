"""Small networks and images shared by the loss tests (tiny sizes: the whole folder runs in seconds)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gramgan.models import VGGStyleDiscriminator


class TinyExtractor(nn.Module):
    """Stand-in for VGG19FeatureExtractor: same contract (``layers``, forward -> {name: features}), frozen."""

    def __init__(self, layers=("conv2_2", "conv4_2", "conv4_4")) -> None:
        super().__init__()
        self.layers = tuple(layers)
        self.convs = nn.ModuleDict({name: nn.Conv2d(3, 4, 3, padding=1) for name in self.layers})
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: conv(x) for name, conv in self.convs.items()}


@pytest.fixture
def tiny_extractor() -> TinyExtractor:
    torch.manual_seed(1)
    return TinyExtractor()


@pytest.fixture
def discriminator() -> VGGStyleDiscriminator:
    """nf = 8 for 64 x 64 crops, parameters frozen as the training loop does in the G step."""
    torch.manual_seed(2)
    d = VGGStyleDiscriminator(num_feat=8, input_size=64)
    for p in d.parameters():
        p.requires_grad_(False)
    return d


@pytest.fixture
def images() -> tuple[torch.Tensor, torch.Tensor]:
    """(sr, hr) 2 x 3 x 64 x 64; sr requires grad and is close to hr (a plausible generator output)."""
    g = torch.Generator().manual_seed(3)
    hr = torch.rand(2, 3, 64, 64, generator=g)
    sr = (hr + 0.05 * torch.randn(2, 3, 64, 64, generator=g)).requires_grad_(True)
    return sr, hr
