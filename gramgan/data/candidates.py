"""The candidate database is part of the texture loss: :mod:`gramgan.losses.candidates`. This old import
path re-exports it for existing code and the README's example."""

from gramgan.losses import candidates as _candidates
from gramgan.losses.candidates import *  # noqa: F403

__all__ = list(_candidates.__all__)
