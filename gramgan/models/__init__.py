"""Networks: the RRDB generator, the VGG-style discriminator and the frozen VGG19 feature extractor, and
loading a generator from our or public checkpoints (:mod:`~gramgan.models.loading`, used by training and
inference alike).

Pure ``nn.Module``s; nothing here imports from ``gramgan.losses`` or ``gramgan.train``.
"""

from gramgan.models.discriminator import VGGStyleDiscriminator
from gramgan.models.loading import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    GeneratorWeights,
    load_generator,
    read_generator_weights,
)
from gramgan.models.rrdbnet import (
    RRDB_ARCH_KEYS,
    RRDBNet,
    infer_rrdb_arch,
    normalize_rrdb_state_dict,
    remap_legacy_keys,
)
from gramgan.models.vgg import (
    VGG19_LAYERS,
    VGG19FeatureExtractor,
    VGGWeightsError,
    VGGWeightsHashError,
    VGGWeightsMismatchError,
    VGGWeightsNotFoundError,
    resolve_vgg19_weights,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "GeneratorWeights",
    "RRDB_ARCH_KEYS",
    "RRDBNet",
    "VGG19FeatureExtractor",
    "VGG19_LAYERS",
    "VGGStyleDiscriminator",
    "VGGWeightsError",
    "VGGWeightsHashError",
    "VGGWeightsMismatchError",
    "VGGWeightsNotFoundError",
    "infer_rrdb_arch",
    "load_generator",
    "normalize_rrdb_state_dict",
    "read_generator_weights",
    "remap_legacy_keys",
    "resolve_vgg19_weights",
]


def __getattr__(name: str) -> object:
    """``gramgan.models.VGG19_LAYER_PRESETS``, the presets' old import path: deprecated (a warning names the
    new one, ``gramgan.losses.perceptual``) and looked up lazily, since models import nothing from losses."""
    if name == "VGG19_LAYER_PRESETS":
        import warnings

        from gramgan.losses.perceptual import VGG19_LAYER_PRESETS

        warnings.warn(
            "gramgan.models.VGG19_LAYER_PRESETS is deprecated and will be removed; import it from "
            "gramgan.losses.perceptual",
            DeprecationWarning,
            stacklevel=2,
        )
        return VGG19_LAYER_PRESETS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
