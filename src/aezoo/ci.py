"""What CI and reviewers run on top of DVC: the smoke run, the freshness check, the PR report.

Each one drives DVC's own commands and reads their JSON; nothing here re-implements DVC's
bookkeeping:

- :func:`smoke` runs the real ``dvc.yaml`` on a small subset with ``dvc exp run --temp``, in
  throwaway copies of the workspace (the user's outputs stay as they are), then checks that
  every variant's metrics files exist and hold finite numbers.
- :func:`check_fresh` fails when ``dvc status`` shows changed code, params or commands: the
  committed metrics were not produced by the committed pipeline.
- :func:`pr_report` writes ``reports/pr-report.md``: ``dvc params diff`` and ``dvc metrics
  diff`` against a base revision, the changed variants' loss curves (``dvc plots diff``) and
  their reconstruction grids, base beside head.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aezoo.config import Params
from aezoo.errors import PipelineError
from aezoo.io import atomic_path

VARIANT_REPORTS = Path("reports/variants")
RECONSTRUCTIONS = Path("figures/reconstructions.png")
HISTORY = Path("history.csv")
FIX_STALE = "run `dvc repro` and commit dvc.lock and reports/"
COMMENT_LIMIT = 60_000  # GitHub refuses comments over 65,536 characters

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


# ----------------------------------------------------------------- running dvc and git


def _environment() -> dict[str, str]:
    """The caller's environment with this interpreter's directory first on PATH.

    Stage commands say ``python``; run from ``make`` without an activated virtualenv, that
    must still be the interpreter that has aezoo installed.
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run_command(args: list[str], root: Path, *, stream: bool = False) -> str:
    """Run ``args`` in ``root`` and return its stdout; a failure raises PipelineError.

    With ``stream`` the output goes straight to the terminal (long runs show progress).
    """
    captured = None if stream else subprocess.PIPE
    result = subprocess.run(
        args, cwd=root, env=_environment(), text=True, stdout=captured, stderr=captured
    )
    if result.returncode != 0:
        detail = "" if stream else (result.stderr or result.stdout).strip()[-2000:]
        command = " ".join(args[2:] if args[1:3] == ["-m", "dvc"] else args)
        message = f"`{command}` failed (exit {result.returncode})"
        raise PipelineError(f"{message}:\n{detail}" if detail else message)
    return result.stdout or ""


def dvc_command(*args: str) -> list[str]:
    """A DVC command line with this interpreter (``python -m dvc``), so no PATH is assumed."""
    return [sys.executable, "-m", "dvc", *args]


def dvc(root: Path, *args: str, stream: bool = False) -> str:
    """Run a DVC command (``dvc_command``) in ``root`` and return its stdout."""
    return run_command(dvc_command(*args), root, stream=stream)


def git(root: Path, *args: str) -> str:
    return run_command(["git", *args], root).strip()


def git_file(root: Path, revision: str, path: Path) -> bytes | None:
    """The bytes of ``path`` as committed at ``revision``, or None where it is absent."""
    result = subprocess.run(
        ["git", "show", f"{revision}:{path.as_posix()}"], cwd=root, capture_output=True
    )
    return result.stdout if result.returncode == 0 else None


def git_ignored(root: Path, paths: Iterable[str]) -> set[str]:
    """Those of ``paths`` that git ignores: DVC-cached data, never committed to git."""
    paths = list(paths)
    if not paths:
        return set()
    result = subprocess.run(
        ["git", "check-ignore", "--stdin"],
        cwd=root,
        input="\n".join(paths),
        capture_output=True,
        text=True,
    )
    return set(result.stdout.splitlines())


# ------------------------------------------------------------------------- freshness


@dataclass(frozen=True)
class Freshness:
    """What ``dvc status`` says: changes no recorded run accounts for, and absent outputs."""

    stale: list[str]
    absent: list[str]


