"""The README's Python examples run as written (so the documentation cannot rot); docs/ is self-contained."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _python_block(path: Path, marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)
    return next(block for block in blocks if marker in block)


def test_readme_ops_example_runs():
    namespace: dict = {}
    exec(compile(_python_block(README, "gram_texture_loss"), str(README), "exec"), namespace)
    assert namespace["sr"].grad is not None and namespace["sr"].grad.abs().sum() > 0
    assert namespace["mask"].shape == (8, 1, 192, 192)


@pytest.mark.parametrize("path", [README, ROOT / "docs" / "losses.md"], ids=["README", "docs/losses.md"])
def test_losses_example_runs(path: Path):
    namespace: dict = {}
    exec(compile(_python_block(path, "GramGANLoss("), str(path), "exec"), namespace)
    out = namespace["out"]
    assert set(out.terms) == {"content", "perceptual", "disc_perceptual", "texture", "adversarial"}
    assert namespace["sr"].grad is not None and namespace["sr"].grad.abs().sum() > 0
    assert all(p.grad is not None for p in namespace["D"].parameters())  # the D step reached D
    assert float(namespace["d_loss"].detach()) > 0


def test_docs_examples_of_ops_and_candidates_run():
    for page, marker in (("ops.md", "patch_gram(x)"), ("candidates.md", "build_local_candidates(hr)")):
        path = ROOT / "docs" / page
        exec(compile(_python_block(path, marker), str(path), "exec"), {})


def test_docs_links_resolve_and_nothing_points_outside_the_repository():
    pages = [README, *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "../shared" not in text and "SPEC §" not in text, page
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            optional = target in ("cuda-emulation.md", "ablation.md")  # other pages, added separately
            assert optional or (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_no_file_of_the_repository_points_outside_it():
    """Users have the repository only: no source, doc or config cites material outside it."""
    outside = ("../shared", "SPEC §")
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        if not path.is_file() or parts[0] in {".git", "build", ".venv", ".venv-oldest"} or "egg-info" in parts[0]:
            continue
        if path == Path(__file__).resolve():  # this file names what it looks for
            continue
        if path.suffix not in {".py", ".md", ".yaml", ".cpp", ".cu", ".cuh", ".h", ".sh", ".toml", ".txt", ".in"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for needle in outside:
            assert needle not in text, f"{path.relative_to(ROOT)} mentions {needle!r}"
