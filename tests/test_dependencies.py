"""DVC's code deps are honest: each stage lists exactly the library modules its script can
import, so a code change reruns every stage whose numbers it can move, and no other.

A missing dep lets stale numbers pass as current; an extra one reruns stages for nothing.
The unit test reads the imports; the integration test asks ``dvc status`` itself.
"""

from __future__ import annotations

import ast
import functools
import io
import json
import modulefinder
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, BinaryIO

import pytest
import yaml
from conftest import ROOT

LIBRARY = Path("src/aezoo")  # the library's files, as dvc.yaml names them
SCRIPT_PATTERN = re.compile(r"\bpipeline/[\w/]+\.py\b")
FOREACH_PATTERN = re.compile(r"^\$\{\s*([\w.]+)\s*\}$")
EDIT_MARK = "\n# edited by test_dependencies\n"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def stage_groups(root: Path = ROOT) -> dict[str, dict[str, Any]]:
    """Each stage group of dvc.yaml (a plain stage, or a ``foreach`` template) and the
    definition its members share: a ``foreach`` group's ``do:`` block, else the stage."""
    stages = load_yaml(root / "dvc.yaml")["stages"]
    return {name: stage.get("do", stage) for name, stage in stages.items()}


def stage_names(root: Path = ROOT) -> dict[str, list[str]]:
    """The stage names ``dvc status`` reports for each group: ``<group>@<key>`` for a
    ``foreach`` group (keys from params.yaml, or from a literal mapping or list), else the
    group's own name."""
    stages = load_yaml(root / "dvc.yaml")["stages"]
    params = load_yaml(root / "params.yaml")
    names: dict[str, list[str]] = {}
    for group, stage in stages.items():
        items = stage.get("foreach")
        if items is None:
            names[group] = [group]
            continue
        if isinstance(items, str):
            match = FOREACH_PATTERN.match(items)
            assert match, f"stage {group}: cannot read foreach {items!r}"
            items = functools.reduce(lambda node, key: node[key], match[1].split("."), params)
        names[group] = [f"{group}@{key}" for key in items]
    return names


def stage_script(group: str, definition: dict[str, Any]) -> str:
    """The ``pipeline/*.py`` script the stage's ``cmd`` runs, as a repository path."""
    cmd = definition["cmd"]
    text = " ".join(cmd) if isinstance(cmd, list) else str(cmd)
    scripts = SCRIPT_PATTERN.findall(text)
    assert len(scripts) == 1, f"stage {group}: expected one pipeline/*.py in cmd {text!r}"
    return scripts[0]


def library_deps(definition: dict[str, Any]) -> set[str]:
    """The library modules (``src/aezoo/**.py``) a stage definition lists as deps."""
    deps = [next(iter(dep)) if isinstance(dep, dict) else dep for dep in definition["deps"]]
    return {dep for dep in deps if dep.startswith(f"{LIBRARY}/") and dep.endswith(".py")}


def without_type_checking(source: bytes | str) -> str:
    """The source with its ``if TYPE_CHECKING:`` bodies dropped: type-only imports never
    run, so a module named only there cannot move a stage's numbers."""
    tree = ast.parse(source)

    class Strip(ast.NodeTransformer):
        def visit_If(self, node: ast.If) -> Any:
            test = node.test
            name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", None)
            if name == "TYPE_CHECKING":
                node.body = [ast.Pass()]
            return self.generic_visit(node)

    return ast.unparse(ast.fix_missing_locations(Strip().visit(tree)))


class RuntimeImportFinder(modulefinder.ModuleFinder):
    """ModuleFinder that skips ``if TYPE_CHECKING:`` blocks (it reads bytecode, so it would
    otherwise count type-only imports). Imports inside functions still count: a stage that
    calls the function runs them."""

    def load_module(
        self, fqname: str, fp: BinaryIO | None, pathname: str, file_info: tuple[str, str, int]
    ) -> modulefinder.Module:
        if fp is not None and file_info[2] == modulefinder._PY_SOURCE:
            fp = io.BytesIO(without_type_checking(fp.read()).encode())
        return super().load_module(fqname, fp, pathname, file_info)


@functools.cache
def import_closure(script: str, root: Path = ROOT) -> frozenset[str]:
    """The library files (``src/aezoo/...py``, repository paths) that ``script`` can import,
    directly or through other modules, at module level or inside functions.

    The search path is the project's own (``src`` and the script's directory ``pipeline``):
    the standard library and third-party packages never import aezoo, and not scanning them
    (TensorFlow, MLflow, ...) keeps this fast. Their imports are simply left unresolved.
    """
    finder = RuntimeImportFinder(path=[str(root / "src"), str(root / "pipeline")])
    finder.run_script(str(root / script))
    library = (root / LIBRARY).resolve()
    found = set()
    for module in finder.modules.values():
        path = Path(module.__file__ or "").resolve()
        if path.suffix == ".py" and path.is_relative_to(library):
            found.add(path.relative_to(root.resolve()).as_posix())
    return frozenset(found)


def group_closures(root: Path = ROOT) -> tuple[dict[str, frozenset[str]], list[str]]:
    """Each stage group's import closure, and the groups whose script does not exist."""
    closures, missing = {}, []
    for group, definition in stage_groups(root).items():
        script = stage_script(group, definition)
        if (root / script).is_file():
            closures[group] = import_closure(script, root)
        else:
            missing.append(f"{group} ({script})")
    return closures, missing


