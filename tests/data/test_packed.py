"""The packed format (``python -m gramgan.data.prepare SRC DST --packed``): the same training batches as
from the PNG folder for the same seed, the training config picks it up, and bad files are named."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from gramgan.data.datasets import FolderSource, RandomCropDataset
from gramgan.data.packed import PackedSource, is_packed
from gramgan.data.prepare import main
from gramgan.data.sampler import SeededSampler


@pytest.fixture
def photos(tmp_path):
    """Three PNGs of different sizes and shapes (one narrower than tall)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in {"b": (72, 100), "a": (96, 64), "c": (64, 64)}.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    return folder


def _batches(source, epochs=2, batch=4, rank=0, world=1):
    dataset = RandomCropDataset(source, scale=4, hr_crop=32, repeat=3, seed=7)
    sampler = SeededSampler(dataset, num_replicas=world, rank=rank, seed=7)
    loader = DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=True)
    out = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        out += list(loader)
    return out


def test_packed_images_give_the_same_batches_as_the_pngs(photos, tmp_path, capsys):
    assert main([str(photos), str(tmp_path / "packed"), "--packed", "--workers", "0", "--no-progress"]) == 0
    array = tmp_path / "packed" / "hr.npy"
    assert is_packed(array) and f"3 images packed into {array}" in capsys.readouterr().out
    source = PackedSource(array)
    assert [source.name(k) for k in range(3)] == ["a", "b", "c"]
    assert len(pickle.dumps(source)) < 4096  # workers map the file themselves, no copy of the pixels

    for rank in range(2):  # each rank's share of two epochs, every crop, flip, LR, name
        png, packed = _batches(FolderSource(photos), rank=rank, world=2), _batches(source, rank=rank, world=2)
        assert len(png) == len(packed) == 2
        for a, b in zip(png, packed):
            assert a["name"] == b["name"]
            assert torch.equal(a["hr"], b["hr"]) and torch.equal(a["lr"], b["lr"])


def test_the_training_config_reads_a_packed_file(photos, tmp_path):
    from gramgan.train.builders import build_train_dataset
    from gramgan.train.config_schema import DataConfig

    assert main([str(photos), str(tmp_path / "packed"), "--packed", "--workers", "0", "--no-progress"]) == 0
    dataset = build_train_dataset(DataConfig(train_hr=str(tmp_path / "packed" / "hr.npy"), hr_crop=32), 4, 0)
    assert isinstance(dataset.source, PackedSource) and len(dataset) == 3


def test_bad_input_is_named(photos, tmp_path, capsys):
    (photos / "broken.png").write_text("not a picture\n")
    assert main([str(photos), str(tmp_path / "packed"), "--packed", "--workers", "0", "--no-progress"]) == 2
    assert "broken.png" in capsys.readouterr().err and not (tmp_path / "packed" / "hr.npy").exists()
    with pytest.raises(FileNotFoundError, match="--packed"):
        PackedSource(tmp_path / "packed" / "hr.npy")
