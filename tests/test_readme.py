"""The README's Python examples run as written (so the documentation cannot rot); docs/ is self-contained."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

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


def _run_commented(path: Path, marker: str) -> tuple[dict, list[tuple[str, object, str]]]:
    """Run the page's block statement by statement: its namespace, and for each bare expression
    (source, value, the comment that ends its line), the comment being what the page says it returns."""
    block = _python_block(path, marker)
    lines, namespace, results = block.splitlines(), {}, []
    for statement in ast.parse(block).body:
        if isinstance(statement, ast.Expr):
            value = eval(compile(ast.Expression(statement.value), str(path), "eval"), namespace)
            comment = lines[statement.end_lineno - 1].partition("#")[2].strip()
            results.append((ast.get_source_segment(block, statement), value, comment))
        else:
            exec(compile(ast.Module([statement], []), str(path), "exec"), namespace)
    return namespace, results


def _check_stated_literals(results: list[tuple[str, object, str]]) -> int:
    """Each comment that opens with a tuple or list literal (a shape, a list of sizes) equals the value;
    returns how many there were."""
    checked = 0
    for source, value, comment in results:
        stated = re.match(r"\(.*?\)|\[.*?\]", comment)
        if stated:
            expected = ast.literal_eval(stated.group())
            assert type(expected)(value) == expected, f"{source} gives {value}, the page says {comment!r}"
            checked += 1
    return checked


def test_docs_ops_example_computes_what_its_comments_say():
    namespace, results = _run_commented(ROOT / "docs" / "ops.md", "patch_gram(x)")
    assert _check_stated_literals(results) == 3  # the shapes of the Grams, the selection and the mask
    ops, x, cands = namespace["ops"], namespace["x"], namespace["cands"]
    loss = next(value for source, value, _ in results if source.startswith("ops.gram_texture_loss("))
    assert loss.shape == () and loss.dtype == torch.float32  # "scalar float32"
    index = ops.gram_select(x, cands)
    assert index.dtype == torch.int64 and index.min() >= 0 and index.max() < 6  # "int64 index in [0, 6)"
    assert set(ops.texture_mask(x).unique().tolist()) <= {0.0, 1.0}  # "values 0 or 1"


def test_docs_candidates_example_computes_what_its_comments_say():
    _, results = _run_commented(ROOT / "docs" / "candidates.md", "build_local_candidates(hr)")
    assert _check_stated_literals(results) == 2  # the local stack's shape, the global list's sizes


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
