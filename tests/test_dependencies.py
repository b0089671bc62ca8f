"""DVC's code deps are honest: each stage lists exactly the library modules its script can
import, so a code change reruns every stage whose numbers it can move, and no other. That
holds for every pipeline file: the zoo's dvc.yaml and the studies' studies/dvc.yaml.

A missing dep lets stale numbers pass as current; an extra one reruns stages for nothing.
The unit test reads the imports; the slow test (``make test-all``) asks ``dvc status``.
"""

from __future__ import annotations

import ast
import functools
import io
import itertools
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
# The pipeline files, as repository paths: the zoo's, and the studies' (whose stages run
# from the repository root, ``wdir: ..``). A group outside the root file is named as DVC
# addresses it: ``studies/dvc.yaml:frontier_trial``.
PIPELINES = ("dvc.yaml", "studies/dvc.yaml")
PROJECT_FILE = "dvc.yaml"
# The script a cmd runs, relative to the stage's wdir (``../pipeline/x.py`` from a subfolder).
SCRIPT_PATTERN = re.compile(r"(?<![\w/.])(?:\.\./)*pipeline/[\w/]+\.py\b")
FOREACH_PATTERN = re.compile(r"^\$\{\s*([\w.]+)\s*\}$")
EDIT_MARK = "\n# edited by test_dependencies\n"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def group_name(pipeline: str, stage: str) -> str:
    """A stage (or group) as DVC addresses it: bare in the root dvc.yaml, else
    ``<file>:<stage>``."""
    return stage if pipeline == PROJECT_FILE else f"{pipeline}:{stage}"


def pipeline_stages(root: Path = ROOT) -> dict[str, dict[str, Any]]:
    """Each pipeline file's ``stages:`` mapping, by its repository path (files absent from
    ``root`` are skipped: a clone of an older commit may not have the studies yet)."""
    return {
        pipeline: load_yaml(root / pipeline)["stages"]
        for pipeline in PIPELINES
        if (root / pipeline).is_file()
    }


def stage_groups(root: Path = ROOT) -> dict[str, dict[str, Any]]:
    """Each stage group of every pipeline file (a plain stage, a ``foreach`` template or a
    ``matrix`` stage) and the definition its members share: a ``foreach`` group's ``do:``
    block, else the stage. Its ``wdir`` is made a repository path (``.`` for the root), so
    the script and deps it names resolve with ``repo_path``."""
    groups = {}
    for pipeline, stages in pipeline_stages(root).items():
        directory = Path(pipeline).parent
        for name, stage in stages.items():
            definition = dict(stage.get("do", stage))
            wdir = directory / definition.get("wdir", ".")
            definition["wdir"] = os.path.normpath(wdir.as_posix())
            groups[group_name(pipeline, name)] = definition
    return groups


def repo_path(definition: dict[str, Any], path: str) -> str:
    """A path a stage names (relative to its ``wdir``) as a repository path."""
    return Path(os.path.normpath(Path(definition.get("wdir", "."), path))).as_posix()


def pipeline_context(root: Path, pipeline: str) -> dict[str, Any]:
    """The values a pipeline file's ``${...}`` read: its ``vars:`` (``file`` or
    ``file:key,...``, relative to the file; or a literal mapping), else the params.yaml
    beside it, as DVC loads them."""
    path = root / pipeline
    sources = load_yaml(path).get("vars") or ["params.yaml"]
    context: dict[str, Any] = {}
    for source in sources:
        if isinstance(source, dict):
            context.update(source)
            continue
        name, _, keys = str(source).partition(":")
        file = path.parent / name
        if not file.is_file():
            continue  # DVC's default params.yaml is optional
        values = load_yaml(file) or {}
        if keys:
            values = {key: values[key] for key in keys.split(",")}
        context.update(values)
    return context


def resolve(items: Any, context: dict[str, Any], where: str) -> Any:
    """A ``foreach`` or ``matrix`` value: a literal, or one ``${dotted.key}`` of the
    context."""
    if not isinstance(items, str):
        return items
    match = FOREACH_PATTERN.match(items)
    assert match, f"stage {where}: cannot read {items!r}"
    return functools.reduce(lambda node, key: node[key], match[1].split("."), context)


def key_fragment(key: str, index: int, value: Any) -> str:
    """One matrix dimension's part of a generated name, as DVC spells it: the value, or
    ``<key><index>`` for a mapping or list."""
    if isinstance(value, (dict, list)):
        return f"{key}{index}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def stage_names(root: Path = ROOT) -> dict[str, list[str]]:
    """The stage names ``dvc status`` reports for each group: ``<group>@<key>`` for a
    ``foreach`` group (keys from params.yaml, or from a literal mapping or list),
    ``<group>@<value>-<value>...`` for a ``matrix`` group (one value per dimension, in
    order), else the group's own name; a group outside the root dvc.yaml carries its file's
    path (``studies/dvc.yaml:seed_trial@dense16-1``)."""
    names: dict[str, list[str]] = {}
    for pipeline, stages in pipeline_stages(root).items():
        context = pipeline_context(root, pipeline)
        for name, stage in stages.items():
            group = group_name(pipeline, name)
            if "foreach" in stage:
                items = resolve(stage["foreach"], context, group)
                names[group] = [f"{group}@{key}" for key in items]
            elif "matrix" in stage:
                dimensions = {
                    key: list(enumerate(resolve(values, context, group)))
                    for key, values in stage["matrix"].items()
                }
                names[group] = [
                    f"{group}@"
                    + "-".join(
                        key_fragment(key, index, value)
                        for key, (index, value) in zip(dimensions, combination, strict=True)
                    )
                    for combination in itertools.product(*dimensions.values())
                ]
            else:
                names[group] = [group]
    return names


