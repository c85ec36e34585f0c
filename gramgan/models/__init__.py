"""Networks: the RRDB generator, the VGG-style discriminator and the frozen VGG19 feature extractor.

Pure ``nn.Module``s; nothing here imports from ``gramgan.losses`` or ``gramgan.train``.
"""

from gramgan.models.discriminator import VGGStyleDiscriminator
from gramgan.models.rrdbnet import RRDBNet, infer_rrdb_arch, normalize_rrdb_state_dict, remap_legacy_keys
from gramgan.models.vgg import (
    VGG19_LAYER_PRESETS,
    VGG19_LAYERS,
    VGG19FeatureExtractor,
    VGGWeightsError,
    VGGWeightsHashError,
    VGGWeightsMismatchError,
    VGGWeightsNotFoundError,
    resolve_vgg19_weights,
)

__all__ = [
    "RRDBNet",
    "VGG19FeatureExtractor",
    "VGG19_LAYERS",
    "VGG19_LAYER_PRESETS",
    "VGGStyleDiscriminator",
    "VGGWeightsError",
    "VGGWeightsHashError",
    "VGGWeightsMismatchError",
    "VGGWeightsNotFoundError",
    "infer_rrdb_arch",
    "normalize_rrdb_state_dict",
    "remap_legacy_keys",
    "resolve_vgg19_weights",
]
