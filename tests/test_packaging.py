"""The supported range in setup.py agrees with the pinned environments CI tests, and the wheel layout.

The full wheel check (build, fresh install, commands run from outside the checkout) is
.ci/wheel_check.sh; these are the cheap checks that catch a pin bumped out of the declared range.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

import pytest

packaging = pytest.importorskip("packaging.requirements")
from packaging.requirements import Requirement  # noqa: E402
from packaging.specifiers import SpecifierSet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _setup_literal(name: str):
    """A module-level literal assignment of setup.py, read without running setup.py (it builds)."""
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"setup.py has no {name} literal")


def _declared() -> dict[str, SpecifierSet]:
    extras = [r for group in _setup_literal("EXTRAS_REQUIRE").values() for r in group]
    return {Requirement(r).name: Requirement(r).specifier for r in [*_setup_literal("INSTALL_REQUIRES"), *extras]}


def _pins(filename: str) -> dict[str, str]:
    pins = {}
    for line in (REPO / filename).read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s#;]+)", line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


@pytest.mark.parametrize("filename", ["requirements.txt", "requirements-oldest.txt"])
def test_pinned_versions_lie_in_the_declared_range(filename):
    declared, pins = _declared(), _pins(filename)
    for name in ("torch", "torchvision", "triton", "numpy"):
        if name in pins:
            assert pins[name] in declared[name], f"{filename} pins {name}=={pins[name]} outside {declared[name]}"
    assert {"torch", "torchvision"} <= set(pins), f"{filename} must pin torch and torchvision"


def test_oldest_environment_pins_the_oldest_supported_torch_and_triton():
    pins, declared = _pins("requirements-oldest.txt"), _declared()
    assert pins["torch"] == "2.11.0" and pins["triton"] == "3.6.0"
    assert "2.10.0" not in declared["torch"] and "3.5.0" not in declared["triton"]


def test_the_kernels_install_inside_gramgan_and_the_presets_ship():
    source = (REPO / "setup.py").read_text(encoding="utf-8")
    assert '"gramgan.kernels": "kernels"' in source
    data = re.search(r'"gramgan\.configs": (\[[^\]]*\])', source)
    assert data, "setup.py ships no package data for gramgan.configs"
    patterns = ast.literal_eval(data.group(1))
    configs = REPO / "gramgan" / "configs"
    for yaml_file in configs.rglob("*.yaml"):  # every preset, ablation ones included, is package data
        parts = yaml_file.relative_to(configs).parts  # setuptools globs do not cross folders
        assert any(
            len(parts) == len(p.split("/")) and all(map(fnmatch.fnmatch, parts, p.split("/"))) for p in patterns
        ), yaml_file
    manifest = (REPO / "MANIFEST.in").read_text(encoding="utf-8")
    for line in ("recursive-include csrc *.cpp *.cu *.h *.cuh", "recursive-include kernels *.py"):
        assert line in manifest
