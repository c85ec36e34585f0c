"""The candidate database is part of the texture loss: :mod:`gramgan.losses.candidates`. This old import
path re-exports it for existing code and the README's example."""

from gramgan.losses.candidates import (
    build_global_candidates,
    build_local_candidates,
    downsample_retiled,
    random_affine_thetas,
    warp_images,
)

__all__ = [
    "build_global_candidates",
    "build_local_candidates",
    "downsample_retiled",
    "random_affine_thetas",
    "warp_images",
]
