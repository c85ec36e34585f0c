"""Image files in and out: grey/RGB, alpha, palette, 8/16 bits, atomic writes, input collection."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gramgan.images import ImageData, ImageReadError, collect_images, read_image, read_rgb8, write_image
from gramgan.images.png16 import read_png16, write_png16

RNG = np.random.default_rng(0)


def _u8(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, size=shape, dtype=np.uint8)


@pytest.mark.parametrize(
    ("mode", "shape", "channels", "has_alpha"),
    [("RGB", (7, 9, 3), 3, False), ("L", (7, 9), 1, False), ("RGBA", (7, 9, 4), 3, True), ("LA", (7, 9, 2), 1, True)],
)
def test_8_bit_modes_round_trip(
    tmp_path: Path, mode: str, shape: tuple[int, ...], channels: int, has_alpha: bool
) -> None:
    array = _u8(*shape)
    Image.fromarray(array, mode=mode).save(tmp_path / "a.png")
    img = read_image(tmp_path / "a.png")
    assert img.bit_depth == 8 and img.color.shape == (channels, 7, 9) and (img.alpha is not None) == has_alpha
    planes = img.color if img.alpha is None else torch.cat([img.color, img.alpha])
    np.testing.assert_array_equal((planes * 255).round().byte().numpy(), array.reshape(7, 9, -1).transpose(2, 0, 1))
    write_image(tmp_path / "b.png", img)
    with Image.open(tmp_path / "b.png") as out:
        assert out.mode == mode
        np.testing.assert_array_equal(np.asarray(out), array)


def test_palette_with_transparency_becomes_rgba(tmp_path: Path) -> None:
    pal = Image.fromarray(_u8(6, 6) % 4, mode="P")
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9])
    pal.info["transparency"] = 3
    pal.save(tmp_path / "p.png", transparency=3)
    img = read_image(tmp_path / "p.png")
    assert img.color.shape[0] == 3 and img.alpha is not None
    index = np.asarray(pal)
    np.testing.assert_array_equal(img.alpha[0].numpy() == 0, index == 3)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16_bit_png_keeps_its_depth(tmp_path: Path, channels: int) -> None:
    array = RNG.integers(0, 65536, size=(5, 8, channels), dtype=np.uint16)
    write_png16(tmp_path / "a.png", array)
    img = read_image(tmp_path / "a.png")
    assert img.bit_depth == 16 and img.color.shape[0] == (1 if channels < 3 else 3)
    assert (img.alpha is not None) == (channels in (2, 4))
    write_image(tmp_path / "b.png", img)
    np.testing.assert_array_equal(read_png16(tmp_path / "b.png"), array)


def test_pillow_16_bit_grey_is_read_at_full_depth(tmp_path: Path) -> None:
    array = RNG.integers(0, 65536, size=(5, 8), dtype=np.uint16)
    Image.fromarray(array).save(tmp_path / "g.png")
    img = read_image(tmp_path / "g.png")
    assert img.bit_depth == 16
    np.testing.assert_array_equal((img.color[0].double() * 65535).round().numpy().astype(np.uint16), array)


def test_write_rejects_what_the_format_cannot_hold(tmp_path: Path) -> None:
    img = ImageData(torch.rand(3, 4, 4), torch.rand(1, 4, 4), 16)
    with pytest.raises(ValueError, match="16-bit output needs a .png"):
        write_image(tmp_path / "a.tif", img)
    with pytest.raises(ValueError, match="alpha"):
        write_image(tmp_path / "a.jpg", img, bit_depth=8)
    with pytest.raises(ValueError, match="bit depth"):
        write_image(tmp_path / "a.png", img, bit_depth=12)


def test_write_clamps_and_rounds(tmp_path: Path) -> None:
    color = torch.tensor([[[-0.5, 0.2 / 255, 0.6 / 255, 1.7]]])
    write_image(tmp_path / "c.png", ImageData(color))
    with Image.open(tmp_path / "c.png") as out:
        assert np.asarray(out).tolist() == [[0, 0, 1, 255]]


def test_read_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(ImageReadError, match="bad.png"):
        read_image(tmp_path / "bad.png")


def test_collect_images(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("b.png", "a.jpg"):
        Image.new("RGB", (2, 2)).save(folder / name)
    (folder / "notes.txt").write_text("x")
    single = tmp_path / "c.png"
    Image.new("RGB", (2, 2)).save(single)
    assert collect_images([folder, single]) == [folder / "a.jpg", folder / "b.png", single]
    with pytest.raises(FileNotFoundError, match="missing"):
        collect_images([tmp_path / "missing"])
    with pytest.raises(ValueError, match="not an image"):
        collect_images([folder / "notes.txt"])


@pytest.mark.parametrize("reader", [read_image, read_rgb8])
def test_broken_files_raise_one_error_naming_the_file_and_the_problem(tmp_path: Path, reader) -> None:
    """Both views of the one reader: a text file renamed .png and a PNG cut in half."""
    (tmp_path / "text.png").write_text("this is not an image")
    Image.fromarray(_u8(64, 64, 3)).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    for name, reason in (("text.png", "not an image file"), ("cut.png", "truncated")):
        with pytest.raises(ImageReadError) as info:
            reader(tmp_path / name)
        err = info.value
        assert isinstance(err, ValueError) and err.path == tmp_path / name and reason in err.reason
        assert str(err) == f"cannot read image {tmp_path / name}: {err.reason}"
        again = pickle.loads(pickle.dumps(err))  # crosses worker processes intact
        assert (again.path, again.reason) == (err.path, err.reason)


def test_write_image_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_image(tmp_path / "a.png", ImageData(torch.rand(3, 4, 4)))
        write_image(tmp_path / "b.png", ImageData(torch.rand(1, 4, 4), bit_depth=16))
    finally:
        os.umask(old)
    assert [(tmp_path / n).stat().st_mode & 0o777 for n in ("a.png", "b.png")] == [0o640, 0o640]
