"""Which sources an extension build was made from: a digest of the C++/CUDA files of ``csrc/``.

``setup.py`` records it in ``_build_info.json`` when it builds ``gramgan._C`` (it loads this file by its
path, without importing the package); ``python -m gramgan.info`` compares it with the checkout's, so an
editable install whose ``csrc/`` changed since its build says so, and ``benchmarks/gpu_check.sh`` reuses a
build carried to a GPU machine only when it was made from the very sources there. Standard library only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["SOURCE_SUFFIXES", "source_digest"]

SOURCE_SUFFIXES = (".cpp", ".cu", ".h", ".cuh")
# csrc/emulation is compiled by the tests only (docs/cuda-emulation.md), never into gramgan._C.
NOT_BUILT = ("emulation",)


def source_digest(root: str | Path) -> str | None:
    """The first 16 hex digits of the SHA-256 of every C++/CUDA source under ``root/csrc`` that setup.py
    builds (relative path and contents, in path order); ``None`` where ``root`` has no ``csrc/`` (an
    installed wheel)."""
    root = Path(root)
    csrc = root / "csrc"
    if not csrc.is_dir():
        return None
    files = sorted(
        path
        for path in csrc.rglob("*")
        if path.suffix in SOURCE_SUFFIXES and path.is_file() and path.relative_to(csrc).parts[0] not in NOT_BUILT
    )
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
