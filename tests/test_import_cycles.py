"""No import cycle among gramgan's modules: a static check of every ``import`` and ``from ... import``.

The graph: one node per module of ``gramgan/`` and of the top-level ``kernels/`` folder (installed as
``gramgan.kernels``); a package is its ``__init__``. Module A has an edge to module B when an import
statement *anywhere* in A names B: at module level, inside a function (a lazy import), under
``if TYPE_CHECKING:`` or in a ``try``. A lazy or type-checking import only postpones the cycle to run
time or hides it from the interpreter; the two modules still need each other, so neither can be read,
tested or moved without the other. ``from P import N`` names the module ``P.N`` when there is one (a
submodule), else ``P``; relative imports are resolved against the importing module's package; imports
of anything outside gramgan are ignored. Parent packages that Python runs on the way to a submodule
are not edges (every submodule would otherwise form a cycle with its own package's ``__init__``).

The source is parsed, never imported, so the check is cheap and sees imports that the current
environment would skip (triton missing, no GPU).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {"gramgan": ROOT / "gramgan", "gramgan.kernels": ROOT / "kernels"}


def module_files() -> dict[str, Path]:
    """Every module's dotted name and file: gramgan/**.py, and kernels/*.py as gramgan.kernels.*."""
    modules: dict[str, Path] = {}
    for prefix, folder in PACKAGE_DIRS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([prefix, *parts])] = path
    return modules


def _imported_names(tree: ast.Module, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The gramgan modules named by the import statements anywhere in ``tree``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                names.add(submodule if submodule in known else base)
    found = set()
    for name in names:
        while name and name not in known:  # `import gramgan.ops._triton as t` names a module; a class is dropped
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the gramgan modules it imports (see the module docstring for what counts)."""
    files = module_files()
    known = set(files)
    return {
        name: _imported_names(ast.parse(path.read_text(), str(path)), name, path.name == "__init__.py", known)
        for name, path in files.items()
    }


def find_cycles(graph: dict[str, set[str]]) -> list[list[tuple[str, str]]]:
    """The modules caught in import cycles, as the imports among them: one sorted list of (importer,
    imported) edges per strongly connected component of two modules or more (Tarjan's algorithm,
    iterative). Every cycle of the graph lies inside one of them; cutting edges until none is left is
    the fix."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    return sorted([sorted((a, b) for a in c for b in graph[a] & c) for c in components])


def test_every_kind_of_import_is_an_edge():
    source = """
from __future__ import annotations
import os
from typing import TYPE_CHECKING
import gramgan.ops._triton as triton_backend
from gramgan import losses, __version__
from . import sibling
from .. import ops
from ..models.vgg import VGG19FeatureExtractor
if TYPE_CHECKING:
    from gramgan.train.run import Run
try:
    from gramgan.kernels.gram import patch_gram_fwd_kernel
except ImportError:
    pass
class Holder:
    from gramgan.atomic import atomic_path
def lazy():
    from gramgan.data import resize
"""
    known = {"gramgan", "gramgan.ops", "gramgan.ops._triton", "gramgan.losses", "gramgan.x", "gramgan.x.sibling",
             "gramgan.models", "gramgan.models.vgg", "gramgan.train.run", "gramgan.kernels.gram",
             "gramgan.atomic", "gramgan.data", "gramgan.data.resize"}  # fmt: skip
    found = _imported_names(ast.parse(source), "gramgan.x.here", False, known)
    assert found == known - {"gramgan.x", "gramgan.models", "gramgan.data"}


def test_the_graph_holds_gramgan_and_the_kernels_folder():
    graph = import_graph()
    assert len(graph) > 50 and "gramgan.train.loop" in graph
    assert "gramgan.kernels._autotune" in graph["gramgan.kernels.gram"]  # kernels/gram.py: from ._autotune import
    assert any(target.startswith("gramgan.kernels.") for targets in graph.values() for target in targets)


def test_find_cycles_reports_each_cycle_once():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"f"}, "f": {"e"}, "g": {"g"}}
    assert find_cycles(graph) == [[("a", "b"), ("b", "c"), ("c", "a")], [("e", "f"), ("f", "e")]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_gramgan_modules():
    cycles = find_cycles(import_graph())
    assert not cycles, "gramgan's modules import each other in a loop; the imports inside each loop:\n" + "\n".join(
        "  " + ", ".join(f"{a} -> {b}" for a, b in edges) for edges in cycles
    )
