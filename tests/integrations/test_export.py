"""``python -m gramgan.export``: which weights it writes (EMA unless --raw), in BasicSR's layout, and its
errors. (Loading the exports into BasicSR's own RRDBNet, and ONNX: test_basicsr_pipeline.py.)"""

from __future__ import annotations

import json

import pytest
import torch

from gramgan.export import main
from gramgan.models import CHECKPOINT_FORMAT, RRDBNet

ARCH = {"num_in_ch": 3, "num_out_ch": 3, "scale": 4, "num_feat": 8, "num_block": 1, "num_grow_ch": 4}


@pytest.fixture
def checkpoint(tmp_path):
    """A gramgan training checkpoint whose EMA and trained generators differ."""
    torch.manual_seed(0)
    raw, ema = RRDBNet(**ARCH).state_dict(), RRDBNet(**ARCH).state_dict()
    path = tmp_path / "last.pt"
    ckpt = {"format": CHECKPOINT_FORMAT, "arch": ARCH, "generator": raw, "generator_ema": ema, "iteration": 5}
    torch.save(ckpt, path)
    return path, raw, ema


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_basicsr_format_holds_the_ema_weights_under_both_keys_stored_once(checkpoint, capsys):
    path, raw, ema = checkpoint
    assert main([str(path), "--format", "basicsr"]) == 0
    out = path.with_name("last_basicsr.pth")
    assert f"wrote {out}" in capsys.readouterr().out
    loaded = torch.load(out, weights_only=True)
    assert set(loaded) == {"params", "params_ema"} and _equal(loaded["params_ema"], ema)
    assert loaded["params"]["conv_first.weight"].data_ptr() == loaded["params_ema"]["conv_first.weight"].data_ptr()
    assert RRDBNet.from_pretrained(out).arch == ARCH


def test_raw_flag_exports_the_trained_weights(checkpoint, tmp_path):
    path, raw, _ = checkpoint
    assert main([str(path), "--format", "safetensors", "--raw", "-o", str(tmp_path / "raw.safetensors")]) == 0
    from safetensors import safe_open
    from safetensors.torch import load_file

    assert _equal(load_file(str(tmp_path / "raw.safetensors")), raw)
    with safe_open(str(tmp_path / "raw.safetensors"), "pt") as handle:
        assert json.loads(handle.metadata()["gramgan.arch"]) == ARCH


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["missing.pt", "--format", "basicsr"], "checkpoint not found"),
        (["{ckpt}", "--format", "basicsr", "-o", "{ckpt}"], "is the checkpoint itself"),
        (["{ckpt}", "--format", "basicsr", "-o", "nowhere/g.pth"], "output folder not found"),
    ],
    ids=["missing", "overwrite-input", "no-folder"],
)
def test_input_errors_exit_2_with_one_line(checkpoint, tmp_path, monkeypatch, capsys, args, says):
    monkeypatch.chdir(tmp_path)
    argv = [a.format(ckpt=checkpoint[0]) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and says in err and "\n" not in err, err
