"""RRDBNet: size, names, an independent functional forward, both checkpoint naming schemes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gramgan.models import RRDBNet, infer_rrdb_arch, normalize_rrdb_state_dict, remap_legacy_keys

TINY = {"num_feat": 8, "num_block": 2, "num_grow_ch": 4}


def _tiny(**kw) -> RRDBNet:
    torch.manual_seed(0)
    return RRDBNet(**{**TINY, **kw})


def test_default_has_esrgan_parameter_count():
    n = sum(p.numel() for p in RRDBNet().parameters())
    assert n == 16_697_987
    assert round(n / 1e6, 2) == 16.70


def test_parameter_names_are_basicsr():
    keys = set(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4).state_dict())
    expected = {f"{m}.{p}" for m in ("conv_first", "conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last")
                for p in ("weight", "bias")}
    expected |= {f"body.0.rdb{r}.conv{c}.{p}" for r in (1, 2, 3) for c in range(1, 6) for p in ("weight", "bias")}
    assert keys == expected


def _reference_forward(sd: dict, x: torch.Tensor, unshuffle: int, nb: int) -> torch.Tensor:
    """ESRGAN written out with functional ops straight from the state dict."""

    def conv(name, t):
        return F.conv2d(t, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1)

    def lrelu(t):
        return torch.where(t >= 0, t, 0.2 * t)

    def rdb(prefix, t):
        feats = [t]
        for c in range(1, 5):
            feats.append(lrelu(conv(f"{prefix}.conv{c}", torch.cat(feats, 1))))
        return t + 0.2 * conv(f"{prefix}.conv5", torch.cat(feats, 1))

    if unshuffle > 1:
        b, c, h, w = x.shape
        x = x.view(b, c, h // unshuffle, unshuffle, w // unshuffle, unshuffle)
        x = x.permute(0, 1, 3, 5, 2, 4).reshape(b, c * unshuffle**2, h // unshuffle, w // unshuffle)
    feat = conv("conv_first", x)
    trunk = feat
    for i in range(nb):
        block_in = trunk
        for r in (1, 2, 3):
            trunk = rdb(f"body.{i}.rdb{r}", trunk)
        trunk = block_in + 0.2 * trunk
    feat = feat + conv("conv_body", trunk)
    feat = lrelu(conv("conv_up1", feat.repeat_interleave(2, -2).repeat_interleave(2, -1)))
    feat = lrelu(conv("conv_up2", feat.repeat_interleave(2, -2).repeat_interleave(2, -1)))
    return conv("conv_last", lrelu(conv("conv_hr", feat)))


@pytest.mark.parametrize(("scale", "unshuffle"), [(4, 1), (2, 2), (1, 4)])
def test_forward_shape_and_values(scale, unshuffle):
    model = _tiny(scale=scale).double()
    x = torch.rand(2, 3, 8, 12, dtype=torch.float64)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 3, 8 * scale, 12 * scale)
    assert model.conv_first.in_channels == 3 * unshuffle**2
    expected = _reference_forward(model.state_dict(), x, unshuffle, TINY["num_block"])
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


def _to_legacy(sd: dict) -> dict:
    """BasicSR names -> original ESRGAN names, written independently of remap_legacy_keys."""
    out = {}
    for k, v in sd.items():
        parts = k.split(".")
        if parts[0] == "body":
            k = f"RRDB_trunk.{parts[1]}.RDB{parts[2][-1]}.{'.'.join(parts[3:])}"
        else:
            head = {"conv_body": "trunk_conv", "conv_up1": "upconv1", "conv_up2": "upconv2", "conv_hr": "HRconv"}
            k = ".".join([head.get(parts[0], parts[0])] + parts[1:])
        out[k] = v
    return out


def test_legacy_and_wrapped_checkpoints_load_to_identical_outputs(tmp_path):
    src = _tiny()
    sd = src.state_dict()
    legacy = _to_legacy(sd)
    assert "RRDB_trunk.1.RDB3.conv5.weight" in legacy and "HRconv.bias" in legacy
    assert remap_legacy_keys(legacy).keys() == sd.keys()
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        want = src(x)
    torch.save({"params_ema": sd, "params": {k: v * 0 for k, v in sd.items()}}, tmp_path / "ema.pth")
    sources = [
        sd,
        legacy,
        {"params": legacy},
        {f"module.{k}": v for k, v in sd.items()},
        tmp_path / "ema.pth",
        str(tmp_path / "ema.pth"),
    ]
    for source in sources:
        torch.manual_seed(1)  # a different init, so loading must overwrite it all
        dst = RRDBNet(**TINY)
        dst.load_pretrained(source)
        with torch.no_grad():
            torch.testing.assert_close(dst(x), want, rtol=0, atol=0)
    built = RRDBNet.from_pretrained(legacy)
    assert built.arch == src.arch


def test_load_pretrained_names_the_mismatch():
    with pytest.raises(ValueError, match=r"num_block=2 \(model has 3\)"):
        RRDBNet(num_feat=8, num_block=3, num_grow_ch=4).load_pretrained(_tiny().state_dict())
    with pytest.raises(ValueError, match=r"scale=2 \(model has 4\)"):
        RRDBNet(**TINY).load_pretrained(_tiny(scale=2).state_dict())
    with pytest.raises(ValueError, match="missing 'conv_first.weight'"):
        RRDBNet(**TINY).load_pretrained({"foo.weight": torch.zeros(1)})
    with pytest.raises(TypeError, match="state dict"):
        normalize_rrdb_state_dict(42)


@pytest.mark.parametrize("scale", [4, 2, 1])
def test_infer_rrdb_arch(scale):
    kw = {"num_feat": 16, "num_block": 3, "num_grow_ch": 8, "scale": scale}
    sd = RRDBNet(**kw).state_dict()
    expected = {"num_in_ch": 3, "num_out_ch": 3, **kw}
    assert infer_rrdb_arch(sd) == expected
    assert infer_rrdb_arch(_to_legacy(sd)) == expected


def test_infer_rrdb_arch_other_channels_and_errors():
    gray = RRDBNet(num_in_ch=1, num_out_ch=1, scale=2, **TINY).state_dict()
    assert infer_rrdb_arch(gray) == {"num_in_ch": 1, "num_out_ch": 1, "scale": 2, **TINY}
    sd = RRDBNet(num_in_ch=4, num_out_ch=3, **TINY).state_dict()
    with pytest.raises(ValueError, match="conv_first takes 4 input channels"):
        infer_rrdb_arch(sd)
    assert infer_rrdb_arch(sd, num_in_ch=4)["scale"] == 4


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="scale"):
        RRDBNet(scale=3)
    with pytest.raises(ValueError, match="num_block"):
        RRDBNet(num_block=0)
    with pytest.raises(ValueError, match="divisible by 2"):
        _tiny(scale=2)(torch.rand(1, 3, 7, 8))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        _tiny()(torch.rand(3, 8, 8))
