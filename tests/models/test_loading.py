"""Checkpoint loading: our format, BasicSR, bare/legacy/DDP state dicts, EMA choice, clear errors."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from gramgan.models import RRDBNet
from gramgan.models.loading import CHECKPOINT_FORMAT, CheckpointError, load_generator

TINY = {"num_block": 1, "num_feat": 8, "num_grow_ch": 4}


def _tiny(seed: int, scale: int = 4) -> RRDBNet:
    torch.manual_seed(seed)
    return RRDBNet(scale=scale, **TINY)


def _ours(model: RRDBNet, ema: RRDBNet | None, **extra: object) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "iteration": 123,
        "arch": model.arch,
        "generator": model.state_dict(),
        "generator_ema": None if ema is None else ema.state_dict(),
        **extra,
    }


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def _legacy(sd: dict) -> dict:
    """Rename to the original ESRGAN names."""
    out = {}
    for k, v in sd.items():
        for new, old in (
            ("conv_body.", "trunk_conv."),
            ("conv_up1.", "upconv1."),
            ("conv_up2.", "upconv2."),
            ("conv_hr.", "HRconv."),
        ):
            k = k.replace(new, old) if k.startswith(new) else k
        if k.startswith("body."):
            _, n, rdb, rest = k.split(".", 3)
            k = f"RRDB_trunk.{n}.RDB{rdb[-1]}.{rest}"
        out[k] = v
    return out


def test_our_checkpoint_prefers_ema(tmp_path: Path) -> None:
    gen, ema = _tiny(0), _tiny(1)
    rng_state = {"numpy": np.random.get_state(), "python": random.getstate(), "torch": torch.get_rng_state()}
    torch.save(_ours(gen, ema, rng=rng_state), tmp_path / "c.pt")
    model, info = load_generator(tmp_path / "c.pt")
    assert _same(model, ema) and info.ema and "iteration 123" in info.description
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    model, info = load_generator(tmp_path / "c.pt", prefer_ema=False)
    assert _same(model, gen) and not info.ema


def test_our_checkpoint_without_ema_falls_back_with_a_note(tmp_path: Path) -> None:
    gen = _tiny(0)
    torch.save(_ours(gen, None), tmp_path / "c.pt")
    model, info = load_generator(tmp_path / "c.pt")
    assert _same(model, gen) and not info.ema and "generator_ema" in info.notes[0]


@pytest.mark.parametrize("form", ["params_ema", "params", "both", "raw", "module", "legacy", "safetensors"])
def test_public_forms_load(tmp_path: Path, form: str) -> None:
    want, other = _tiny(2), _tiny(3)
    sd = want.state_dict()
    path = tmp_path / "w.pth"
    if form == "both":
        torch.save({"params": other.state_dict(), "params_ema": sd}, path)
    elif form in ("params_ema", "params"):
        torch.save({form: sd}, path)
    elif form == "raw":
        torch.save(sd, path)
    elif form == "module":
        torch.save({f"module.{k}": v for k, v in sd.items()}, path)
    elif form == "legacy":
        legacy = _legacy(sd)
        assert "RRDB_trunk.0.RDB1.conv1.weight" in legacy and "HRconv.weight" in legacy
        torch.save(legacy, path)
    else:
        path = tmp_path / "w.safetensors"
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    model, info = load_generator(path, scale=4)
    assert _same(model, want)
    assert model.arch == want.arch


def test_basicsr_no_ema_takes_params(tmp_path: Path) -> None:
    plain, ema = _tiny(4), _tiny(5)
    torch.save({"params": plain.state_dict(), "params_ema": ema.state_dict()}, tmp_path / "w.pth")
    assert _same(load_generator(tmp_path / "w.pth", prefer_ema=False)[0], plain)


def test_architecture_is_read_from_the_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = RRDBNet(scale=2, num_block=2, num_feat=12, num_grow_ch=6)
    torch.save({"params_ema": model.state_dict()}, tmp_path / "w.pth")
    loaded, info = load_generator(tmp_path / "w.pth")
    assert info.arch == {"num_in_ch": 3, "num_out_ch": 3, "scale": 2, "num_feat": 12, "num_block": 2, "num_grow_ch": 6}
    assert _same(loaded, model)


def test_requested_scale_mismatch_says_which(tmp_path: Path) -> None:
    torch.save({"params_ema": _tiny(0, scale=2).state_dict()}, tmp_path / "x2.pth")
    with pytest.raises(CheckpointError, match=r"expected a x4 model but .*x2\.pth is x2: conv_first has 12 input"):
        load_generator(tmp_path / "x2.pth", scale=4)


def test_stated_arch_disagreeing_with_weights(tmp_path: Path) -> None:
    ckpt = _ours(_tiny(0, scale=2), None)
    ckpt["arch"] = {**ckpt["arch"], "scale": 4}
    torch.save(ckpt, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match=r"'arch' says scale=4 but the weights have scale=2 .*12 input channels"):
        load_generator(tmp_path / "c.pt")


def test_not_an_rrdbnet_lists_unexpected_keys(tmp_path: Path) -> None:
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    torch.save({"params": other.state_dict()}, tmp_path / "vgg.pth")
    with pytest.raises(CheckpointError, match=r"not an RRDBNet checkpoint.*'0\.weight'"):
        load_generator(tmp_path / "vgg.pth")


def test_rrdb_with_extra_or_missing_keys(tmp_path: Path) -> None:
    sd = _tiny(0).state_dict()
    torch.save({**sd, "extra_head.weight": torch.zeros(1)}, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match="'extra_head.weight'"):
        load_generator(tmp_path / "extra.pth")
    del sd["conv_hr.bias"]
    torch.save(sd, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match="conv_hr.bias"):
        load_generator(tmp_path / "missing.pth")


class _RunsCode:
    """Unpickling this would call os.mkdir: a stand-in for a malicious checkpoint."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.mkdir, (self.marker,))


def test_code_in_checkpoint_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    torch.save({"params": _tiny(0).state_dict(), "payload": _RunsCode(str(marker))}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="weights_only"):
        load_generator(tmp_path / "evil.pth")
    assert not marker.exists()


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_generator(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_generator(tmp_path / "junk.pt")
    torch.save({"format": "gramgan-checkpoint-v9"}, tmp_path / "v9.pt")
    with pytest.raises(CheckpointError, match="unsupported checkpoint format"):
        load_generator(tmp_path / "v9.pt")
