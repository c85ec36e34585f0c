"""The discriminator passes of the G step: one pass per distinct input, the same values as four passes."""

from __future__ import annotations

import contextlib
import dataclasses
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from gramgan import ops
from gramgan.losses import GramGANLoss, GramGANLossConfig, discriminator_perceptual_loss, ragan_generator_loss
from gramgan.models import VGGStyleDiscriminator
from gramgan.train.steps import discriminator_step, generator_step

pytestmark = pytest.mark.filterwarnings("ignore:gramgan.ops:RuntimeWarning")

# Texture off (its own tests cover it); a fixed mask offset; both D terms on the masked pair.
BOTH_MASKED = GramGANLossConfig(disc_perceptual_masked=True, texture_weight=0.0, mask_random_offset=False)
DEFAULT_D = dataclasses.replace(BOTH_MASKED, disc_perceptual_masked=False)


class Counting(nn.Module):
    """Wraps a discriminator and counts its forward passes."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.passes = 0

    def forward(self, x: torch.Tensor, taps=(5, 11)):
        self.passes += 1
        return self.inner(x, taps=taps)


def _tiny_setup(seed: int = 0) -> tuple[nn.Module, nn.Module, torch.Tensor, torch.Tensor]:
    """A one-conv generator, an nf = 4 discriminator (train mode, frozen) and a 2 x 64 x 64 batch."""
    torch.manual_seed(seed)
    g = nn.Conv2d(3, 3, 3, padding=1)
    d = VGGStyleDiscriminator(num_feat=4, input_size=64).requires_grad_(False)
    lr, hr = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    hr[:, :, :20] = 0.5  # a flat band: the mask hides it, so masked and unmasked inputs differ
    return g, d, lr, hr


def _four_pass_terms(cfg: GramGANLossConfig, offset, sr: torch.Tensor, hr: torch.Tensor, d: nn.Module):
    """The old computation: taps and logits from separate passes (4 in all), masked pair for both."""
    mask = ops.texture_mask(hr, offset=offset)
    _, sr_feats = d(sr * mask, taps=cfg.disc_taps)
    with torch.no_grad():
        _, hr_feats = d(hr * mask, taps=cfg.disc_taps)
    fake, _ = d(sr * mask, taps=())
    with torch.no_grad():
        real, _ = d(hr * mask, taps=())
    return discriminator_perceptual_loss(sr_feats, hr_feats), ragan_generator_loss(real, fake)


def test_shared_passes_give_the_four_pass_terms_and_gradients():
    cfg = BOTH_MASKED
    g, d, lr, hr = _tiny_setup()
    sr = g(lr)
    out = GramGANLoss(cfg)(sr, hr, d)
    out.total.backward()
    new_grads = [p.grad.clone() for p in g.parameters()]

    g.zero_grad(set_to_none=True)
    sr = g(lr)
    dperc, adv = _four_pass_terms(cfg, out.mask_offset, sr, hr, d)
    old_total = cfg.content_weight * (sr - hr).abs().mean() + cfg.disc_perceptual_weight * dperc
    (old_total + cfg.adversarial_weight * adv).backward()

    torch.testing.assert_close(out.terms["disc_perceptual"], dperc.detach(), rtol=1e-5, atol=0)
    torch.testing.assert_close(out.terms["adversarial"], adv.detach(), rtol=1e-5, atol=0)
    for new, p in zip(new_grads, g.parameters()):
        torch.testing.assert_close(new, p.grad, rtol=1e-4, atol=1e-4 * float(p.grad.abs().max()))


def _g_step_passes(cfg: GramGANLossConfig) -> tuple[int, int]:
    """Discriminator passes in :func:`generator_step` and in :func:`discriminator_step`."""
    g, d, lr, hr = _tiny_setup()
    counting = Counting(d)
    d.requires_grad_(True)
    run = SimpleNamespace(
        d=counting,
        d_ddp=counting,
        g_ddp=g,
        autocast=contextlib.nullcontext,
        loss_fn=GramGANLoss(cfg),
        opt_g=torch.optim.Adam(g.parameters()),
        opt_d=torch.optim.Adam(d.parameters()),
    )
    out = generator_step(run, lr, hr)
    g_passes = counting.passes
    discriminator_step(run, out)
    return g_passes, counting.passes - g_passes


@pytest.mark.parametrize(
    ("changes", "g_passes"),
    [
        ({"disc_perceptual_masked": True}, 2),  # both terms on the masked pair: one pass per image
        ({}, 4),  # the default: taps on the unmasked pair, logits on the masked pair
        ({"disc_perceptual_masked": True, "adversarial_masked": False}, 4),
        ({"adversarial_masked": False}, 2),  # both on the unmasked pair
        ({"disc_perceptual_weight": 0.0}, 2),
        ({"adversarial_weight": 0.0}, 2),
    ],
)
def test_discriminator_runs_once_per_distinct_input(changes, g_passes):
    assert _g_step_passes(dataclasses.replace(DEFAULT_D, **changes)) == (g_passes, 2)
