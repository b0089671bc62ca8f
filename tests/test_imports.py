"""The library's import graph: no cycles, and the light modules stay free of TensorFlow.

A cycle makes a module's behaviour depend on which one was imported first (a half-built
module, a missing name); TensorFlow in a light module costs every stage that imports it
seconds of start-up and a few hundred MB.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = "aezoo"
SOURCE = ROOT / "src"


def module_files(source: Path = SOURCE, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    modules = {}
    for path in sorted((source / package).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = path.relative_to(source).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``: a block that never runs."""
    name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", None)
    return name == "TYPE_CHECKING"


def runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that can run: at module level or inside functions, but not in
    ``if TYPE_CHECKING:`` bodies (their ``else:`` still counts)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        if isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def with_parents(name: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``: importing a module imports its packages."""
    parts = name.split(".")
    return [".".join(parts[: index + 1]) for index in range(len(parts))]


def import_graph(source: Path = SOURCE, package: str = PACKAGE) -> dict[str, set[str]]:
    """For each module of the package, the package's modules it imports (edges)."""
    modules = module_files(source, package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    targets.update(with_parents(alias.name))
                continue
            if node.level:  # relative: from the module's own package, then up
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            targets.update(with_parents(origin))
            for alias in node.names:  # ``from aezoo import x``: x may be a submodule
                targets.add(f"{origin}.{alias.name}")
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as ``[a, b, ..., a]``, or None (depth-first search)."""
    done: set[str] = set()
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> list[str] | None:
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target in on_stack:
                return [*stack[stack.index(target) :], target]
            if target not in done:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        on_stack.discard(node)
        done.add(node)
        return None

    for node in sorted(graph):
        if node not in done:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_library_has_no_import_cycle() -> None:
    graph = import_graph()
    assert f"{PACKAGE}.stages" in graph, "the aezoo.stages package was not found"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle in the library: " + " -> ".join(cycle or [])


DEVELOPER_TOOLING = ("tools", "benchmarks")  # at the repository root, not installed


def test_library_does_not_import_the_developer_tooling() -> None:
    """tools/ and benchmarks/ import the library, never the reverse: a user's install of
    aezoo has neither, and the library must work without them."""
    offending = []
    for name, path in module_files().items():
        for node in runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level:
                continue  # relative: inside the library
            imported = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            offending += [
                f"{name}: {module}"
                for module in imported
                if module.split(".")[0] in DEVELOPER_TOOLING
            ]
    assert (ROOT / "tools").is_dir() and (ROOT / "benchmarks").is_dir()
    assert not offending, f"the library imports developer tooling: {offending}"


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_graph_counts_function_and_package_imports_but_not_type_checking(tmp_path: Path) -> None:
    """The checker itself: a cycle through a function's import or a package ``__init__`` is
    found; a type-only import, or a submodule importing an ``__init__`` that does not import
    it back, is not a cycle."""
    source = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "def f():\n    from pkg import b\n",
            "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.c\n",
            "pkg/c.py": "from . import a\n",
            "pkg/sub/__init__.py": "from pkg.sub.d import x\n",
            "pkg/sub/d.py": "from pkg.sub import y\n",
            "pkg/sub/e.py": "from ..sub import y\n",
        },
    )
    graph = import_graph(source, "pkg")
    assert graph == {
        "pkg": set(),
        "pkg.a": {"pkg", "pkg.b"},
        "pkg.b": set(),
        "pkg.c": {"pkg", "pkg.a"},
        "pkg.sub": {"pkg", "pkg.sub.d"},
        "pkg.sub.d": {"pkg", "pkg.sub"},
        "pkg.sub.e": {"pkg", "pkg.sub"},
    }
    assert find_cycle(graph) == ["pkg.sub", "pkg.sub.d", "pkg.sub"]
    graph["pkg.sub"].discard("pkg.sub.d")
    assert find_cycle(graph) is None
    graph["pkg.b"].add("pkg.c")  # what the type-only import would have added
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]


@pytest.mark.parametrize(
    "module",
    ["aezoo.config", "aezoo.rendering", "aezoo.stages.render", "aezoo.command", "aezoo.digits"],
)
def test_light_module_does_not_import_tensorflow(module: str) -> None:
    """Config and drawing need no TensorFlow: the stages that only read params or draw
    figures must not pay for its import."""
    if module not in module_files():
        pytest.skip(f"{module} does not exist (yet)")
    code = (
        f"import sys, {module}\n"
        "loaded = sorted(name for name in sys.modules if name.startswith('aezoo'))\n"
        "assert 'tensorflow' not in sys.modules, f'tensorflow imported; aezoo modules: {loaded}'"
    )
    path = os.pathsep.join(filter(None, [str(SOURCE), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"import {module}:\n{done.stderr[-2000:]}"
