"""The 16-bit PNG codec, now :mod:`gramgan.images.png16`; re-exported under its old name."""

from gramgan.images.png16 import PNG_SIGNATURE, is_png16, read_png16, write_png16

__all__ = ["PNG_SIGNATURE", "is_png16", "read_png16", "write_png16"]
