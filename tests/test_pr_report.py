"""CI tooling: the PR report, the freshness check, the smoke run and the workflow files.

The integration tests build a throwaway git repository from the project's files with a
reduced params.yaml (two variants, the smoke subsets, one epoch) and run the real dvc.yaml
in it twice: a baseline committed on main, then a branch that changes one variant.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, copy_project, project_environment, write_params

from aezoo.ci import (
    SMOKE_OVERRIDES,
    classify_status,
    lane_targets,
    non_finite,
    smoke_problems,
)
from aezoo.config import load_params

VARIANTS = ("dense16", "deep2d")  # two small clean-input variants; dense16 changes on the PR
CORRUPTIONS = ("gauss05",)  # one corruption keeps every stage kind in the pipeline
FIX = "run `dvc repro` and commit dvc.lock and reports/"


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def ok(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = run(args, cwd, env)
    assert result.returncode == 0, f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def script(name: str, *args: str) -> list[str]:
    return [sys.executable, f"pipeline/{name}", *args]


def reduced_params(raw: dict) -> dict:
    """The project's params with two variants, one corruption and the smoke profile."""
    raw["variants"] = {name: raw["variants"][name] for name in VARIANTS}
    raw["corruptions"] = {name: raw["corruptions"][name] for name in CORRUPTIONS}
    for dotted, value in SMOKE_OVERRIDES.items():
        section, key = dotted.split(".")
        raw[section][key] = value
    return raw


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("project")


@pytest.fixture(scope="module")
def env(mnist_mirror, workdir) -> dict[str, str]:
    return project_environment(mnist_mirror, workdir)


@pytest.fixture(scope="module")
def repo(workdir, env) -> Path:
    """The project on a branch ``pr`` whose dense16 has a larger code, both sides run."""
    repo = copy_project(workdir)
    raw = reduced_params(yaml.safe_load((repo / "params.yaml").read_text()))
    write_params(repo / "params.yaml", raw)

    def commit_run(message: str) -> None:
        ok(dvc("repro"), repo, env)
        ok(["git", "add", "-A"], repo, env)
        ok(["git", "commit", "-q", "-m", message], repo, env)

    ok(["git", "init", "-q", "-b", "main"], repo, env)
    commit_run("baseline")
    ok(["git", "checkout", "-q", "-b", "pr"], repo, env)
    raw["variants"]["dense16"]["code_size"] = 24
    write_params(repo / "params.yaml", raw)
    commit_run("dense16: 24-D code")
    return repo


def report_rows(report: str, section: str) -> list[str]:
    """The table rows of one ``## section`` of the report."""
    body = report.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in body.splitlines() if line.startswith("| ") and "---" not in line]


@pytest.mark.integration
def test_pr_report_shows_the_changed_param_and_that_variants_deltas_only(repo, env):
    ok(script("pr_report.py", "--base", "main"), repo, env)
    report = (repo / "reports/pr-report.md").read_text()

    params = report_rows(report, "Params")[1:]
    assert len(params) == 1 and "variants.dense16.code_size" in params[0]
    assert re.search(r"\|\s*16\s*\|\s*24\s*\|", params[0])

    metrics = report_rows(report, "Metrics")[1:]
    assert metrics, report
    assert all("reports/variants/dense16/metrics.json" in row for row in metrics), metrics
    # train.json and evaluate.json hold facts (counts, timings), not metrics: never diffed
    assert not any("train.json" in row or "evaluate.json" in row for row in metrics)
    old = yaml.safe_load(
        ok(["git", "show", "main:reports/variants/dense16/metrics.json"], repo, env)
    )
    new = yaml.safe_load((repo / "reports/variants/dense16/metrics.json").read_text())
    row = next(row for row in metrics if "| reconstruction.mse " in row)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    mse = (old["reconstruction"]["mse"], new["reconstruction"]["mse"])
    assert [float(cell) for cell in cells[2:4]] == pytest.approx(mse, abs=1e-5)  # 5 decimals
    assert any("| baselines.pca.mse " in row for row in metrics)  # PCA follows the code size

    assert "**Changed variants:** `dense16`\n" in report
    assert (repo / "reports/pr-report/dense16-loss.png").stat().st_size > 1000
    assert not (repo / "reports/pr-report/deep2d-loss.png").exists()
    assert (repo / "reports/pr-report/plots/index.html").is_file()
    assert "pr-report/dense16-reconstructions-head.png" in report
    comment = (repo / "reports/pr-report/comment.md").read_text()
    assert "variants.dense16.code_size" in comment and "![" not in comment


