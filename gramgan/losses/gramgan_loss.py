"""The Gram-GAN generator objective (docs/losses.md) in one module, and its configuration.

``L_G = λ_c·L_content + λ_p·L_percep + λ_dp·L_dperc + λ_t·L_texture + λ_a·L_adv``::

    vgg = VGG19FeatureExtractor(layers=("conv2_2", "conv4_2", "conv4_4"))
    loss_fn = GramGANLoss(GramGANLossConfig(), vgg=vgg)
    out = loss_fn(sr, hr, discriminator)  # G step (the caller freezes D's parameters)
    out.total.backward()
    d_loss, d_terms = discriminator_loss(discriminator, out.masked_sr.detach(), out.masked_hr)  # D step
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from gramgan import ops
from gramgan._deprecation import renamed_keyword
from gramgan.losses.content import content_loss
from gramgan.losses.discriminator_calls import discriminator_logits, discriminator_taps
from gramgan.losses.gan import ragan_generator_loss
from gramgan.losses.perceptual import PerceptualLoss, discriminator_perceptual_loss, perceptual_layer_weights
from gramgan.losses.texture import texture_loss
from gramgan.ops._validate import CRITERIA, MASK_MODES, SCOPES, TARGETS  # the ops' own lists of choices

__all__ = ["TERM_NAMES", "GramGANLoss", "GramGANLossConfig", "GramGANLossOutput"]

TERM_NAMES = ("content", "perceptual", "disc_perceptual", "texture", "adversarial")


@renamed_keyword("num_warps", "num_affine_warps")
@dataclass
class GramGANLossConfig:
    """Weights and settings of the generator loss. Defaults are those of docs/losses.md; (ours) marks our choices.

    Attributes:
        content_weight: λ_c of the L1 content loss (0.01, ESRGAN's published value; ours).
        perceptual_weight: λ_p of the VGG19 perceptual loss (1.0, ESRGAN's; ours). The term is off
            (reported as 0) when no VGG extractor is given to :class:`GramGANLoss`.
        perceptual_preset: VGG19 layers and weights: ``"gramgan"`` (conv2_2, conv4_2, conv4_4 with
            1.0, 0.1, 0.01, the method note's) or ``"bebygan"`` (conv3_4, conv4_4, conv5_4 with
            1/8, 1/4, 1/2) ("gramgan").
        disc_perceptual_weight: λ_dp of the discriminator perceptual loss (1.0, ours). docs/losses.md: each
            weighted term of the order of the perceptual term at the start of GAN training, which is
            O(1) (ESRGAN's VGG term starts near 1; the gramgan preset is not measurable here without
            the VGG19 weights). Measured with a fresh nf=64 discriminator (``benchmarks/loss_magnitudes.py``,
            192 px crops): L_dperc = 0.20 (strong PSNR proxy, 30.2 dB), 0.43 (bicubic, 26.0 dB), 0.46
            (tiny L1-pretrained RRDB, 24.6 dB), 0.10 after 40 D steps; so λ_dp = 1 gives 0.1-0.5.
        texture_weight: λ_t of the Gram texture loss (1e4, ours). Measured the same way: L_texture =
            8e-6 (30.2 dB proxy), 9e-5 (bicubic), 5e-4 (tiny RRDB); a real PSNR-pretrained RRDB
            (28-29 dB) lies near 2-5e-5, so λ_t = 1e4 gives about 0.2-0.5 (0.9 for bicubic quality).
            For comparison, λ_c·L_content ≈ 3e-4 and λ_a·L_adv ≈ 0.0035 (L_adv ≈ log 2 for a fresh D).
        adversarial_weight: λ_a of the RaGAN loss (0.005, ESRGAN's; ours).
        disc_taps: which discriminator convolutions feed L_dperc, counted from 1 ((5, 11), the paper's).
        disc_perceptual_masked: feed the discriminator perceptual loss the masked pair (SR·M, HR·M)
            instead of the unmasked images (False: unmasked, ours).
        adversarial_masked: the RaGAN pair, in the G step and the D step, is the masked pair
            (SR·M, HR·M) (True, the paper's); False gives ESRGAN's RaGAN on the unmasked images
            (for ablations; ``masked_sr`` / ``masked_hr`` of the output are then SR and HR).
        patch_size: k of the texture loss's Gram patches (4, the paper's).
        num_affine_warps: J, the random affine warps in the candidate database (4, ours).
        warp_magnitude: m, the bound of the affine perturbation (0.003, the paper's).
        candidate_clamp: clip the bicubic-downsampled candidates (HR↓2, HR↓4) to [0, 1], the range of
            the images they stand for (True, ours).
        texture_scope: ``"local"`` (co-located candidates, docs/candidates.md) or ``"global"`` (Beby-GAN style
            search over HR, HR↓2, HR↓4 and the warps) ("local").
        gt_weight: β of the selection score; None means the scope's default: 0 for ``local`` (the
            note's rule, nearest Gram to the prediction) and 1 for ``global`` (Beby-GAN's
            regulariser, docs/candidates.md) (None).
        texture_target: ``"gram"`` (Eq. 4, Gram difference) or ``"pixel"`` ("gram").
        texture_criterion: ``"mse"`` or ``"l1"`` ("mse").
        mask_threshold: ε of the texture mask M (0.005, the paper's).
        mask_patch_size: cell size of the mask (4, the paper's).
        mask_random_offset: draw a fresh random grid offset in [0, k)² every call, the note's "random
            patch location" (True, ours); False uses offset (0, 0).
        mask_mode: ``"grid"`` (the paper's) or ``"sliding"`` (Beby-GAN's per-pixel window) ("grid").
        mask_window: window of the ``sliding`` mode (11, Beby-GAN's).
        backend: ``gramgan.ops`` backend for the texture loss and mask (None: the process default).

    A term whose weight is 0 is not computed and is reported as 0 (so is the perceptual term without
    a VGG). λ_t is calibrated for ``texture_target="gram"``, ``"mse"`` and the local scope: re-measure
    (``benchmarks/loss_magnitudes.py``) when changing those, the crop size or the discriminator width.
    """

    content_weight: float = 0.01
    perceptual_weight: float = 1.0
    perceptual_preset: str = "gramgan"
    disc_perceptual_weight: float = 1.0
    texture_weight: float = 1e4
    adversarial_weight: float = 0.005
    disc_taps: tuple[int, ...] = (5, 11)
    disc_perceptual_masked: bool = False
    adversarial_masked: bool = True
    patch_size: int = 4
    num_affine_warps: int = 4
    warp_magnitude: float = 0.003
    candidate_clamp: bool = True
    texture_scope: str = "local"
    gt_weight: float | None = None
    texture_target: str = "gram"
    texture_criterion: str = "mse"
    mask_threshold: float = 0.005
    mask_patch_size: int = 4
    mask_random_offset: bool = True
    mask_mode: str = "grid"
    mask_window: int = 11
    backend: str | None = None

    def __post_init__(self) -> None:
        for name in ("content_weight", "perceptual_weight", "disc_perceptual_weight", "texture_weight",
                     "adversarial_weight", "warp_magnitude", "mask_threshold"):
            _check_nonnegative(name, getattr(self, name))
        if self.gt_weight is not None:
            _check_nonnegative("gt_weight", self.gt_weight)
        perceptual_layer_weights(self.perceptual_preset)  # raises for an unknown preset
        for name, value, choices in (
            ("texture_scope", self.texture_scope, SCOPES),
            ("texture_target", self.texture_target, TARGETS),
            ("texture_criterion", self.texture_criterion, CRITERIA),
            ("mask_mode", self.mask_mode, MASK_MODES),
        ):
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r}: expected one of {', '.join(map(repr, choices))}")
        for name in ("patch_size", "mask_patch_size", "mask_window"):
            _check_int(name, getattr(self, name), 1)
        _check_int("num_affine_warps", self.num_affine_warps, 0)
        taps = tuple(self.disc_taps) if isinstance(self.disc_taps, (list, tuple)) else None
        if not taps or any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in taps):
            raise ValueError(f"disc_taps must be a non-empty list of positive ints, got {self.disc_taps!r}")
        self.disc_taps = taps
        if self.backend is not None and self.backend not in ops.BACKEND_NAMES:
            raise ValueError(f"unknown backend {self.backend!r}: expected one of {ops.BACKEND_NAMES}")

    @property
    def effective_gt_weight(self) -> float:
        """β actually used: ``gt_weight``, or 0 (local) / 1 (global) when it is None."""
        if self.gt_weight is not None:
            return float(self.gt_weight)
        return 1.0 if self.texture_scope == "global" else 0.0

    def weights(self) -> dict[str, float]:
        """``{term: λ}`` for the five terms of :data:`TERM_NAMES`."""
        return {
            "content": float(self.content_weight),
            "perceptual": float(self.perceptual_weight),
            "disc_perceptual": float(self.disc_perceptual_weight),
            "texture": float(self.texture_weight),
            "adversarial": float(self.adversarial_weight),
        }


def _check_nonnegative(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


@dataclass
class GramGANLossOutput:
    """What one generator-loss call returns.

    Attributes:
        total: the weighted sum, a scalar with gradient to SR.
        terms: the five unweighted terms (detached float32 scalars), keys :data:`TERM_NAMES`; a term
            that is off is 0.
        weighted: the same terms multiplied by their weights (detached); they sum to ``total``.
        masked_sr, masked_hr: ``SR·M`` and ``HR·M`` with M the texture mask of HR (SR and HR when
            ``adversarial_masked`` is False); the D step uses them (``masked_sr`` carries SR's
            gradient: detach it there).
        mask_offset: the grid offset ``(oy, ox)`` the mask used.
    """

    total: Tensor
    terms: dict[str, Tensor]
    weighted: dict[str, Tensor]
    masked_sr: Tensor
    masked_hr: Tensor
    mask_offset: tuple[int, int] = field(default=(0, 0))


class GramGANLoss(nn.Module):
    """The generator loss of Gram-GAN: all five terms from ``(sr, hr, discriminator)``.

    Args:
        config: weights and settings (:class:`GramGANLossConfig`).
        vgg: a frozen feature extractor covering the preset's layers (``VGG19FeatureExtractor``), or
            None to switch the perceptual term off (weight treated as 0, term reported as 0).

    ``forward(sr, hr, discriminator)``:

    - draws from torch's global CPU RNG, in this order: the J warps of the candidate database (when
      the texture term is on), then the mask offset via ``torch.randint`` (when
      ``mask_random_offset`` and the grid mode);
    - runs the discriminator (its current mode; the caller freezes its parameters) once per distinct
      input, each batch on its own, as BasicSR does, so that BatchNorm in train mode sees the same
      batch composition as in the D step: the taps for L_dperc come from SR and HR (unmasked, or
      SR·M and HR·M with ``disc_perceptual_masked``), the logits for L_adv from SR·M and HR·M (SR
      and HR without ``adversarial_masked``). When both terms use the same pair, one pass per image
      gives both (2 passes; 4 otherwise). The HR passes run under ``no_grad`` (the HR branch is a
      constant). A pass whose term is off is skipped.
    - needs from the discriminator only ``D(x) -> logits`` while ``disc_perceptual_weight`` is 0; the
      discriminator perceptual term needs ``D(x, taps=(i, ...)) -> (logits, [features, ...])`` (as
      :class:`~gramgan.models.VGGStyleDiscriminator` provides) and raises ``TypeError`` naming that
      interface otherwise (:mod:`gramgan.losses.discriminator_calls`, docs/drop-in.md).

    ``sr`` and ``hr`` of different floating dtypes are both promoted (bf16 SR + fp32 HR -> fp32), so
    the mask threshold is applied to full-precision HR.
    """

    def __init__(self, config: GramGANLossConfig | None = None, vgg: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else GramGANLossConfig()
        self.perceptual = (
            PerceptualLoss(vgg, perceptual_layer_weights(self.config.perceptual_preset)) if vgg is not None else None
        )

    def active_weights(self) -> dict[str, float]:
        """The weights in use: the config's, with the perceptual one 0 when there is no VGG."""
        weights = self.config.weights()
        if self.perceptual is None:
            weights["perceptual"] = 0.0
        return weights

    def draw_mask_offset(self) -> tuple[int, int]:
        """A random grid offset in ``[0, k)²`` from torch's global RNG, or (0, 0) when not random."""
        cfg = self.config
        if not cfg.mask_random_offset or cfg.mask_mode != "grid":
            return (0, 0)
        oy, ox = torch.randint(0, cfg.mask_patch_size, (2,)).tolist()
        return (int(oy), int(ox))

    def mask_pair(self, sr: Tensor, hr: Tensor) -> tuple[Tensor, Tensor, tuple[int, int]]:
        """``(SR·M, HR·M, offset)`` with M the texture mask of HR under the config, at a freshly drawn
        offset (:meth:`draw_mask_offset`); what :meth:`forward` uses, for a D step without a G step."""
        cfg = self.config
        offset = self.draw_mask_offset()
        masked_sr, masked_hr = ops.mask_pair(
            sr,
            hr,
            k=cfg.mask_patch_size,
            threshold=cfg.mask_threshold,
            offset=offset,
            mode=cfg.mask_mode,
            window=cfg.mask_window,
            backend=cfg.backend,
        )
        return masked_sr, masked_hr, offset

    def forward(self, sr: Tensor, hr: Tensor, discriminator: nn.Module | None) -> GramGANLossOutput:
        cfg = self.config
        if not isinstance(sr, Tensor) or not isinstance(hr, Tensor):
            raise TypeError("sr and hr must be torch.Tensors")
        if sr.dim() != 4 or sr.shape != hr.shape:
            raise ValueError(
                f"sr and hr must be (B, C, H, W) tensors of the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}"
            )
        if not (sr.is_floating_point() and hr.is_floating_point()):
            raise TypeError(f"sr and hr must be floating tensors, got {sr.dtype} and {hr.dtype}")
        dtype = torch.promote_types(sr.dtype, hr.dtype)
        sr, hr = sr.to(dtype), hr.detach().to(dtype)
        weights = self.active_weights()
        needs_d = weights["disc_perceptual"] > 0 or weights["adversarial"] > 0
        if needs_d and discriminator is None:
            raise ValueError("a discriminator is needed for the disc_perceptual and adversarial terms (weights > 0)")

        zero = sr.new_zeros((), dtype=torch.float32)
        terms = dict.fromkeys(TERM_NAMES, zero)
        terms["content"] = content_loss(sr, hr).float()
        if weights["perceptual"] > 0:
            terms["perceptual"] = self.perceptual(sr, hr)
        if weights["texture"] > 0:
            terms["texture"] = texture_loss(
                sr,
                hr,
                scope=cfg.texture_scope,
                num_affine_warps=cfg.num_affine_warps,
                magnitude=cfg.warp_magnitude,
                patch_size=cfg.patch_size,
                gt_weight=cfg.effective_gt_weight,
                target=cfg.texture_target,
                criterion=cfg.texture_criterion,
                clamp=cfg.candidate_clamp,
                backend=cfg.backend,
            )

        masked_sr, masked_hr, offset = self.mask_pair(sr, hr)

        d_sr, d_hr = (masked_sr, masked_hr) if cfg.disc_perceptual_masked else (sr, hr)
        adv_sr, adv_hr = (masked_sr, masked_hr) if cfg.adversarial_masked else (sr, hr)
        want_taps, want_logits = weights["disc_perceptual"] > 0, weights["adversarial"] > 0
        # Both terms on the same pair: one pass per image gives the taps and the logits.
        shared = want_taps and want_logits and d_sr is adv_sr
        if want_taps:
            (fake_logits, sr_feats), (real_logits, hr_feats) = _discriminate(discriminator, d_sr, d_hr, cfg.disc_taps)
            terms["disc_perceptual"] = discriminator_perceptual_loss(sr_feats, hr_feats)
        if want_logits:
            if not shared:
                (fake_logits, _), (real_logits, _) = _discriminate(discriminator, adv_sr, adv_hr, ())
            terms["adversarial"] = ragan_generator_loss(real_logits, fake_logits)

        total = zero
        for name in TERM_NAMES:
            if weights[name] > 0 or name == "content":
                total = total + weights[name] * terms[name]
        return GramGANLossOutput(
            total=total,
            terms={name: value.detach() for name, value in terms.items()},
            weighted={name: (weights[name] * terms[name]).detach() for name in TERM_NAMES},
            masked_sr=adv_sr,
            masked_hr=adv_hr,
            mask_offset=offset,
        )

    def extra_repr(self) -> str:
        weights: Mapping[str, float] = self.active_weights()
        return ", ".join(f"{name}={w:g}" for name, w in weights.items())


def _discriminate(
    discriminator: nn.Module, fake: Tensor, real: Tensor, taps: tuple[int, ...]
) -> tuple[tuple[Tensor, list[Tensor]], tuple[Tensor, list[Tensor]]]:
    """``(logits, taps)`` of the fake batch (with gradient to it) and of the real batch (no gradient),
    each batch in its own pass (BatchNorm in train mode normalises each by its own statistics).

    With no taps wanted the discriminator may be a plain ``D(x) -> logits``
    (:mod:`gramgan.losses.discriminator_calls`); with taps it must provide them."""
    if not taps:
        fake_logits = discriminator_logits(discriminator, fake)
        with torch.no_grad():
            real_logits = discriminator_logits(discriminator, real)
        return (fake_logits, []), (real_logits, [])
    fake_out = discriminator_taps(discriminator, fake, taps)
    with torch.no_grad():
        real_out = discriminator_taps(discriminator, real, taps)
    return fake_out, real_out
