"""Inference helpers shared by ``python -m gramgan.upscale`` and ``python -m gramgan.evaluate``.

- :mod:`~gramgan.inference.loading`: build an RRDBNet from our or public checkpoints, safely.
- :mod:`~gramgan.inference.runner` / :mod:`~gramgan.inference.tiling`: run it on images of any size
  (``pick_device`` is :func:`gramgan.devices.pick_device`, re-exported).
- :mod:`~gramgan.inference.image_io` / :mod:`~gramgan.inference.png16`: files in and out, keeping
  grey/RGB, alpha and 16-bit depth.
"""

from gramgan.devices import pick_device
from gramgan.inference.image_io import ImageData, collect_images, read_image, write_image
from gramgan.inference.loading import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    GeneratorWeights,
    load_generator,
    read_generator_weights,
)
from gramgan.inference.runner import MIN_INPUT_SIZE, input_multiple, super_resolve
from gramgan.inference.tiling import mirror_pad, run_padded, run_tiled

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