@pytest.mark.integration
def test_a_fresh_clone_without_cache_or_data_is_not_stale(repo, env, tmp_path):
    clone = tmp_path / "clone"
    ok(["git", "clone", "-q", str(repo), str(clone)], tmp_path, env)
    assert not (clone / "data").exists()
    assert "fresh:" in ok(script("pr_report.py", "--check-only"), clone, env)


@pytest.mark.integration
def test_a_params_change_without_a_rerun_is_stale_and_says_what_to_run(repo, env):
    params = repo / "params.yaml"
    original = params.read_text()
    raw = yaml.safe_load(original)
    raw["variants"]["deep2d"]["batch_size"] = 64
    write_params(params, raw)
    try:
        check = run(script("pr_report.py", "--check-only"), repo, env)
        report = run(script("pr_report.py", "--base", "main"), repo, env)
    finally:
        params.write_text(original)
    for result in (check, report):
        assert result.returncode == 1
        assert "train@deep2d: param variants.deep2d modified" in result.stderr
        assert FIX in result.stderr and "Traceback" not in result.stderr
        assert "dense16" not in result.stderr
    assert "**Stale results:**" in (repo / "reports/pr-report.md").read_text()


@pytest.mark.integration
def test_smoke_runs_every_stage_in_a_temporary_copy(repo, env):
    """The same profile as the repo's params: unchanged stages come from DVC's run-cache."""
    tracked = ["dvc.lock", "reports/variants/dense16/train.json"]
    before = {name: (repo / name).read_bytes() for name in tracked}
    output = ok(script("smoke.py"), repo, env)
    assert "dense16: " in output and "deep2d: " in output and "smoke run ok" in output
    assert {name: (repo / name).read_bytes() for name in tracked} == before
    assert ok(["git", "status", "--porcelain", "--untracked-files=no"], repo, env) == ""
    experiments = ok(dvc("exp", "list", "--name-only"), repo, env).split()
    assert "smoke" in experiments and not [name for name in experiments if "lane" in name]


# ------------------------------------------------------------------ no pipeline runs


def test_smoke_lanes_split_the_zoo_without_sharing_a_corrupt_stage():
    params = load_params(ROOT / "params.yaml")
    lanes = lane_targets(params, 2)
    assert len(lanes) == 2 and abs(len(lanes[0]) - len(lanes[1])) <= 1
    evaluated = [target.split("@")[1] for lane in lanes for target in lane if "evaluate@" in target]
    assert sorted(evaluated) == sorted(params.variants)  # every variant once
    corruptions = []  # per lane: run as a variant's input, or as a target of its own
    for lane in lanes:
        names = {target.split("@")[1] for target in lane}
        inputs = {params.variants[name].input for name in names if name in params.variants}
        corruptions += sorted((inputs - {"clean"}) | (names & set(params.corruptions)))
    assert sorted(corruptions) == sorted(params.corruptions)  # every corruption once
    assert len(lane_targets(params, 1)) == 1
    unused = set(params.corruptions) - {spec.input for spec in params.variants.values()}
    clean = [name for name, spec in params.variants.items() if not spec.denoising]
    inputs = {spec.input for spec in params.variants.values() if spec.denoising}
    many = lane_targets(params, 40)
    assert len(many) == len(clean) + len(inputs) + len(unused)  # none empty
    # denoisers of the same corrupted input share a lane (its corrupt stage runs once)
    assert ["evaluate@dense_denoise", "evaluate@denoise_vae"] in many


