"""The freshness gate: fail when ``dvc status`` shows the committed results are stale.

A changed command, param, code dependency or committed output means the metrics in git were
not produced by the code and params in git. Outputs that are merely absent (a clone without
the DVC cache and data) are fine. ``make check-fresh`` runs this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aezoo.cli import run_stage, stage_parser
from aezoo.errors import PipelineError
from tools.commands import dvc, git, git_ignored

FIX_STALE = "run `dvc repro` and commit dvc.lock and reports/"


@dataclass(frozen=True)
class Freshness:
    """What ``dvc status`` says: changes no recorded run accounts for, and absent outputs."""

    stale: list[str]
    absent: list[str]


def classify_status(
    status: Mapping[str, list[Any]],
    is_ignored: Callable[[str], bool],
    cached_inside: Callable[[str], list[str]] = lambda path: [],
) -> Freshness:
    """Split ``dvc status --json`` into stale changes and outputs merely absent here.

    Each stage maps to a list of ``"changed command"`` strings and ``{"changed deps" |
    "changed outs": {path: state}}`` dicts, where a params file's state is ``{key: state}``.
    Stale: any params or command change, and a modified or new dependency or output. Absent
    (fine in a fresh clone, which has no DVC cache and no data): an output ``not in cache``,
    or a ``deleted`` path that git ignores. A deleted path that git tracks (a metrics file,
    a figure) was never committed: stale. A ``modified`` directory dependency is absent, not
    stale, when ``cached_inside(path)`` names DVC-cached outputs in it that are all missing
    while git sees its committed files unchanged (``reports/variants`` in a fresh clone: its
    metrics are in git, its ``train.json`` files in the DVC cache).
    """
    stale, absent = [], []
    for stage, entries in status.items():
        for entry in entries:
            if isinstance(entry, str):
                if entry != "always changed":
                    stale.append(f"{stage}: {entry}")
                continue
            for kind, changes in entry.items():
                noun = {"changed deps": "dependency", "changed outs": "output"}.get(kind, kind)
                for path, state in changes.items():
                    if isinstance(state, dict):
                        stale += [f"{stage}: param {key} {how}" for key, how in state.items()]
                    elif state == "not in cache" or (state == "deleted" and is_ignored(path)):
                        absent.append(path)
                    elif state == "modified" and (missing := cached_inside(path)):
                        absent += missing
                    else:
                        stale.append(f"{stage}: {noun} {path} {state}")
    return Freshness(stale=stale, absent=sorted(set(absent)))


def freshness(root: Path) -> Freshness:
    """Run ``dvc status --json`` in ``root`` and classify what it reports."""
    status = json.loads(dvc(root, "status", "--json") or "{}")
    deleted = {
        path
        for entries in status.values()
        for entry in entries
        if isinstance(entry, dict)
        for changes in entry.values()
        for path, state in changes.items()
        if state == "deleted"
    }
    ignored = git_ignored(root, deleted)
    return classify_status(status, lambda path: path in ignored, missing_cached_part(root))


def cached_outputs(root: Path) -> list[str]:
    """Every output that dvc.lock files record and git ignores: the DVC-cached ones."""
    recorded = []
    for name in git(root, "ls-files", "--", "dvc.lock", "*/dvc.lock").splitlines():
        lock = root / name
        stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
        base = lock.parent.relative_to(root)
        recorded += [
            (base / out["path"]).as_posix()
            for stage in stages.values()
            for out in stage.get("outs", [])
        ]
    return sorted(git_ignored(root, recorded))


def missing_cached_part(root: Path) -> Callable[[str], list[str]]:
    """For a directory: its DVC-cached outputs, when every one of them is missing here and
    git sees no change to the rest of it; otherwise nothing (a real change, or a partial
    checkout that cannot be told apart from one)."""
    outputs = cached_outputs(root)

    def check(directory: str) -> list[str]:
        inside = [path for path in outputs if path.startswith(directory.rstrip("/") + "/")]
        if not inside or any((root / path).exists() for path in inside):
            return []
        changed = git(root, "status", "--porcelain", "--untracked-files=all", "--", directory)
        return [] if changed else inside

    return check


def stale_message(stale: list[str]) -> str:
    """The error for stale results: every stale change, then what to run."""
    lines = "\n".join(f"  {line}" for line in stale)
    return (
        "the committed results are stale: dvc status shows changes that no run recorded in "
        f"dvc.lock, so the metrics do not come from this code and these params:\n{lines}\n"
        f"{FIX_STALE}"
    )


def check_fresh(root: Path) -> Freshness:
    """Raise PipelineError, saying what to run, when the results are stale."""
    state = freshness(root)
    if state.stale:
        raise PipelineError(stale_message(state.stale))
    print(
        "fresh: dvc.lock matches the code, params and commands "
        f"({len(state.absent)} DVC-cached outputs are not present here)"
    )
    return state


def main(argv: list[str] | None = None) -> None:
    args = stage_parser(__doc__).parse_args(argv)
    run_stage(args.params, lambda _params: check_fresh(Path.cwd()))


if __name__ == "__main__":
    main()
