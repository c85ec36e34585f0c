"""One optimisation step of each phase (``docs/training.md``): ``psnr`` (L1 on G) and ``gan`` (a G step
with D as a fixed critic, then a D step on the masked pair). Each returns the step's detached
scalars, keyed as the log records them."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from gramgan.losses import GramGANLossOutput, discriminator_loss
from gramgan.train.run import Run

__all__ = ["gan_step", "psnr_step"]


def psnr_step(run: Run, lr: Tensor, hr: Tensor) -> dict[str, Tensor]:
    with run.autocast():
        sr = run.g_ddp(lr)
    loss = F.l1_loss(sr.float(), hr)
    run.opt_g.zero_grad(set_to_none=True)
    loss.backward()
    run.opt_g.step()
    return {"loss/l1": loss.detach()}


def generator_step(run: Run, lr: Tensor, hr: Tensor) -> GramGANLossOutput:
    """G's update on the Gram-GAN loss; D takes part (adversarial and discriminator-perceptual terms)
    with its parameters frozen, so this step leaves D's weights and gradients alone."""
    run.d.requires_grad_(False)
    with run.autocast():
        sr = run.g_ddp(lr)
        out = run.loss_fn(sr, hr, run.d)
    run.opt_g.zero_grad(set_to_none=True)
    out.total.backward()
    run.opt_g.step()
    run.d.requires_grad_(True)
    return out


def discriminator_step(run: Run, out: GramGANLossOutput) -> dict[str, Tensor]:
    """D's update on the RaGAN loss of the masked pair (SR detached); returns its scalar terms."""
    with run.autocast():
        d_loss, d_terms = discriminator_loss(run.d_ddp, out.masked_sr.detach(), out.masked_hr)
    run.opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    run.opt_d.step()
    return d_terms


def gan_step(run: Run, lr: Tensor, hr: Tensor) -> dict[str, Tensor]:
    out = generator_step(run, lr, hr)
    d_terms = discriminator_step(run, out)
    return {
        "loss/total": out.total.detach(),
        "loss/d": d_terms["d_loss"],
        **{f"loss/{name}": value for name, value in out.terms.items()},
        **{f"weighted/{name}": value for name, value in out.weighted.items()},
        "d_real": d_terms["d_real"],
        "d_fake": d_terms["d_fake"],
    }
