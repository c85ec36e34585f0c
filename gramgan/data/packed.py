"""A folder of HR images decoded once into one memory-mappable file, so that training reads raw pixels
instead of decoding a whole PNG for every crop.

    python -m gramgan.data.prepare SRC DST --packed      # writes DST/hr.npy and DST/hr.json

``hr.npy`` is a flat uint8 NumPy array: every image's ``(H, W, 3)`` pixels, one after the other, in the
order of :func:`gramgan.images.list_images`; ``hr.json`` gives each image's name, height, width and
offset. :class:`PackedSource` maps the file and hands out images as views, so a random crop touches
only the pages of its own pixels (the page cache keeps the hot ones). It holds the same images in the
same order as :class:`~gramgan.data.sources.FolderSource` on SRC, so a dataset over either gives the
same crops for the same seed. Train with ``data.train_hr=DST/hr.npy``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gramgan.atomic import atomic_path, atomic_write_text
from gramgan.data.sources import ImageSource
from gramgan.images import read_rgb8

__all__ = ["FORMAT", "PackedSource", "is_packed", "write_packed"]

FORMAT = "gramgan-packed-v1"


def _index_path(array_path: Path) -> Path:
    return array_path.with_suffix(".json")


def is_packed(path: str | os.PathLike[str]) -> bool:
    """True for a packed array file (``*.npy`` with its ``.json`` index beside it)."""
    path = Path(path)
    return path.suffix == ".npy" and path.is_file() and _index_path(path).is_file()


def write_packed(
    src: str | os.PathLike[str],
    array_path: str | os.PathLike[str],
    sizes: dict[Path, tuple[int, int]],
    decoded: Iterable[Tensor] | None = None,
    progress: Callable[[], None] = lambda: None,
) -> int:
    """Write the images of ``sizes`` (path -> (height, width), in folder order) into ``array_path`` and
    its index; ``decoded`` yields their ``(3, H, W)`` uint8 pixels in that order (default: read here).
    Both files appear atomically. Returns the number of images."""
    array_path = Path(array_path)
    paths = list(sizes)
    offsets = np.cumsum([0] + [h * w * 3 for h, w in sizes.values()]).tolist()
    images = decoded if decoded is not None else map(read_rgb8, paths)
    with atomic_path(array_path, suffix=".tmp.npy") as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(offsets[-1],))
        for k, image in enumerate(images):
            h, w = sizes[paths[k]]
            if tuple(image.shape) != (3, h, w):
                raise ValueError(f"{paths[k]}: decoded {tuple(image.shape)}, its header says (3, {h}, {w})")
            array[offsets[k] : offsets[k + 1]] = image.permute(1, 2, 0).reshape(-1).numpy()
            progress()
        array.flush()
        del array
    index = {
        "format": FORMAT,
        "source": str(Path(src).resolve()),
        "images": [
            {"name": path.stem, "height": h, "width": w, "offset": offset}
            for (path, (h, w)), offset in zip(sizes.items(), offsets)
        ],
    }
    atomic_write_text(_index_path(array_path), json.dumps(index, indent=1) + "\n")
    return len(paths)


class PackedSource(ImageSource):
    """The images of a packed array file (see the module docstring), as read-only views of the map."""

    def __init__(self, array_path: str | os.PathLike[str]) -> None:
        self.path = Path(array_path)
        if not is_packed(self.path):
            raise FileNotFoundError(
                f"{self.path} is not a packed image array (a .npy with its .json index beside it; "
                "make one with python -m gramgan.data.prepare SRC DST --packed)"
            )
        index = json.loads(_index_path(self.path).read_text())
        if index.get("format") != FORMAT or not index.get("images"):
            raise ValueError(f"{_index_path(self.path)}: not a {FORMAT} index, or no images in it")
        self.entries = index["images"]
        self._array: np.ndarray | None = None
        array = self.array
        end = self.entries[-1]["offset"] + self.entries[-1]["height"] * self.entries[-1]["width"] * 3
        if array.dtype != np.uint8 or array.ndim != 1 or array.shape[0] != end:
            raise ValueError(f"{self.path}: {array.shape} {array.dtype}, its index expects ({end},) uint8")

    @property
    def array(self) -> np.ndarray:
        """The map, opened on first use in each process (data-loader workers map the file themselves)."""
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return self._array

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_array": None}  # pickling a map would copy the whole file

    def __len__(self) -> int:
        return len(self.entries)

    def name(self, index: int) -> str:
        return self.entries[index]["name"]

    def load(self, index: int) -> Tensor:
        entry = self.entries[index]
        h, w = entry["height"], entry["width"]
        pixels = self.array[entry["offset"] : entry["offset"] + h * w * 3].reshape(h, w, 3)
        with warnings.catch_warnings():  # read-only map: the crops are copied before anything writes
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(pixels).permute(2, 0, 1)