def classify_status(
    status: Mapping[str, list[Any]], is_ignored: Callable[[str], bool]
) -> Freshness:
    """Split ``dvc status --json`` into stale changes and outputs merely absent here.

    Each stage maps to a list of ``"changed command"`` strings and ``{"changed deps" |
    "changed outs": {path: state}}`` dicts, where a params file's state is ``{key: state}``.
    Stale: any params or command change, and a modified or new dependency or output. Absent
    (fine in a fresh clone, which has no DVC cache and no data): an output ``not in cache``,
    or a ``deleted`` path that git ignores. A deleted path that git tracks (a metrics file,
    a figure) was never committed: stale.
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
    return classify_status(status, lambda path: path in ignored)


def stale_message(stale: list[str]) -> str:
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


# ---------------------------------------------------------------------------- smoke


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


LANE_STARTED = "Reproducing experiment"  # a lane's first line once it runs in its copy
LANE_START_TIMEOUT_S = 300


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
            env=_environment(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        started = threading.Event()
        forward = threading.Thread(
            target=_prefix_lines, args=(process, f"[lane {number}] ", started)
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


def _prefix_lines(process: subprocess.Popen, prefix: str, started: threading.Event) -> None:
    """Forward a lane's output with its prefix; set ``started`` once it runs (or ends)."""
    assert process.stdout is not None
    for line in process.stdout:
        print(prefix + line, end="", flush=True)
        if LANE_STARTED in line:
            started.set()
    started.set()


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


# ------------------------------------------------------------------------ PR report


def changed_variants(
    params_diff: Mapping[str, Any], metrics_diff: Mapping[str, Any], names: Iterable[str]
) -> list[str]:
    """Variants named by a changed ``variants.<name>.*`` param or a changed metrics file."""
    touched = {
        key.split(".")[1]
        for changes in params_diff.values()
        for key in changes
        if key.startswith("variants.")
    }
    touched |= {
        Path(path).parent.name
        for path in metrics_diff
        if Path(path).parent.parent == VARIANT_REPORTS
    }
    order = list(names)
    return [name for name in order if name in touched] + sorted(touched - set(order))


def render_loss_plot(plot: Mapping[str, Any], base_label: str, out: Path) -> None:
    """Draw one ``dvc plots diff --json`` plot (our loss template) as a PNG: base dashed."""
    from matplotlib.figure import Figure  # no pyplot: no display, no global state
    from matplotlib.ticker import MaxNLocator

    content = plot["content"]
    x_field = content["encoding"]["x"]["field"]
    folds = [step["fold"] for step in content.get("transform", []) if "fold" in step]
    y_fields = folds[0] if folds else [content["encoding"]["y"]["field"]]
    title = content.get("title", "")

    figure = Figure(figsize=(6, 3.6), layout="constrained")
    axes = figure.add_subplot()
    for revision in plot["revisions"]:
        rows = [row for row in content["data"]["values"] if row.get("rev") == revision]
        is_base = revision == base_label
        for index, y_field in enumerate(y_fields):
            axes.plot(
                [float(row[x_field]) for row in rows],
                [float(row[y_field]) for row in rows],
                color=f"C{index}",
                linestyle="--" if is_base else "-",
                marker="o",
                markersize=4,
                markerfacecolor="none" if is_base else f"C{index}",
                label=f"{y_field} ({'base' if is_base else 'head'})",
            )
    axes.set_title(title.get("text", "") if isinstance(title, Mapping) else str(title))
    axes.set_xlabel(content["encoding"]["x"].get("title", x_field))
    axes.set_ylabel(content["encoding"]["y"].get("title", ""))
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    with atomic_path(out) as temporary:
        figure.savefig(temporary, dpi=100, format="png")


def _write_bytes(path: Path, payload: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(payload)


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text)


