"""Checkpoints: atomic writes, rotation, weights-only loading, RNG capture, generator import."""

from __future__ import annotations

import os
import pickle
import random

import numpy as np
import pytest
import torch

from gramgan.models import RRDBNet
from gramgan.train.checkpoint import (
    FORMAT,
    CheckpointError,
    find_latest_checkpoint,
    get_rng_state,
    list_checkpoints,
    load_checkpoint,
    load_generator_state,
    save_checkpoint,
    set_rng_state,
)

TINY_ARCH = {"num_feat": 8, "num_block": 2, "num_grow_ch": 4}


def _state(iteration, **extra):
    return {"format": FORMAT, "iteration": iteration, **extra}


def test_save_is_atomic_and_keeps_the_newest(tmp_path, monkeypatch):
    folder = tmp_path / "ckpt"
    for it in (10, 20, 30, 40):
        save_checkpoint(_state(it), folder, keep=2)
    assert [it for it, _ in list_checkpoints(folder)] == [30, 40]
    assert find_latest_checkpoint(folder).name == "iter_00000040.pt"
    assert sorted(p.name for p in folder.iterdir()) == ["iter_00000030.pt", "iter_00000040.pt"]

    # A failure while writing leaves neither a partial file under the final name nor a temp file.
    def broken_save(obj, handle):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(_state(50), folder, keep=2)
    assert sorted(p.name for p in folder.iterdir()) == ["iter_00000030.pt", "iter_00000040.pt"]
    assert find_latest_checkpoint(tmp_path / "nothing") is None


def test_load_is_weights_only(tmp_path):
    path = tmp_path / "evil.pt"

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    with open(path, "wb") as handle:
        pickle.dump({"format": FORMAT, "x": Payload()}, handle, protocol=2)
    with pytest.raises(CheckpointError, match="cannot load checkpoint"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a gramgan training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.standard_normal()  # leaves a cached gaussian in numpy's state
    path = save_checkpoint(_state(1, rng=[get_rng_state()]), tmp_path, keep=1)
    expected = (random.random(), np.random.standard_normal(), np.random.rand(), torch.rand(3))
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    set_rng_state(load_checkpoint(path)["rng"][0])
    got = (random.random(), np.random.standard_normal(), np.random.rand(), torch.rand(3))
    assert got[:3] == expected[:3] and torch.equal(got[3], expected[3])


def _weights_equal(a, b):
    return all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()


@pytest.mark.parametrize("layout", ["ours", "basicsr", "plain", "legacy", "ddp"])
def test_generator_weights_load_from_every_layout(tmp_path, layout):
    torch.manual_seed(0)
    g, ema = RRDBNet(**TINY_ARCH).state_dict(), RRDBNet(**TINY_ARCH).state_dict()
    if layout == "ours":
        blob = _state(5, generator=g, generator_ema=ema)
    elif layout == "basicsr":
        blob = {"params": g, "params_ema": ema}
    elif layout == "plain":
        blob, ema = ema, ema
    elif layout == "legacy":
        legacy = {}
        for key, value in ema.items():
            key = key.replace("conv_body", "trunk_conv").replace("body.", "RRDB_trunk.").replace(".rdb", ".RDB")
            key = key.replace("conv_up1", "upconv1").replace("conv_up2", "upconv2").replace("conv_hr", "HRconv")
            legacy[key] = value
        blob = legacy
    else:
        blob = {f"module.{k}": v for k, v in ema.items()}
    torch.save(blob, tmp_path / "g.pth")
    loaded = load_generator_state(tmp_path / "g.pth")
    assert _weights_equal(loaded, ema)
    if layout in ("ours", "basicsr"):
        assert _weights_equal(load_generator_state(tmp_path / "g.pth", prefer_ema=False), g)
    RRDBNet(**TINY_ARCH).load_pretrained(loaded)


def test_generator_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_generator_state(tmp_path / "missing.pth")
    torch.save({"weight": torch.zeros(1)}, tmp_path / "notg.pth")
    with pytest.raises(ValueError, match="notg.pth"):
        load_generator_state(tmp_path / "notg.pth")
