"""docs/drop-in.md: its snippets run as written, and what they compute is the project's step: the texture
loss equals the op on the same candidates, the mask pair is SR·M and HR·M, the D-perceptual and RaGAN
terms are those of GramGANLoss, and both networks were updated. Also the discriminator interface it states."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from gramgan import ops
from gramgan.losses import (
    GramGANLoss,
    GramGANLossConfig,
    build_candidates,
    discriminator_loss,
    discriminator_perceptual_loss,
    ragan_discriminator_loss,
)

PAGE = Path(__file__).resolve().parents[1] / "docs" / "drop-in.md"


def _block(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)
    (block,) = [b for b in blocks if marker in b]
    return block


def _run(namespace: dict, marker: str) -> dict:
    exec(compile(_block(marker), str(PAGE), "exec"), namespace)
    return namespace


def test_one_call_texture_loss_example():
    ns = _run({}, "loss = texture_loss(sr, hr)")
    assert ns["loss"].dtype == torch.float32 and ns["loss"].dim() == 0 and float(ns["loss"].detach()) > 0
    assert ns["sr"].grad is not None and ns["sr"].grad.abs().sum() > 0


def test_drop_in_step_computes_the_projects_terms():
    ns = _run({}, "Stand-ins for your own networks")
    g_before, d_before = copy.deepcopy(ns["net_g"]), copy.deepcopy(ns["net_d"])
    torch.manual_seed(1234)  # the texture loss's warps: the only draw of the step
    _run(ns, "l_tex = texture_loss(sr, hr)")
    sr, hr = ns["sr"].detach(), ns["hr"]

    torch.testing.assert_close(sr, g_before(ns["lq"]).detach())
    torch.manual_seed(1234)
    candidates = build_candidates(hr, "local", 4, 0.003, 4)
    torch.testing.assert_close(ns["l_tex"].detach(), ops.gram_texture_loss(sr, candidates, k=4), rtol=1e-5, atol=0)

    mask = ops.texture_mask(hr)
    assert 0 < float(mask.mean()) < 1  # the flat half is masked out, the rest kept
    torch.testing.assert_close(ns["masked_sr"].detach(), sr * mask)
    torch.testing.assert_close(ns["masked_hr"], hr * mask)

    # GramGANLoss with the same settings (grid offset 0, no content / VGG term) gives the same terms.
    config = GramGANLossConfig(content_weight=0, mask_random_offset=False)
    torch.manual_seed(1234)
    out = GramGANLoss(config)(sr, hr, copy.deepcopy(d_before))
    for name, value in (("texture", "l_tex"), ("disc_perceptual", "l_dperc"), ("adversarial", "l_gan")):
        torch.testing.assert_close(ns[value].detach(), out.terms[name], rtol=1e-5, atol=1e-7, msg=name)
    _, sr_taps = d_before(sr, taps=(5, 11))
    _, hr_taps = d_before(hr, taps=(5, 11))
    torch.testing.assert_close(ns["l_dperc"].detach(), discriminator_perceptual_loss(sr_taps, hr_taps).detach())
    real, fake = d_before(hr * mask, taps=())[0], d_before(sr * mask, taps=())[0]
    torch.testing.assert_close(ns["l_d"].detach(), ragan_discriminator_loss(real, fake).detach())

    weighted = 0.01 * ns["l_pix"] + 1e4 * ns["l_tex"] + ns["l_dperc"] + 0.005 * ns["l_gan"]
    torch.testing.assert_close(ns["l_g"].detach(), weighted.detach())
    for before, after in ((g_before, ns["net_g"]), (d_before, ns["net_d"])):
        assert any(not torch.equal(a, b) for a, b in zip(before.parameters(), after.parameters()))


def test_one_object_step_runs_and_updates_both_networks():
    ns = _run({}, "Stand-ins for your own networks")
    g_before, d_before = copy.deepcopy(ns["net_g"]), copy.deepcopy(ns["net_d"])
    _run(ns, "loss_fn = GramGANLoss(GramGANLossConfig())")
    assert set(ns["out"].terms) == {"content", "perceptual", "disc_perceptual", "texture", "adversarial"}
    assert float(ns["out"].terms["disc_perceptual"]) > 0 and float(ns["out"].terms["texture"]) > 0
    for before, after in ((g_before, ns["net_g"]), (d_before, ns["net_d"])):
        assert any(not torch.equal(a, b) for a, b in zip(before.parameters(), after.parameters()))


def _plain_discriminator() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1), nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 1)
    )


def test_a_plain_discriminator_works_when_the_d_perceptual_term_is_off():
    torch.manual_seed(0)
    net_d, hr = _plain_discriminator(), torch.rand(2, 3, 32, 32)
    sr = torch.rand(2, 3, 32, 32, requires_grad=True)
    out = GramGANLoss(GramGANLossConfig(disc_perceptual_weight=0))(sr, hr, net_d)
    out.total.backward()
    assert float(out.terms["adversarial"]) > 0 and sr.grad.abs().sum() > 0
    d_loss, _ = discriminator_loss(net_d, out.masked_sr.detach(), out.masked_hr)
    d_loss.backward()
    assert all(p.grad is not None for p in net_d.parameters())


def test_the_d_perceptual_term_names_the_missing_interface():
    sr, hr = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with pytest.raises(
        TypeError, match=r"forward\(x, taps=\(i, \.\.\.\)\) -> \(logits, \[features, \.\.\.\]\).*Sequential"
    ):
        GramGANLoss(GramGANLossConfig())(sr, hr, _plain_discriminator())


class _WrongTaps(nn.Module):
    """Takes ``taps`` but returns logits only: the interface half-implemented."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 3)

    def forward(self, x, taps=()):
        return self.conv(x).mean((1, 2, 3))


def test_a_discriminator_returning_no_features_is_told_what_to_return():
    sr, hr = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with pytest.raises(
        TypeError, match=r"one feature map per tap \(2 for taps=\(5, 11\)\); _WrongTaps returned a tensor"
    ):
        GramGANLoss(GramGANLossConfig())(sr, hr, _WrongTaps())
    out = GramGANLoss(GramGANLossConfig(disc_perceptual_weight=0))(sr, hr, _WrongTaps())  # logits only: fine
    assert torch.isfinite(out.total)
