"""Smoke run: every stage of dvc.yaml on a small subset, one epoch per variant.

Runs ``dvc exp run --temp`` with ``SMOKE_OVERRIDES`` (the stages up to evaluation first in
``--lanes`` experiments at once): the workspace's outputs are untouched. Then checks that
every variant's metrics are finite. ``make smoke`` runs this module.
"""

from __future__ import annotations

import json
import math
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aezoo.cli import run_stage, stage_parser
from aezoo.config import Params
from aezoo.errors import PipelineError
from tools.commands import dvc, dvc_command, environment, git

VARIANT_REPORTS = Path("reports/variants")

# The smoke profile: every stage of every variant on a small subset, one epoch each. Only
# keys that already exist in params.yaml: `-S` on a new key would fail validation. Tracking
# is off: one-epoch runs do not belong in the user's MLflow store (tests/test_tracking.py
# covers tracking), and MLflow's start-up would cost every stage ~2 s.
SMOKE_OVERRIDES: dict[str, Any] = {
    "data.train_subset": 2048,
    "data.val_subset": 512,
    "data.test_subset": 500,
    "training.max_epochs": 1,
    "evaluation.iwae_samples": 10,
    "evaluation.probe_train_samples": 1000,
    "render.code_map_samples": 250,
    "tracking.enabled": False,
}

LANE_STARTED = "Reproducing experiment"  # a lane's first line once it runs in its copy
LANE_START_TIMEOUT_S = 300


def _scalar(value: Any) -> str:
    """A params value as ``dvc exp run -S`` reads it (YAML): 2048, null, true, text."""
    return value if isinstance(value, str) else json.dumps(value)


def non_finite(payload: Any, prefix: str = "") -> list[str]:
    """Keys of ``payload`` (nested) whose numbers are NaN, infinite or null (written NaN)."""
    if isinstance(payload, Mapping):
        items = payload.items()
    elif isinstance(payload, list):
        items = ((str(index), item) for index, item in enumerate(payload))
    else:
        bad = payload is None or (isinstance(payload, float) and not math.isfinite(payload))
        return [prefix or "(value)"] if bad else []
    return [
        key
        for name, item in items
        for key in non_finite(item, f"{prefix}.{name}" if prefix else str(name))
    ]


def smoke_problems(metrics: Mapping[str, Any], variants: Iterable[str]) -> list[str]:
    """What is wrong with a smoke run's metrics (``dvc exp show``'s per-file entries)."""
    problems = []
    for path, entry in sorted(metrics.items()):
        if not isinstance(entry, Mapping) or "data" not in entry:
            problems.append(f"{path}: missing or unreadable ({entry})")
        elif bad := non_finite(entry["data"]):
            problems.append(f"{path}: not finite: {', '.join(bad)}")
    for name in variants:
        if not any(Path(path).parent == VARIANT_REPORTS / name for path in metrics):
            problems.append(f"{name}: no metrics file under {VARIANT_REPORTS / name}")
    return problems


def experiment_metrics(root: Path, name: str) -> dict[str, Any]:
    """The metrics files of the experiment ``name`` (on HEAD), as ``dvc exp show`` reads them."""
    for row in json.loads(dvc(root, "exp", "show", "--json")):
        for experiment in row.get("experiments") or []:
            for revision in experiment.get("revs", []):
                if revision.get("name") == name:
                    return (revision.get("data") or {}).get("metrics") or {}
    raise PipelineError(f"`dvc exp show` lists no experiment named {name!r} on HEAD")


def lane_targets(params: Params, lanes: int) -> list[list[str]]:
    """Split the pipeline up to evaluation into ``lanes`` lists of DVC targets sharing no work.

    Variants fed the same corrupted input share a lane, so its corrupt stage runs once; each
    lane gets its variants' evaluate stages (DVC runs what they depend on), and corrupt stages
    that no variant uses go to the least loaded lanes. Lanes left empty are dropped.
    """
    groups: dict[str, list[str]] = {}
    for name, spec in params.variants.items():
        groups.setdefault(name if spec.input == "clean" else spec.input, []).append(name)
    targets: list[list[str]] = [[] for _ in range(lanes)]
    for group in sorted(groups.values(), key=len, reverse=True):
        lightest = min(targets, key=len)
        lightest += [f"evaluate@{name}" for name in group]
    used = {spec.input for spec in params.variants.values()}
    for corruption in params.corruptions:
        if corruption not in used:
            min(targets, key=len).append(f"corrupt@{corruption}")
    return [lane for lane in targets if lane]


def forward_lane_output(process: subprocess.Popen, prefix: str, started: threading.Event) -> None:
    """Print a lane's output with its prefix; set ``started`` once it runs (or ends)."""
    assert process.stdout is not None
    for line in process.stdout:
        print(prefix + line, end="", flush=True)
        if LANE_STARTED in line:
            started.set()
    started.set()


