"""Check the image files of a run's folders before training starts, so that a broken file stops the run
at once with its name (or, with ``data.skip_unreadable``, is left out with a warning) instead of a
traceback at some batch hours later.

The check is PIL's ``Image.open`` (the header: a text file renamed ``.png`` fails here) then
``verify()`` (for PNG, every chunk's CRC, so a truncated or corrupted file fails; nothing is
decoded): one read of each file. Measured on a 2040x1356 PNG (2 shared CPU cores): 6 ms for the
check against 150 ms for a full decode, so about 5 s instead of 2 minutes at every start for
DIV2K's 800 images. A file that passes and still cannot be decoded later (a JPEG with corrupt image
data) stops the run with the reader's error, which names the file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image

__all__ = ["DataError", "checked_images", "checked_pairs", "image_problem"]


class DataError(ValueError):
    """Training or validation data cannot be used; the message names the file and the config key."""


def image_problem(path: Path, min_size: int | None = None) -> str | None:
    """What is wrong with an image file (one line), or None when it opens, verifies and is big enough."""
    try:
        with Image.open(path) as image:
            size = image.size
            image.verify()
    except Exception as err:  # PIL raises many types for bad files (OSError, SyntaxError, ValueError, ...)
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        return f"not a readable image ({reason})"
    if min_size is not None and min(size) < min_size:
        return f"{size[0]}x{size[1]} pixels, smaller than the {min_size}-pixel training crop (data.hr_crop)"
    return None


def checked_images(
    paths: Sequence[Path],
    skip: bool,
    key: str,
    say: Callable[[str], None] = print,
    min_size: int | None = None,
) -> list[Path]:
    """``paths`` less the broken ones when ``skip`` (with one warning line each and a count), else
    :class:`DataError` naming the first broken file. ``key`` names the config key of the folder."""
    good = []
    for path in paths:
        problem = image_problem(path, min_size)
        if problem is None:
            good.append(path)
        elif not skip:
            raise DataError(
                f"{key}: {path}: {problem}; remove or replace it, or set data.skip_unreadable=true to leave it out"
            )
        else:
            say(f"WARNING: skipping {path}: {problem}")
    if len(good) < len(paths):
        say(f"WARNING: {len(paths) - len(good)} of {len(paths)} image files of {key} skipped (data.skip_unreadable)")
    if not good:
        raise DataError(f"{key}: none of the {len(paths)} image files can be used")
    return good


def checked_pairs(
    pairs: Sequence[tuple[Path, Path]], skip: bool, key: str, say: Callable[[str], None] = print
) -> list[tuple[Path, Path]]:
    """The (HR, LR) pairs whose two files both pass :func:`checked_images`."""
    good = set(checked_images([path for pair in pairs for path in pair], skip, key, say))
    kept = [pair for pair in pairs if pair[0] in good and pair[1] in good]
    if not kept:
        raise DataError(f"{key}: no pair of the {len(pairs)} has two usable files")
    return kept
