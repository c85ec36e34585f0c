"""The RaGAN losses (Eqs. 7-9) against a hand computation, and the discriminator step's function."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gramgan.losses import discriminator_loss, ragan_discriminator_loss, ragan_generator_loss

REAL = [1.0, -0.5, 2.0]
FAKE = [0.3, 0.1, -1.0]


def _bce(z: float, t: float) -> float:
    """-[t log s(z) + (1 - t) log(1 - s(z))], written out."""
    s = 1.0 / (1.0 + math.exp(-z))
    return -(t * math.log(s) + (1 - t) * math.log(1 - s))


def _hand(real: list[float], fake: list[float], real_target: float) -> float:
    mean_r, mean_f = sum(real) / len(real), sum(fake) / len(fake)
    term_r = sum(_bce(r - mean_f, real_target) for r in real) / len(real)
    term_f = sum(_bce(f - mean_r, 1 - real_target) for f in fake) / len(fake)
    return 0.5 * (term_r + term_f)


def test_generator_loss_matches_hand_computation():
    real, fake = torch.tensor(REAL).view(3, 1), torch.tensor(FAKE).view(3, 1)
    got = ragan_generator_loss(real, fake)
    assert got.item() == pytest.approx(_hand(REAL, FAKE, real_target=0.0), rel=1e-6)


def test_discriminator_loss_matches_hand_computation():
    real, fake = torch.tensor(REAL).view(3, 1), torch.tensor(FAKE).view(3, 1)
    got = ragan_discriminator_loss(real, fake)
    assert got.item() == pytest.approx(_hand(REAL, FAKE, real_target=1.0), rel=1e-6)
    assert got.item() != pytest.approx(ragan_generator_loss(real, fake).item())


def test_generator_loss_treats_real_logits_as_constants():
    real = torch.tensor(REAL, requires_grad=True)
    fake = torch.tensor(FAKE, requires_grad=True)
    ragan_generator_loss(real, fake).backward()
    assert real.grad is None
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_discriminator_loss_sends_gradient_through_both_logits():
    real = torch.tensor(REAL, requires_grad=True)
    fake = torch.tensor(FAKE, requires_grad=True)
    ragan_discriminator_loss(real, fake).backward()
    assert real.grad.abs().sum() > 0 and fake.grad.abs().sum() > 0


def test_logit_shapes_must_match():
    with pytest.raises(ValueError, match="same non-empty shape"):
        ragan_generator_loss(torch.zeros(3, 1), torch.zeros(2, 1))


class _MeanLogit(nn.Module):
    """A discriminator whose logit is ``scale * mean(x)`` per image; records the images it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(3.0))
        self.seen: list[torch.Tensor] = []

    def forward(self, x, taps=(5, 11)):
        self.seen.append(x)
        return self.scale * x.mean(dim=(1, 2, 3)).unsqueeze(1), []


def test_discriminator_step_function():
    d = _MeanLogit()
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(3, 3, 8, 8, generator=g)
    sr = torch.rand(3, 3, 8, 8, generator=g).requires_grad_(True)
    loss, terms = discriminator_loss(d, sr, hr)
    real = (3.0 * hr.mean(dim=(1, 2, 3))).tolist()
    fake = (3.0 * sr.detach().mean(dim=(1, 2, 3))).tolist()
    assert loss.item() == pytest.approx(_hand(real, fake, real_target=1.0), rel=1e-5)
    assert set(terms) == {"d_loss", "d_real", "d_fake"}
    assert terms["d_real"].item() == pytest.approx(sum(real) / 3, rel=1e-5)
    assert terms["d_fake"].item() == pytest.approx(sum(fake) / 3, rel=1e-5)
    assert not terms["d_loss"].requires_grad
    assert len(d.seen) == 2 and all(not x.requires_grad for x in d.seen)  # separate passes, SR detached
    loss.backward()
    assert sr.grad is None  # SR detached in the D step
    assert d.scale.grad is not None and d.scale.grad != 0
