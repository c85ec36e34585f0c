"""``GramGANModel``: this project's G and D steps inside BasicSR's training pipeline (``model_type: GramGANModel``).

It is BasicSR's ``SRGANModel`` (networks, EMA, optimizers, schedulers, checkpoints, validation and
logging are BasicSR's) with the Gram-GAN step of docs/losses.md:

- G step: BasicSR's ``pixel_opt`` / ``perceptual_opt`` when set, the texture loss ``texture_opt``
  (normally ``type: GramTextureLoss``), then :class:`gramgan.losses.GramGANLoss` for the discriminator
  perceptual term and the masked RaGAN (settings in ``train.gramgan_opt``);
- D step: :func:`gramgan.losses.discriminator_loss` on the masked pair of the G step.

Logged (weighted, as BasicSR logs its losses): ``l_g_pix``, ``l_g_percep``, ``l_g_texture``,
``l_g_dperc``, ``l_g_gan``, ``l_d``, ``out_d_real``, ``out_d_fake``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from basicsr.losses import build_loss
from basicsr.models.srgan_model import SRGANModel
from basicsr.utils.registry import MODEL_REGISTRY
from torch import Tensor

from gramgan.integrations.basicsr.options import check_options, gramgan_loss_config
from gramgan.losses import GramGANLoss, discriminator_loss

__all__ = ["GramGANModel"]


@MODEL_REGISTRY.register()
class GramGANModel(SRGANModel):
    """Gram-GAN training in BasicSR: masked RaGAN, discriminator perceptual loss, Gram texture loss."""

    def __init__(self, opt: dict[str, Any]) -> None:
        if opt.get("is_train", True):
            check_options(opt)
        super().__init__(opt)

    def init_training_settings(self) -> None:
        super().init_training_settings()  # EMA, net_d, pixel / perceptual losses, optimizers, schedulers
        train_opt = self.opt["train"]
        texture_opt = train_opt.get("texture_opt")
        self.cri_texture = build_loss(texture_opt).to(self.device) if texture_opt else None
        self.gramgan_loss = GramGANLoss(gramgan_loss_config(train_opt.get("gramgan_opt"))).to(self.device)

    def _mask_pair(self, sr: Tensor, hr: Tensor) -> tuple[Tensor, Tensor]:
        """The D step's pair when the G step did not run (``net_d_iters`` / ``net_d_init_iters``)."""
        if not self.gramgan_loss.config.adversarial_masked:
            return sr, hr
        masked_sr, masked_hr, _ = self.gramgan_loss.mask_pair(sr, hr)
        return masked_sr, masked_hr

    def optimize_parameters(self, current_iter: int) -> None:
        for p in self.net_d.parameters():
            p.requires_grad = False
        self.optimizer_g.zero_grad()
        self.output = self.net_g(self.lq)

        loss_dict: OrderedDict[str, Tensor] = OrderedDict()
        if current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters:
            l_g_total = self.output.new_zeros(())
            if self.cri_pix:
                loss_dict["l_g_pix"] = self.cri_pix(self.output, self.gt)
                l_g_total = l_g_total + loss_dict["l_g_pix"]
            if self.cri_perceptual:
                l_percep, l_style = self.cri_perceptual(self.output, self.gt)
                for name, value in (("l_g_percep", l_percep), ("l_g_style", l_style)):
                    if value is not None:
                        loss_dict[name] = value
                        l_g_total = l_g_total + value
            if self.cri_texture:
                loss_dict["l_g_texture"] = self.cri_texture(self.output, self.gt)
                l_g_total = l_g_total + loss_dict["l_g_texture"]
            gan = self.gramgan_loss(self.output, self.gt, self.net_d)  # D-perceptual + masked RaGAN
            loss_dict["l_g_dperc"] = gan.weighted["disc_perceptual"]
            loss_dict["l_g_gan"] = gan.weighted["adversarial"]
            (l_g_total + gan.total).backward()
            self.optimizer_g.step()
            masked_sr, masked_hr = gan.masked_sr, gan.masked_hr
        else:
            with torch.no_grad():
                masked_sr, masked_hr = self._mask_pair(self.output.detach(), self.gt)

        for p in self.net_d.parameters():
            p.requires_grad = True
        self.optimizer_d.zero_grad()
        l_d, d_terms = discriminator_loss(self.net_d, masked_sr.detach(), masked_hr)
        l_d.backward()
        self.optimizer_d.step()
        loss_dict["l_d"] = d_terms["d_loss"]
        loss_dict["out_d_real"] = d_terms["d_real"]
        loss_dict["out_d_fake"] = d_terms["d_fake"]

        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
