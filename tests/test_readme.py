"""The README's Python example runs as written (so the documentation cannot rot)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_ops_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    example = next(block for block in blocks if "gram_texture_loss" in block)
    namespace: dict = {}
    exec(compile(example, str(README), "exec"), namespace)
    assert namespace["sr"].grad is not None and namespace["sr"].grad.abs().sum() > 0
    assert namespace["mask"].shape == (8, 1, 192, 192)