def stage_script(group: str, definition: dict[str, Any]) -> str:
    """The ``pipeline/*.py`` script the stage's ``cmd`` runs, as a repository path (the
    ``cmd`` names it relative to the stage's ``wdir``)."""
    cmd = definition["cmd"]
    text = " ".join(cmd) if isinstance(cmd, list) else str(cmd)
    scripts = SCRIPT_PATTERN.findall(text)
    assert len(scripts) == 1, f"stage {group}: expected one pipeline/*.py in cmd {text!r}"
    return repo_path(definition, scripts[0])


def stage_deps(definition: dict[str, Any]) -> list[str]:
    """The deps a stage definition lists, as repository paths."""
    return [
        repo_path(definition, next(iter(dep)) if isinstance(dep, dict) else dep)
        for dep in definition["deps"]
    ]


def library_deps(definition: dict[str, Any]) -> set[str]:
    """The library modules (``src/aezoo/**.py``) a stage definition lists as deps."""
    return {
        dep
        for dep in stage_deps(definition)
        if dep.startswith(f"{LIBRARY}/") and dep.endswith(".py")
    }


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
        f"stage {group}: its code deps differ from what {script} imports.\n"
        f"  missing (changes there would not rerun it): {missing}\n"
        f"  extra (not imported: changes there rerun it for nothing): {extra}"
    )


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_stage_lists_its_own_script(group: str) -> None:
    definition = GROUPS[group]
    script = stage_script(group, definition)
    assert script in stage_deps(definition), (
        f"stage {group}: its script {script} is not among its deps"
    )


def test_stage_groups_cover_every_pipeline_file() -> None:
    """The studies' stages are checked as the zoo's are: their own file's groups, with the
    paths they name (relative to ``wdir: ..``) read as repository paths."""
    assert (ROOT / "studies/dvc.yaml").is_file()
    for pipeline, stages in pipeline_stages().items():
        for name in stages:
            assert group_name(pipeline, name) in GROUPS
    assert "train" in GROUPS and "studies/dvc.yaml:frontier_trial" in GROUPS
    trial = GROUPS["studies/dvc.yaml:frontier_trial"]
    assert stage_script("frontier_trial", trial) == "pipeline/frontier_trial.py"
    assert "src/aezoo/evaluation.py" in library_deps(trial)


def test_stage_names_and_deps_agree_with_dvcs_own_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What these helpers read from the pipeline files is what DVC reads: the same stage
    names (``foreach``, ``matrix``, a file outside the root), and the same library deps and
    script for each stage (DVC resolves them against the stage's ``wdir``)."""
    from dvc.repo import Repo

    for name in ("params.yaml", *PIPELINES):
        if (ROOT / name).is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tmp_path / name)
    Repo.init(str(tmp_path), no_scm=True).close()
    monkeypatch.chdir(tmp_path)  # DVC names a stage relative to the working directory
    with Repo(str(tmp_path)) as repo:
        stages = {stage.addressing: stage for stage in repo.index.stages}
        names = stage_names(tmp_path)
        assert sorted(stages) == sorted(name for group in names.values() for name in group)
        for group, members in names.items():
            definition = stage_groups(tmp_path)[group]
            script = stage_script(group, definition)
            for member in members:
                deps = {
                    Path(os.path.relpath(dep.fs_path, repo.root_dir)).as_posix()
                    for dep in stages[member].deps
                }
                library = {dep for dep in deps if dep.startswith(f"{LIBRARY}/")}
                assert library == library_deps(definition), member
                assert script in deps, member


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
    locks = [str(Path(pipeline).with_suffix(".lock")) for pipeline in PIPELINES]
    for name in ("params.yaml", *PIPELINES, *locks):
        target = destination / name
        if (ROOT / name).is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target)
        else:
            target.unlink(missing_ok=True)  # a pipeline not run yet has no lock
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for tree in (LIBRARY, Path("pipeline")):
        # Removed first: a file deleted (or moved) in the working tree must not linger.
        shutil.rmtree(destination / tree, ignore_errors=True)
        shutil.copytree(ROOT / tree, destination / tree, dirs_exist_ok=True, ignore=ignore)
    return destination


@pytest.mark.slow  # a clone of the project and dvc status: ~20 s, no MNIST
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

    # Every module edited at once, then one dvc status: it lists each stage's every changed
    # dep by path (not just the first), so each module's stages read off the same as if it
    # alone were edited, for one dvc start instead of one per module (minutes on 2 cores).
    originals = {module: (repo / module).read_bytes() for module in modules}
    try:
        for module, original in originals.items():
            (repo / module).write_bytes(original + EDIT_MARK.encode())
        after = dvc_status(repo)
    finally:
        for module, original in originals.items():
            (repo / module).write_bytes(original)

    problems = []
    for module in modules:
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
