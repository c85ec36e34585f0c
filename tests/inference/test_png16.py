"""The 16-bit PNG codec: every row filter, interlacing, tRNS, and agreement with Pillow."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gramgan.images.png16 import is_png16, read_png16, write_png16

ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _filter_rows(img: np.ndarray, rng: np.random.Generator) -> bytes:
    """Encode (H, W, C) uint16 rows with random PNG filter types (the forward transform)."""
    h, w, c = img.shape
    bpp = 2 * c
    rows = img.astype(">u2").reshape(h, w * c).view(np.uint8).astype(np.int64)
    out = []
    for y in range(h):
        cur = rows[y]
        up = rows[y - 1] if y else np.zeros_like(cur)
        left = np.concatenate([np.zeros(bpp, np.int64), cur[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int64), up[:-bpp]])
        ftype = int(rng.integers(0, 5))
        pred = [0, left, up, (left + up) // 2, _paeth(left, up, upleft)][ftype]
        out.append(bytes([ftype]) + ((cur - pred) & 0xFF).astype(np.uint8).tobytes())
    return b"".join(out)


def _encode(img: np.ndarray, seed: int, interlace: bool = False, trns: bytes | None = None) -> bytes:
    h, w, c = img.shape
    rng = np.random.default_rng(seed)
    if interlace:
        data = b"".join(_filter_rows(img[y0::dy, x0::dx], rng) for x0, y0, dx, dy in ADAM7 if img[y0::dy, x0::dx].size)
    else:
        data = _filter_rows(img, rng)
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, int(interlace)))
    extra = _chunk(b"tRNS", trns) if trns is not None else b""
    return b"\x89PNG\r\n\x1a\n" + header + extra + _chunk(b"IDAT", zlib.compress(data)) + _chunk(b"IEND", b"")


def _random_image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 65536, size=shape, dtype=np.uint16)
    img[: shape[0] // 2] = np.arange(shape[1], dtype=np.uint16)[None, :, None] * 997  # smooth part
    return img


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_every_filter_type_decodes(tmp_path: Path, channels: int) -> None:
    img = _random_image((23, 17, channels), seed=channels)
    path = tmp_path / "f.png"
    path.write_bytes(_encode(img, seed=channels))
    assert is_png16(path)
    np.testing.assert_array_equal(read_png16(path), img)


@pytest.mark.parametrize("size", [(13, 11), (1, 1), (3, 9), (8, 8)])
def test_interlaced_decodes(tmp_path: Path, size: tuple[int, int]) -> None:
    img = _random_image((*size, 3), seed=size[0])
    path = tmp_path / "i.png"
    path.write_bytes(_encode(img, seed=1, interlace=True))
    np.testing.assert_array_equal(read_png16(path), img)


def test_trns_key_colour_becomes_alpha(tmp_path: Path) -> None:
    img = _random_image((6, 5, 3))
    img[2, 3] = (1, 2, 3)
    path = tmp_path / "t.png"
    path.write_bytes(_encode(img, seed=0, trns=struct.pack(">HHH", 1, 2, 3)))
    out = read_png16(path)
    assert out.shape == (6, 5, 4)
    assert out[2, 3, 3] == 0 and (out[..., 3] == 0).sum() == 1
    np.testing.assert_array_equal(out[..., :3], img)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_write_read_round_trip(tmp_path: Path, channels: int) -> None:
    img = _random_image((9, 14, channels), seed=5)
    path = tmp_path / "w.png"
    write_png16(path, img)
    np.testing.assert_array_equal(read_png16(path), img)
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed away


def test_pillow_agrees_with_our_files(tmp_path: Path) -> None:
    grey = _random_image((10, 12, 1), seed=3)
    write_png16(tmp_path / "g.png", grey)
    with Image.open(tmp_path / "g.png") as im:  # Pillow reads 16-bit grey at full depth
        np.testing.assert_array_equal(np.asarray(im).astype(np.uint16), grey[..., 0])
    rgb = _random_image((10, 12, 3), seed=4)
    write_png16(tmp_path / "c.png", rgb)
    with Image.open(tmp_path / "c.png") as im:  # and 16-bit colour as its high bytes
        np.testing.assert_array_equal(np.asarray(im), (rgb >> 8).astype(np.uint8))


def test_reads_pillow_written_16_bit_grey(tmp_path: Path) -> None:
    grey = _random_image((15, 21, 1), seed=6)[..., 0]
    Image.fromarray(grey).save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_png16(tmp_path / "p.png")[..., 0], grey)


def test_bad_files_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="not a PNG"):
        read_png16(tmp_path / "x.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "eight.png")
    assert not is_png16(tmp_path / "eight.png")
    with pytest.raises(ValueError, match="bit depth 8"):
        read_png16(tmp_path / "eight.png")
    good = _encode(_random_image((5, 5, 3)), seed=0)
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="truncated|corrupt"):
        read_png16(tmp_path / "cut.png")
    with pytest.raises(TypeError, match="uint16"):
        write_png16(tmp_path / "w.png", np.zeros((2, 2), np.uint8))
