"""The built-in sample set: RGB photos shipped inside scikit-image, used when no data is named.

scikit-image bundles a few photographs in its wheel (no download: these are the files of its
``skimage/data`` folder, loaded by the public ``skimage.data`` functions). They are enough for the
demo to show a model learning; they are not a benchmark.

Train split (:data:`SAMPLE_TRAIN`): astronaut, coffee, rocket, motorcycle (left view),
immunohistochemistry, hubble_deep_field. Held-out split (:data:`SAMPLE_VAL`): chelsea (the cat),
never seen in training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["SAMPLE_TRAIN", "SAMPLE_VAL", "available_samples", "load_samples", "sample_source"]

SAMPLE_TRAIN: tuple[str, ...] = (
    "astronaut",
    "coffee",
    "rocket",
    "motorcycle",
    "immunohistochemistry",
    "hubble_deep_field",
)
SAMPLE_VAL: tuple[str, ...] = ("chelsea",)


def _loaders() -> dict[str, Callable[[], np.ndarray]]:
    import skimage.data as sd

    return {
        "astronaut": sd.astronaut,
        "coffee": sd.coffee,
        "rocket": sd.rocket,
        "motorcycle": lambda: sd.stereo_motorcycle()[0],
        "immunohistochemistry": sd.immunohistochemistry,
        "hubble_deep_field": sd.hubble_deep_field,
        "chelsea": sd.chelsea,
    }


def available_samples() -> tuple[str, ...]:
    """Names :func:`load_samples` accepts."""
    return (*SAMPLE_TRAIN, *SAMPLE_VAL)


def load_samples(names: Sequence[str]) -> dict[str, np.ndarray]:
    """Load sample photos by name as ``(H, W, 3)`` uint8 arrays (no network access).

    Raises ``ValueError`` for an unknown name and ``RuntimeError`` (naming the image) when
    scikit-image cannot provide it.
    """
    loaders = _loaders()
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name not in loaders:
            raise ValueError(f"unknown sample image {name!r}; available: {', '.join(loaders)}")
        try:
            image = np.asarray(loaders[name]())
        except Exception as err:  # scikit-image raises several kinds for a missing file
            raise RuntimeError(f"scikit-image could not load its sample image {name!r}: {err}") from err
        if image.ndim != 3 or image.shape[2] < 3 or image.dtype != np.uint8:
            raise RuntimeError(f"sample image {name!r} is not RGB uint8 ({image.shape}, {image.dtype})")
        out[name] = np.ascontiguousarray(image[..., :3])
    return out


def sample_source(split: str = "train"):
    """An :class:`~gramgan.data.sources.ArraySource` of the ``"train"`` or ``"val"`` split."""
    from gramgan.data.sources import ArraySource

    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    return ArraySource(load_samples(SAMPLE_TRAIN if split == "train" else SAMPLE_VAL))
