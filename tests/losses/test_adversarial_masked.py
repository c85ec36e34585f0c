"""loss.adversarial_masked=false: ESRGAN's RaGAN on the unmasked images (the ablation's esrgan variant)."""

from __future__ import annotations

import pytest
import torch

from gramgan.losses import GramGANLoss, GramGANLossConfig, ragan_generator_loss

pytestmark = pytest.mark.filterwarnings("ignore:gramgan.ops:RuntimeWarning")


def _flat_half_pair() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(3)
    sr, hr = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    hr[:, :, :32] = 0.5  # a flat half: the texture mask hides it
    return sr, hr


def test_unmasked_adversarial_pair_is_sr_and_hr(discriminator):
    sr, hr = _flat_half_pair()
    cfg = GramGANLossConfig(texture_weight=0.0, disc_perceptual_weight=0.0, adversarial_masked=False)
    out = GramGANLoss(cfg)(sr, hr, discriminator)
    torch.testing.assert_close(out.masked_sr, sr)
    torch.testing.assert_close(out.masked_hr, hr)
    with torch.no_grad():
        want = ragan_generator_loss(discriminator(hr, taps=())[0], discriminator(sr, taps=())[0])
    assert out.terms["adversarial"].item() == pytest.approx(want.item(), rel=1e-5)


def test_masked_adversarial_pair_is_the_default_and_differs(discriminator):
    sr, hr = _flat_half_pair()
    cfg = GramGANLossConfig(texture_weight=0.0, disc_perceptual_weight=0.0, mask_random_offset=False)
    assert cfg.adversarial_masked is True
    masked = GramGANLoss(cfg)(sr, hr, discriminator)
    assert (masked.masked_hr[:, :, :32] == 0).all()
    unmasked = GramGANLoss(GramGANLossConfig(**{**cfg.__dict__, "adversarial_masked": False}))(sr, hr, discriminator)
    assert masked.terms["adversarial"].item() != pytest.approx(unmasked.terms["adversarial"].item(), rel=1e-4)
