"""Generator loading, now :mod:`gramgan.models.loading` (training and inference both use it); re-exported
under its old name."""

from gramgan.models.loading import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    GeneratorWeights,
    load_generator,
    read_generator_weights,
)

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "GeneratorWeights", "load_generator", "read_generator_weights"]
