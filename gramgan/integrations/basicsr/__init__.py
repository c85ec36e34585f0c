"""Gram-GAN in BasicSR 1.4 (docs/basicsr.md). Importing this module registers, in BasicSR's registries:

- ``LOSS_REGISTRY``: ``GramTextureLoss``, the texture loss (:mod:`.losses`);
- ``ARCH_REGISTRY``: ``GramGANDiscriminator``, the discriminator with perceptual taps (:mod:`.archs`);
- ``MODEL_REGISTRY``: ``GramGANModel``, the masked RaGAN + D-perceptual G and D steps (:mod:`.model`);
- ``DATASET_REGISTRY``: ``GramGANSampleDataset``, the built-in sample photos (:mod:`.data`).

Train with ``python -m gramgan.integrations.basicsr -opt options.yml`` (it registers these, checks the
Gram-GAN options, then runs BasicSR's own ``train_pipeline``), or ``import gramgan.integrations.basicsr``
in your own BasicSR-based training script. The example options: :func:`example_options_path`.

BasicSR is optional: ``pip install "gramgan[basicsr]"`` (``basicsr-fixed==1.4.2``).
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import basicsr  # noqa: F401  (BasicSR's registries fill as its packages import)
except ImportError as err:
    _MISSING = (
        f"gramgan.integrations.basicsr needs BasicSR 1.4, which is not importable ({err}); "
        'install it with: pip install "gramgan[basicsr]"'
    )
    # `python -m gramgan.integrations.basicsr` imports this package before its __main__ (sys.argv[0] is
    # "-m" meanwhile): give the command's one-line error and exit status 2 instead of a traceback.
    if sys.argv[:1] == ["-m"]:
        print(f"error: {_MISSING}", file=sys.stderr)
        raise SystemExit(2) from None
    raise ImportError(_MISSING) from err

from gramgan.integrations.basicsr.archs import GramGANDiscriminator
from gramgan.integrations.basicsr.data import GramGANSampleDataset
from gramgan.integrations.basicsr.losses import GramTextureLoss
from gramgan.integrations.basicsr.model import GramGANModel
from gramgan.integrations.basicsr.options import OptionsError, check_options

__all__ = [
    "GramGANDiscriminator",
    "GramGANModel",
    "GramGANSampleDataset",
    "GramTextureLoss",
    "OptionsError",
    "check_options",
    "example_options_path",
]

EXAMPLE_OPTIONS = "train_GramGAN_x4_samples.yml"


def example_options_path() -> Path:
    """The example options file shipped with the package (x4, the built-in sample photos)."""
    return Path(__file__).with_name("examples") / EXAMPLE_OPTIONS