@dataclass(frozen=True)
class Revisions:
    """The two sides of the report: the base's merge base, and HEAD plus the workspace."""

    base: str  # as given, e.g. origin/main
    base_sha: str  # short sha of the merge base
    head_sha: str
    dirty: bool  # uncommitted changes to tracked files

    @property
    def head(self) -> str:
        return f"`{self.head_sha}` + uncommitted changes" if self.dirty else f"`{self.head_sha}`"


def resolve_revisions(root: Path, base: str) -> Revisions:
    """Compare against the merge base, as GitHub does, not the base branch's newest commit."""
    try:
        git(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    except PipelineError:
        raise PipelineError(
            f"base revision {base!r} not found: fetch it (`git fetch origin main`) or pass "
            "another, e.g. `make pr-report BASE=origin/main`"
        ) from None
    merge_base = git(root, "merge-base", base, "HEAD")
    return Revisions(
        base=base,
        base_sha=git(root, "rev-parse", "--short", merge_base),
        head_sha=git(root, "rev-parse", "--short", "HEAD"),
        dirty=bool(git(root, "status", "--porcelain", "--untracked-files=no")),
    )


@dataclass(frozen=True)
class Figures:
    """Image files of the changed variants, relative to the report's directory."""

    loss: dict[str, str]  # variant -> PNG
    reconstructions: dict[str, tuple[str | None, str | None]]  # variant -> (base, head)
    interactive: str | None  # DVC's vega-lite HTML


def write_figures(root: Path, revisions: Revisions, variants: list[str], out: Path) -> Figures:
    """Loss curves via ``dvc plots diff`` and reconstruction grids of base and head."""
    assets = out.parent / out.stem
    relative = Path(out.stem)
    shutil.rmtree(root / assets / "plots", ignore_errors=True)  # figures of an earlier report
    for old in (root / assets).glob("*.png"):
        old.unlink()
    histories = [VARIANT_REPORTS / name / HISTORY for name in variants]
    targets = [path.as_posix() for path in histories if (root / path).is_file()]

    loss, interactive = {}, None
    if targets:
        plots = json.loads(
            dvc(root, "plots", "diff", revisions.base_sha, "--json", "--targets", *targets)
        )
        for plot_id, definitions in plots.get("data", {}).items():
            name = Path(plot_id).parent.name
            render_loss_plot(definitions[0], revisions.base_sha, root / assets / f"{name}-loss.png")
            loss[name] = (relative / f"{name}-loss.png").as_posix()
        plots_dir = assets / "plots"
        dvc(root, "plots", "diff", revisions.base_sha, "-o", str(plots_dir), "--targets", *targets)
        interactive = (relative / "plots" / "index.html").as_posix()

    reconstructions = {}
    for name in variants:
        grid = VARIANT_REPORTS / name / RECONSTRUCTIONS
        sides = {
            "base": git_file(root, revisions.base_sha, grid),
            "head": (root / grid).read_bytes() if (root / grid).is_file() else None,
        }
        links = []
        for side, payload in sides.items():
            if payload is None:
                links.append(None)
                continue
            _write_bytes(root / assets / f"{name}-reconstructions-{side}.png", payload)
            links.append((relative / f"{name}-reconstructions-{side}.png").as_posix())
        if any(links):
            reconstructions[name] = (links[0], links[1])
    return Figures(loss=loss, reconstructions=reconstructions, interactive=interactive)


def _section(title: str, table: str, empty: str) -> str:
    return f"## {title}\n\n{table.strip() if table.strip() else f'_{empty}_'}\n"


def _figure_sections(figures: Figures, revisions: Revisions) -> str:
    parts = ["## Loss curves\n"]
    parts += [f"![{name} loss]({path})\n" for name, path in figures.loss.items()]
    if figures.interactive:
        parts.append(
            f"Interactive (DVC's vega-lite): [{figures.interactive}]({figures.interactive})\n"
        )
    if not figures.loss:
        parts.append("_No loss curve changed._\n")
    parts.append("## Reconstructions\n")
    if figures.reconstructions:
        parts.append(f"| variant | base `{revisions.base_sha}` | head {revisions.head} |")
        parts.append("|---|---|---|")
        for name, (base, head) in figures.reconstructions.items():
            cells = [
                f"![{name} {side}]({link})" if link else "_absent_"
                for side, link in (("base", base), ("head", head))
            ]
            parts.append(f"| {name} | {cells[0]} | {cells[1]} |")
        parts.append("")
    else:
        parts.append("_No reconstruction grid committed for the changed variants._\n")
    return "\n".join(parts)


def report_markdown(
    revisions: Revisions,
    state: Freshness,
    params_md: str,
    metrics_md: str,
    variants: list[str],
    figures: Figures | None,
    run_url: str | None = None,
) -> str:
    """The report; with ``figures=None`` (a PR comment) it points to the artifact instead."""
    changed = ", ".join(f"`{name}`" for name in variants) if variants else "none"
    parts = [
        "# aezoo pipeline report\n",
        f"Base `{revisions.base}` (merge base `{revisions.base_sha}`) against head "
        f"{revisions.head}.\n",
        "**Fresh:** `dvc status` shows no changed code, params or commands since the recorded "
        f"run ({len(state.absent)} DVC-cached outputs are not present here, as in any clone "
        "without the DVC cache).\n",
        f"**Changed variants:** {changed}\n",
        _section("Params", params_md, "No params changed."),
        _section("Metrics", metrics_md, "No metrics changed."),
    ]
    if figures is not None:
        parts.append(_figure_sections(figures, revisions))
    elif variants:
        run = f"[this workflow run]({run_url})" if run_url else "this workflow run"
        parts.append(
            "## Figures\n\nLoss curves and reconstruction grids, base beside head, are in the "
            f"`pr-report` artifact of {run}.\n"
        )
    return "\n".join(parts)


def _fit_comment(text: str) -> str:
    if len(text) <= COMMENT_LIMIT:
        return text
    return (
        text[:COMMENT_LIMIT] + "\n\n_(cut to fit a comment: the full report is in the artifact)_\n"
    )


def pr_report(
    root: Path, params: Params, base: str, out: Path, run_url: str | None = None
) -> list[str]:
    """Write the PR report ``out`` (and ``<out stem>/comment.md``); return changed variants.

    Stale results write a report that says so, then raise PipelineError: a PR cannot show
    numbers that its code did not produce.
    """
    revisions = resolve_revisions(root, base)
    comment = out.parent / out.stem / "comment.md"
    state = freshness(root)
    if state.stale:
        listed = "\n".join(f"- `{line}`" for line in state.stale)
        text = (
            "# aezoo pipeline report\n\n**Stale results:** `dvc status` shows changes that no "
            f"run recorded in dvc.lock, so the metrics are not this code's:\n\n{listed}\n\n"
            f"Fix: {FIX_STALE}.\n"
        )
        for path in (root / out, root / comment):
            _write_text(path, text)
        raise PipelineError(stale_message(state.stale))

    params_diff = json.loads(dvc(root, "params", "diff", revisions.base_sha, "--json") or "{}")
    metrics_diff = json.loads(dvc(root, "metrics", "diff", revisions.base_sha, "--json") or "{}")
    variants = changed_variants(params_diff, metrics_diff, params.variants)
    params_md = dvc(root, "params", "diff", revisions.base_sha, "--md")
    metrics_md = dvc(root, "metrics", "diff", revisions.base_sha, "--md")
    figures = write_figures(root, revisions, variants, out)

    args = (revisions, state, params_md, metrics_md, variants)
    _write_text(root / out, report_markdown(*args, figures))
    _write_text(root / comment, _fit_comment(report_markdown(*args, None, run_url)))
    print(f"wrote {out} and {comment}: changed variants: {', '.join(variants) or 'none'}")
    return variants
