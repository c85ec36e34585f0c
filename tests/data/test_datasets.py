"""Datasets, augmentation and the resumable sampler (gramgan.data.datasets / augment)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gramgan.data.augment import Dihedral, apply_dihedral, random_crop_box, random_dihedral
from gramgan.data.datasets import (
    ArraySource,
    FolderSource,
    PairedRandomCropDataset,
    RandomCropDataset,
    SeededSampler,
    ValidationDataset,
    sample_seed,
    synthesize_lr,
)
from gramgan.data.resize import imresize
from gramgan.images import ImageReadError, list_images
from gramgan.images import read_rgb8 as read_image


def _write_png(path, array):
    Image.fromarray(array).save(path)
    return path


def _random_image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_synthesize_lr_is_clamped_quantised_bicubic():
    hr = torch.rand(3, 32, 40, generator=torch.Generator().manual_seed(0))
    lr = synthesize_lr(hr, 4)
    assert lr.shape == (3, 8, 10)
    expected = torch.round(imresize(hr, scale=0.25).clamp(0, 1) * 255) / 255
    assert torch.equal(lr, expected)
    assert torch.equal(torch.round(lr * 255), lr * 255)  # on the 8-bit grid
    with pytest.raises(ValueError, match="multiple of the scale"):
        synthesize_lr(torch.rand(3, 30, 32), 4)


def test_random_crop_dataset_shapes_content_and_determinism():
    image = _random_image(100, 120)
    ds = RandomCropDataset(ArraySource({"img": image}), scale=4, hr_crop=32, repeat=3)
    assert len(ds) == 3
    a, b = ds[(0, 123)], ds[(0, 123)]
    assert a["hr"].shape == (3, 32, 32) and a["lr"].shape == (3, 8, 8) and a["name"] == "img"
    assert torch.equal(a["hr"], b["hr"])  # same seed, same sample
    assert not torch.equal(a["hr"], ds[(0, 124)]["hr"])
    assert torch.equal(a["lr"], synthesize_lr(a["hr"], 4))
    # With augmentation off the crop is a window of the image at a multiple-of-scale corner.
    plain = RandomCropDataset(ArraySource({"img": image}), scale=4, hr_crop=32, hflip=False, vflip=False, rot90=False)
    hr = (plain[(0, 5)]["hr"] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    hits = [
        (y, x) for y in range(0, 69, 4) for x in range(0, 89, 4) if np.array_equal(image[y : y + 32, x : x + 32], hr)
    ]
    assert len(hits) == 1


def test_dihedral_draws_cover_all_eight_and_switches_work():
    g = torch.Generator().manual_seed(0)
    seen = {random_dihedral(g) for _ in range(200)}
    assert len(seen) == 8
    g = torch.Generator().manual_seed(0)
    assert {random_dihedral(g, hflip=False, vflip=False, rot90=False) for _ in range(50)} == {Dihedral()}
    x = torch.arange(6.0).view(1, 2, 3)
    assert torch.equal(apply_dihedral(x, Dihedral(hflip=True)), x.flip(-1))
    assert torch.equal(apply_dihedral(x, Dihedral(vflip=True)), x.flip(-2))
    assert apply_dihedral(x, Dihedral(transpose=True)).shape == (1, 3, 2)


def test_random_crop_box_bounds_alignment_and_error():
    g = torch.Generator().manual_seed(1)
    boxes = {random_crop_box(20, 24, 8, g, align=4) for _ in range(200)}
    assert all(y % 4 == 0 and x % 4 == 0 and y + 8 <= 20 and x + 8 <= 24 for y, x in boxes)
    assert len(boxes) == 4 * 5
    with pytest.raises(ValueError, match="smaller than the 32x32 crop"):
        random_crop_box(20, 40, 32, g)


def test_folder_source_and_errors_name_the_file(tmp_path):
    _write_png(tmp_path / "a.png", _random_image(40, 40))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert [p.name for p in list_images(tmp_path)] == ["a.png", "broken.png"]
    source = FolderSource(tmp_path)
    assert source.load(0).shape == (3, 40, 40) and source.load(0).dtype == torch.uint8
    with pytest.raises(ImageReadError, match="broken.png"):
        source.load(1)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        list_images(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        list_images(tmp_path / "empty")
    small = RandomCropDataset(FolderSource(tmp_path), scale=4, hr_crop=64)
    with pytest.raises(ValueError, match="'a'.*smaller"):
        small[0]


def test_grey_and_rgba_images_become_rgb(tmp_path):
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(tmp_path / "grey.png")
    Image.fromarray(np.full((8, 8, 4), 9, np.uint8)).save(tmp_path / "rgba.png")
    assert read_image(tmp_path / "grey.png").shape == (3, 8, 8)
    assert int(read_image(tmp_path / "rgba.png")[0, 0, 0]) == 9


def test_paired_dataset_aligns_crops_and_matches_div2k_names(tmp_path):
    (tmp_path / "hr").mkdir()
    (tmp_path / "lr").mkdir()
    lr = _random_image(16, 20)
    hr = lr.repeat(4, axis=0).repeat(4, axis=1)  # nearest x4: any aligned crop + symmetry commutes
    _write_png(tmp_path / "hr" / "0001.png", hr)
    _write_png(tmp_path / "lr" / "0001x4.png", lr)
    ds = PairedRandomCropDataset(tmp_path / "hr", tmp_path / "lr", scale=4, hr_crop=32)
    for seed in range(10):
        s = ds[(0, seed)]
        assert s["hr"].shape == (3, 32, 32) and s["lr"].shape == (3, 8, 8)
        assert torch.equal(s["lr"].repeat_interleave(4, -1).repeat_interleave(4, -2), s["hr"])
    _write_png(tmp_path / "hr" / "0002.png", hr)
    with pytest.raises(FileNotFoundError, match="0002.png"):
        PairedRandomCropDataset(tmp_path / "hr", tmp_path / "lr")


def test_paired_dataset_size_mismatch_names_both_files(tmp_path):
    (tmp_path / "hr").mkdir()
    (tmp_path / "lr").mkdir()
    _write_png(tmp_path / "hr" / "x.png", _random_image(64, 64))
    _write_png(tmp_path / "lr" / "x.png", _random_image(15, 16))
    ds = PairedRandomCropDataset(tmp_path / "hr", tmp_path / "lr", scale=4, hr_crop=32)
    with pytest.raises(ValueError, match="hr/x.png.*lr/x.png"):
        ds[0]


def test_validation_dataset_crops_to_scale_multiple_and_centre():
    source = ArraySource({"v": _random_image(50, 70)})
    whole = ValidationDataset(source, scale=4)[0]
    assert whole["hr"].shape == (3, 48, 68) and whole["lr"].shape == (3, 12, 17)
    centre = ValidationDataset(source, scale=4, crop=32)[0]
    assert centre["hr"].shape == (3, 32, 32)
    expected = torch.from_numpy(source.images[0].numpy()[:, 9:41, 19:51]).float() / 255
    assert torch.equal(centre["hr"], expected)
    assert torch.equal(centre["lr"], synthesize_lr(centre["hr"], 4))
    assert len(ValidationDataset(ArraySource({"a": _random_image(8, 8), "b": _random_image(8, 8)}), max_images=1)) == 1


def test_seeded_sampler_partitions_epochs_and_resumes_mid_epoch():
    data = list(range(10))
    full = SeededSampler(data, num_replicas=1, rank=0, seed=3)
    full.set_epoch(2)
    order = list(full)
    assert sorted(i for i, _ in order) == data
    assert len({s for _, s in order}) == 10
    resumed = SeededSampler(data, seed=3)
    resumed.set_epoch(2)
    resumed.set_start(4)
    assert list(resumed) == order[4:] and len(resumed) == 6
    full.set_epoch(3)
    assert [i for i, _ in full] != [i for i, _ in order]
    # Two ranks split the same permutation, and their seeds are those of the single-process run.
    ranks = [SeededSampler(data, num_replicas=2, rank=r, seed=3) for r in range(2)]
    for r in ranks:
        r.set_epoch(2)
    merged = [None] * 10
    merged[0::2], merged[1::2] = list(ranks[0]), list(ranks[1])
    assert merged == order
    assert sample_seed(3, 2, 0) == order[0][1]


def test_sixteen_bit_images_are_read_as_rounded_8_bit_rgb(tmp_path):
    from gramgan.images.png16 import write_png16

    grey = np.array([[0, 257, 65535, 32896]], np.uint16)
    write_png16(tmp_path / "g16.png", grey)
    rgba = np.stack([grey, grey // 2, grey, np.full_like(grey, 65535)], axis=-1)
    write_png16(tmp_path / "c16.png", rgba)
    assert read_image(tmp_path / "g16.png")[:, 0].tolist() == [[0, 1, 255, 128]] * 3
    rgb = read_image(tmp_path / "c16.png")
    assert rgb.shape == (3, 1, 4) and rgb[1, 0].tolist() == [0, 0, 127, 64]
