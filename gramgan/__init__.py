"""gramgan: Gram-GAN super-resolution with fused Gram-matrix kernels.

Subpackages: ``ops`` (fused operations and their backends), ``models`` (networks),
``losses`` (the Gram-GAN objective), ``data`` (datasets, resizing, candidate databases),
``train`` (the training loop); ``evaluate`` and ``upscale`` are command-line entry points.
"""

__version__ = "0.1.0"