def test_status_shapes_from_a_fresh_clone_are_absent_not_stale():
    """``dvc status --json`` in a clone without cache or data (shapes from DVC 3.67)."""
    status = {
        "prepare": [
            {"changed deps": {"data/raw": "deleted"}},
            {"changed outs": {"data/prepared/clean.npz": "not in cache"}},
        ],
        "train@dense16": [{"changed outs": {"models/dense16": "not in cache"}}],
    }
    state = classify_status(status, is_ignored=lambda path: path.startswith("data/"))
    assert state.stale == []
    assert state.absent == ["data/prepared/clean.npz", "data/raw", "models/dense16"]


def test_status_shapes_of_stale_results():
    status = {
        "train@dense16": [
            {"changed deps": {"params.yaml": {"variants.dense16": "modified"}}},
            {"changed deps": {"src/aezoo/models.py": "modified"}},
            "changed command",
        ],
        "evaluate@dense16": [
            {"changed outs": {"reports/variants/dense16/metrics.json": "deleted"}}
        ],
    }
    state = classify_status(status, is_ignored=lambda path: False)
    assert state.stale == [
        "train@dense16: param variants.dense16 modified",
        "train@dense16: dependency src/aezoo/models.py modified",
        "train@dense16: changed command",
        "evaluate@dense16: output reports/variants/dense16/metrics.json deleted",
    ]


def test_smoke_problems_name_non_finite_numbers_and_missing_variants():
    metrics = {
        "reports/variants/dense16/metrics.json": {"data": {"reconstruction": {"mse": 0.1}}},
        "reports/variants/conv/metrics.json": {"data": {"reconstruction": {"mse": None}}},
        "reports/corruptions/mask.json": {"error": {"type": "FileNotFoundError"}},
    }
    problems = smoke_problems(metrics, ["dense16", "conv", "vae"])
    assert problems == [
        "reports/corruptions/mask.json: missing or unreadable "
        "({'error': {'type': 'FileNotFoundError'}})",
        "reports/variants/conv/metrics.json: not finite: reconstruction.mse",
        "vae: no metrics file under reports/variants/vae",
    ]
    assert non_finite({"a": [1.0, float("nan")], "b": {"c": float("inf")}}) == ["a.1", "b.c"]


# -------------------------------------------------------------------------- workflows

WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))


def schema_checker() -> str | None:
    """check-jsonschema from this interpreter's environment, else from PATH."""
    beside = Path(sys.executable).parent / "check-jsonschema"
    return str(beside) if beside.is_file() else shutil.which("check-jsonschema")


def test_workflows_are_valid_github_actions():
    checker = schema_checker()
    if checker is None:
        pytest.skip("check-jsonschema is not installed (pip install check-jsonschema)")
    assert WORKFLOWS, "no .github/workflows/*.yml"
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_run_the_make_targets_that_ci_runs():
    """One code path: the workflows' steps are make targets that the Makefile defines."""
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    commands = {}
    for path in WORKFLOWS:
        jobs = yaml.safe_load(path.read_text())["jobs"].values()
        runs = [step["run"] for job in jobs for step in job["steps"] if "run" in step]
        commands[path.name] = set(re.findall(r"\bmake ([a-z-]+)", "\n".join(runs)))
    assert {"env", "lint", "test", "check-fresh", "smoke"} <= commands["ci.yml"]
    assert {"env", "pr-report"} <= commands["pr-report.yml"]
    assert set().union(*commands.values()) <= targets


@pytest.mark.parametrize(
    ("lines", "marked"),
    [
        (["setting up", "Reproducing experiment 'smoke-lane1'", "Running stage"], True),
        (["ERROR: Unable to acquire lock."], False),
    ],
)
def test_a_smoke_lane_counts_as_started_once_dvc_runs_it_or_it_ends(lines, marked, capsys):
    import threading

    from aezoo import ci

    script = "\n".join(f"print({line!r}, flush=True)" for line in lines)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    started = threading.Event()
    ci._prefix_lines(process, "[lane 1] ", started)
    process.wait()
    assert started.is_set()
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"[lane 1] {line}" for line in lines]
    assert any(ci.LANE_STARTED in line for line in printed) is marked
