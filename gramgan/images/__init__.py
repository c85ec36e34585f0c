"""Image files: which files are images, the one reader (:func:`read_image`, :func:`read_rgb8`), the
writer, and a 16-bit PNG codec. Used by ``gramgan.data`` (training), ``gramgan.inference`` and the
commands; it imports neither of them."""

from gramgan.images.files import IMAGE_EXTENSIONS, collect_images, list_images
from gramgan.images.reading import ImageData, ImageReadError, read_image, read_rgb8
from gramgan.images.writing import write_image

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageData",
    "ImageReadError",
    "collect_images",
    "list_images",
    "read_image",
    "read_rgb8",
    "write_image",
]
