"""The relativistic average GAN losses (Eqs. 7-9) with BCE-with-logits, as in ESRGAN.

With ``C`` the discriminator's logit, ``x_r`` the (masked) HR and ``x_f`` the (masked) SR image:

- generator:     ``1/2 [BCE(C(x_r) - E C(x_f), 0) + BCE(C(x_f) - E C(x_r), 1)]``, ``C(x_r)`` detached;
- discriminator: ``1/2 [BCE(C(x_r) - E C(x_f), 1) + BCE(C(x_f) - E C(x_r), 0)]``, SR detached (the
  logits of both images carry the gradient to the discriminator).

``E`` is the mean over the batch. Logits are taken in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gramgan.losses.discriminator_calls import discriminator_logits

__all__ = ["discriminator_loss", "ragan_discriminator_loss", "ragan_generator_loss"]


def _check_logits(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    if real.shape != fake.shape or real.numel() == 0:
        raise ValueError(
            f"real and fake logits must have the same non-empty shape, got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    return real.float(), fake.float()


def _bce(logits: Tensor, target: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def ragan_generator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The generator's RaGAN loss; ``real_logits`` are treated as constants."""
    real, fake = _check_logits(real_logits, fake_logits)
    real = real.detach()
    return 0.5 * (_bce(real - fake.mean(), 0.0) + _bce(fake - real.mean(), 1.0))


def ragan_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The discriminator's RaGAN loss (pass logits of a detached SR image as ``fake_logits``)."""
    real, fake = _check_logits(real_logits, fake_logits)
    return 0.5 * (_bce(real - fake.mean(), 1.0) + _bce(fake - real.mean(), 0.0))


def discriminator_loss(
    discriminator: nn.Module, masked_sr: Tensor, masked_hr: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """The discriminator step's loss on the masked pair that :class:`~gramgan.losses.GramGANLoss` returned.

    ``masked_sr`` is detached here (docs/losses.md: SR detached in the D step). The discriminator runs
    once on the real and once on the fake batch (separate passes, as BasicSR's ESRGAN does, so that
    BatchNorm in train mode normalises each batch by its own statistics), with no taps: a plain
    ``D(x) -> logits`` is enough here (:mod:`gramgan.losses.discriminator_calls`).

    Returns ``(d_loss, terms)``; ``terms`` holds detached scalars ``"d_loss"``, ``"d_real"`` and
    ``"d_fake"`` (the mean real and fake logits).
    """
    if masked_sr.shape != masked_hr.shape:
        raise ValueError(
            f"masked_sr has shape {tuple(masked_sr.shape)} but masked_hr has {tuple(masked_hr.shape)}: they must match"
        )
    real_logits = discriminator_logits(discriminator, masked_hr.detach())
    fake_logits = discriminator_logits(discriminator, masked_sr.detach())
    loss = ragan_discriminator_loss(real_logits, fake_logits)
    terms = {
        "d_loss": loss.detach(),
        "d_real": real_logits.detach().float().mean(),
        "d_fake": fake_logits.detach().float().mean(),
    }
    return loss, terms