GROUPS = stage_groups()


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_stage_lists_exactly_the_library_modules_its_script_imports(group: str) -> None:
    definition = GROUPS[group]
    script = stage_script(group, definition)
    if not (ROOT / script).is_file():
        pytest.fail(f"stage {group}: its script {script} does not exist")
    imported = import_closure(script)
    listed = library_deps(definition)
    missing, extra = sorted(imported - listed), sorted(listed - imported)
    assert not missing and not extra, (
        f"stage {group}: dvc.yaml's code deps differ from what {script} imports.\n"
        f"  missing (changes there would not rerun it): {missing}\n"
        f"  extra (not imported: changes there rerun it for nothing): {extra}"
    )


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_stage_lists_its_own_script(group: str) -> None:
    definition = GROUPS[group]
    script = stage_script(group, definition)
    deps = [next(iter(dep)) if isinstance(dep, dict) else dep for dep in definition["deps"]]
    assert script in deps, f"stage {group}: its script {script} is not among its deps"


def test_import_closure_follows_function_imports_and_skips_type_checking(tmp_path: Path) -> None:
    """The closure is what a stage can run: imports inside functions and through packages
    count, type-only and unreachable modules do not."""
    files = {
        "src/aezoo/__init__.py": "",
        "src/aezoo/a.py": (
            "from typing import TYPE_CHECKING\n"
            "import numpy\n"
            "if TYPE_CHECKING:\n"
            "    from aezoo import typed\n"
            "def f():\n"
            "    from aezoo.b import g\n"
        ),
        "src/aezoo/b.py": "from .sub import c\ndef g(): pass\n",
        "src/aezoo/typed.py": "",
        "src/aezoo/unused.py": "",
        "src/aezoo/sub/__init__.py": "",
        "src/aezoo/sub/c.py": "",
        "pipeline/run.py": "from aezoo import a\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert import_closure("pipeline/run.py", tmp_path) == {
        "src/aezoo/__init__.py",
        "src/aezoo/a.py",
        "src/aezoo/b.py",
        "src/aezoo/sub/__init__.py",
        "src/aezoo/sub/c.py",
    }


def dvc_status(repo: Path) -> dict[str, dict[str, Any]]:
    """``dvc status`` in ``repo``: for each stage, its changed deps and their state
    (``modified``, ``deleted``, ...). Outputs are ignored (the copy has no data)."""
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json"],
        cwd=repo,
        env={**os.environ, "DVC_NO_ANALYTICS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"dvc status failed:\n{done.stderr[-2000:]}"
    report = json.loads(done.stdout or "{}")
    changed: dict[str, dict[str, Any]] = {}
    for stage, entries in report.items():
        changed[stage] = {}
        for entry in entries:
            if isinstance(entry, dict):
                changed[stage].update(entry.get("changed deps", {}))
    return changed


def project_copy(destination: Path) -> Path:
    """A throwaway clone of the project with the working tree's pipeline definition, lock,
    params, library and scripts, so uncommitted work is what gets checked."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(destination)], check=True)
    for name in ("dvc.yaml", "dvc.lock", "params.yaml"):
        shutil.copy2(ROOT / name, destination / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for tree in (LIBRARY, Path("pipeline")):
        # Removed first: a file deleted (or moved) in the working tree must not linger.
        shutil.rmtree(destination / tree, ignore_errors=True)
        shutil.copytree(ROOT / tree, destination / tree, dirs_exist_ok=True, ignore=ignore)
    return destination


@pytest.mark.integration
def test_dvc_status_sees_a_change_in_any_module_exactly_where_it_is_imported(
    tmp_path: Path,
) -> None:
    repo = project_copy(tmp_path / "repo")
    closures, missing_scripts = group_closures(repo)
    names = stage_names(repo)
    checked = {name for group in closures for name in names[group]}
    baseline = dvc_status(repo)  # deps already modified before any edit (a stale dvc.lock)
    modules = sorted(
        path.relative_to(repo).as_posix()
        for path in (repo / LIBRARY).rglob("*.py")
        if "__pycache__" not in path.parts
    )
    assert modules, f"no modules found under {LIBRARY}"

    problems = []
    for module in modules:
        path = repo / module
        original = path.read_bytes()
        path.write_bytes(original + EDIT_MARK.encode())
        try:
            after = dvc_status(repo)
        finally:
            path.write_bytes(original)
        # A dep already changed in the baseline cannot be told apart: dvc tracks it, so
        # it counts as seen. Otherwise the edit must newly show as modified.
        seen = {
            stage
            for stage in checked
            if module in baseline.get(stage, {}) or after.get(stage, {}).get(module) == "modified"
        }
        importers = [group for group, closure in closures.items() if module in closure]
        expected = {name for group in importers for name in names[group]}
        if seen != expected:
            problems.append(
                f"{module}:\n"
                f"    imported but unseen by dvc: {sorted(expected - seen)}\n"
                f"    seen by dvc but not imported: {sorted(seen - expected)}"
            )
    if missing_scripts:
        problems.append(f"stages whose script is missing (not checked): {missing_scripts}")
    assert not problems, "dvc status disagrees with the imports:\n" + "\n".join(problems)