def run_lanes(root: Path, name: str, arguments: list[str], lanes: list[list[str]]) -> None:
    """Run each lane as its own ``dvc exp run --temp`` experiment (``<name>-lane<N>``), all
    at once; every output line is prefixed with its lane. Raises naming the failed lanes.

    A lane starts once the one before it runs in its own copy: setting an experiment up
    holds the repository's lock, and DVC gives a second ``exp run`` only a few seconds to
    get it (with 60 stages, setting up takes longer than that on 2 cores).
    """
    running = []
    for number, targets in enumerate(lanes, 1):
        command = ["exp", "run", "--temp", "--name", f"{name}-lane{number}", *arguments, *targets]
        print(f"[lane {number}] dvc {' '.join(command)}", flush=True)
        process = subprocess.Popen(
            dvc_command(*command),
            cwd=root,
            env=environment(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        started = threading.Event()
        forward = threading.Thread(
            target=forward_lane_output, args=(process, f"[lane {number}] ", started)
        )
        forward.start()
        running.append((number, process, forward))
        if number < len(lanes):
            started.wait(LANE_START_TIMEOUT_S)
    failed = []
    for number, process, forward in running:
        forward.join()
        if process.wait() != 0:
            failed.append(f"lane {number} (exit {process.returncode})")
    if failed:
        raise PipelineError(f"smoke run: {', '.join(failed)} failed (output above)")


def smoke(
    root: Path,
    params: Params,
    name: str = "smoke",
    overrides: Mapping[str, Any] | None = None,
    lanes: int = 2,
) -> dict[str, Any]:
    """Run every stage with the smoke profile in temporary copies; check every variant.

    ``dvc exp run --temp`` runs the same ``dvc.yaml`` in a throwaway directory with the
    workspace's uncommitted changes applied, so the user's own outputs are untouched; it
    shares the DVC cache and run-cache (stages whose inputs did not change are restored,
    not rerun). With ``lanes`` > 1 the stages up to evaluation first run as that many
    experiments at once (``lane_targets``; DVC runs concurrent experiments, and one stage
    at a time uses about one core, mostly importing TensorFlow); the final experiment
    ``name`` then restores them from the run-cache and runs the rest. The lane experiments
    are removed; ``name`` stays (``dvc exp show``, ``dvc exp apply smoke``). Returns its
    metrics, by file.
    """
    settings = {**SMOKE_OVERRIDES, **(overrides or {})}
    lane_names = [f"{name}-lane{number}" for number in range(1, lanes + 1)]
    existing = set(dvc(root, "exp", "list", "--name-only").split())
    if stale := [old for old in [name, *lane_names] if old in existing]:
        dvc(root, "exp", "remove", *stale)  # the previous smoke run of this commit
    # --temp copies only what git tracks; new, not yet added files are needed too (whole
    # new directories as one path: DVC copies a path only into an existing directory).
    untracked = git(root, "ls-files", "--others", "--exclude-standard", "--directory")
    arguments = [f"--set-param={key}={_scalar(value)}" for key, value in settings.items()]
    arguments += [f"--copy-paths={path.rstrip('/')}" for path in untracked.splitlines()]
    started = time.monotonic()
    if lanes > 1:
        run_lanes(root, name, arguments, lane_targets(params, lanes))
    # The zoo's pipeline only: the studies (studies/dvc.yaml) train ~60 more networks.
    command = ["exp", "run", "--temp", "--name", name, *arguments, "dvc.yaml"]
    print("smoke run: dvc " + " ".join(command), flush=True)
    dvc(root, *command, stream=True)
    elapsed = time.monotonic() - started
    if lanes > 1:
        ran = set(dvc(root, "exp", "list", "--name-only").split())
        if finished := [lane for lane in lane_names if lane in ran]:
            dvc(root, "exp", "remove", *finished)

    metrics = experiment_metrics(root, name)
    if problems := smoke_problems(metrics, params.variants):
        listed = "\n".join(f"  {problem}" for problem in problems)
        raise PipelineError(f"smoke run {name!r} finished, but its metrics are wrong:\n{listed}")
    for variant in params.variants:
        files = sorted(Path(path).name for path in metrics if Path(path).parent.name == variant)
        print(f"  {variant}: {', '.join(files)} finite")
    lanes_note = f", {lanes} lanes" if lanes > 1 else ""
    print(
        f"smoke run ok: {len(metrics)} metrics files, {elapsed:.0f}s{lanes_note} "
        f"(experiment {name!r})"
    )
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--name", default="smoke", help="the experiment's name")
    parser.add_argument(
        "--lanes",
        type=int,
        default=2,
        help="experiments run at once before the final one (1: a single experiment)",
    )
    parser.add_argument(
        "-S",
        "--set-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra override, e.g. -S training.max_epochs=2 (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.lanes < 1:
        parser.error(f"--lanes must be at least 1, got {args.lanes}")
    if bad := [item for item in args.set_param if "=" not in item]:
        parser.error(f"--set-param needs KEY=VALUE, got {bad[0]!r}")
    overrides = dict(item.split("=", 1) for item in args.set_param)
    run_stage(
        args.params,
        lambda params: smoke(Path.cwd(), params, args.name, overrides, args.lanes),
        tensorflow_logs=args.tensorflow_logs,
    )


if __name__ == "__main__":
    main()
