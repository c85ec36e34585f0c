"""Inference helpers shared by ``python -m gramgan.upscale`` and ``python -m gramgan.evaluate``.

- :mod:`~gramgan.inference.runner` / :mod:`~gramgan.inference.tiling`: run a generator on images of any size.
- Re-exported here: generator loading (:mod:`gramgan.models.loading`), image files (:mod:`gramgan.images`:
  grey/RGB, alpha and 16-bit depth kept) and the device picker (:mod:`gramgan.devices`).
"""

from gramgan.devices import pick_device
from gramgan.images import ImageData, collect_images, read_image, write_image
from gramgan.inference.runner import MIN_INPUT_SIZE, input_multiple, super_resolve
from gramgan.inference.tiling import mirror_pad, run_padded, run_tiled
from gramgan.models.loading import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    GeneratorWeights,
    load_generator,
    read_generator_weights,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "MIN_INPUT_SIZE",
    "CheckpointError",
    "GeneratorWeights",
    "ImageData",
    "collect_images",
    "input_multiple",
    "load_generator",
    "mirror_pad",
    "pick_device",
    "read_generator_weights",
    "read_image",
    "run_padded",
    "run_tiled",
    "super_resolve",
    "write_image",
]
