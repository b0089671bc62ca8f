"""The developer tools (tools/): the PR report, the freshness gate, the smoke run, workflows.

The integration tests build a throwaway git repository from the project's files with a
reduced params.yaml (two variants, the smoke subsets, one epoch) and run the real dvc.yaml
in it twice: a baseline committed on main, then a branch that changes one variant.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT, copy_project, project_environment, write_params

from aezoo.config import load_params
from tools.freshness import FIX_STALE, Freshness, classify_status
from tools.pr_report import (
    COMMENT_LIMIT,
    Diff,
    Revisions,
    changed_variants,
    reconstructions_plot,
    report_markdown,
    shorten_table,
)
from tools.smoke import (
    LANE_STARTED,
    SMOKE_OVERRIDES,
    forward_lane_output,
    lane_targets,
    non_finite,
    smoke_problems,
)
from tools.vega import NODE_BIN, vega_lite_png

VARIANTS = ("dense16", "deep2d")  # two small clean-input variants; dense16 changes on the PR
CORRUPTIONS = ("gauss05",)  # one corruption keeps every stage kind in the pipeline
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
IMAGE_LINK = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def ok(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = run(args, cwd, env)
    assert result.returncode == 0, f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def tool(module: str, *args: str) -> list[str]:
    """A tool's command line, as make runs it (``python -m tools.<module>``)."""
    return [sys.executable, "-m", f"tools.{module}", *args]


def reduced_params(raw: dict) -> dict:
    """The project's params with two variants, one corruption and the smoke profile."""
    raw["variants"] = {name: raw["variants"][name] for name in VARIANTS}
    raw["corruptions"] = {name: raw["corruptions"][name] for name in CORRUPTIONS}
    for dotted, value in SMOKE_OVERRIDES.items():
        section, key = dotted.split(".")
        raw[section][key] = value
    return raw


def image_links(report: str, relative_to: Path) -> dict[str, Path]:
    """The report's images by alt text, as paths (CML uploads them, relative to the report)."""
    return {alt: relative_to / link for alt, link in IMAGE_LINK.findall(report)}


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == PNG_MAGIC


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("project")


@pytest.fixture(scope="module")
def env(mnist_mirror, workdir) -> dict[str, str]:
    """The copy's environment, with this checkout's Vega CLI (node_modules is not copied)."""
    variables = project_environment(mnist_mirror, workdir)
    variables["PATH"] = os.pathsep.join([str(NODE_BIN), variables["PATH"]])
    return variables


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
    ok(tool("pr_report", "--base", "main"), repo, env)
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


@pytest.mark.integration
def test_a_changed_variants_report_shows_its_loss_curves_and_both_grids(repo, env):
    """The images CML uploads: DVC's loss chart drawn as a PNG, and the grid at each side
    exactly as committed there (``dvc plots diff`` of the image plots)."""
    ok(tool("pr_report", "--base", "main"), repo, env)
    report = (repo / "reports/pr-report.md").read_text()
    images = image_links(report, repo / "reports")
    assert set(images) == {
        "dense16: loss per epoch, base and head",
        "dense16 reconstructions at base",
        "dense16 reconstructions at head",
    }, report  # deep2d did not change: no figures
    assert all(path.is_file() and is_png(path) for path in images.values()), images
    assert images["dense16: loss per epoch, base and head"].stat().st_size > 5000

    grid = reconstructions_plot("dense16")
    committed = subprocess.run(
        ["git", "show", f"main:{grid}"], cwd=repo, capture_output=True, check=True
    ).stdout
    assert images["dense16 reconstructions at base"].read_bytes() == committed
    head = images["dense16 reconstructions at head"].read_bytes()
    assert head == (repo / grid).read_bytes() and head != committed  # retrained: it changed
    main = ok(["git", "rev-parse", "--short", "main"], repo, env).strip()
    assert f"| base `{main}` | head `" in report


@pytest.mark.integration
def test_an_unchanged_branch_says_so_in_words(repo, env):
    ok(tool("pr_report", "--base", "pr"), repo, env)
    report = (repo / "reports/pr-report.md").read_text()
    assert "## Params\n\nNo params changed.\n" in report
    assert "## Metrics\n\nNo metrics changed.\n" in report
    assert "**Changed variants:** none" in report and "No variant changed" in report
    assert not report_rows(report, "Params") and not report_rows(report, "Metrics")
    assert not list((repo / "reports/pr-report").iterdir())  # the earlier report's images


@pytest.mark.integration
def test_a_fresh_clone_without_cache_or_data_is_not_stale(repo, env, tmp_path):
    clone = tmp_path / "clone"
    ok(["git", "clone", "-q", str(repo), str(clone)], tmp_path, env)
    assert not (clone / "data").exists()
    assert "fresh:" in ok(tool("freshness"), clone, env)


@pytest.mark.integration
def test_a_fresh_clone_pulls_the_models_from_a_remote_and_uses_them_without_training(
    repo, env, tmp_path
):
    """`make push` to a local-directory remote; a fresh clone with that remote in its
    .dvc/config runs `make pull`'s command: `dvc status` is clean and `aezoo reconstruct`
    gives the same outputs as in the original, with no stage run."""
    from PIL import Image, ImageDraw

    remote = tmp_path / "remote"
    ok(dvc("remote", "add", "--local", "shared", str(remote)), repo, env)
    try:
        ok(dvc("push", "-r", "shared", "dvc.yaml"), repo, env)
    finally:
        ok(dvc("remote", "remove", "--local", "shared"), repo, env)
    clone = tmp_path / "clone"
    ok(["git", "clone", "-q", str(repo), str(clone)], tmp_path, env)
    ok(dvc("remote", "add", "-d", "shared", str(remote)), clone, env)  # as a team commits it
    pulled = ok(dvc("pull", "dvc.yaml"), clone, env)
    assert "Running stage" not in pulled
    assert "up to date" in ok(dvc("status", "dvc.yaml"), clone, env)
    assert (clone / "models" / "dense16" / "autoencoder.keras").is_file()

    digit = tmp_path / "seven.png"
    image = Image.new("L", (90, 120), 245)
    ImageDraw.Draw(image).line([(15, 20), (70, 20), (35, 105)], fill=20, width=8)
    image.save(digit)
    outputs = {}
    for where in (repo, clone):
        command = [sys.executable, "-m", "aezoo", "reconstruct", "dense16", str(digit)]
        report = json.loads(
            ok([*command, "--json", "--out", str(tmp_path / where.name)], where, env)
        )
        assert report["model"] == "models/dense16 (DVC output)"
        assert report["ood_threshold"] is not None  # the evaluate stage's outputs came too
        outputs[where] = np.load(tmp_path / where.name / "outputs.npy")
    np.testing.assert_array_equal(outputs[repo], outputs[clone])


@pytest.mark.integration
def test_a_params_change_without_a_rerun_is_stale_and_says_what_to_run(repo, env):
    params = repo / "params.yaml"
    original = params.read_text()
    raw = yaml.safe_load(original)
    raw["variants"]["deep2d"]["batch_size"] = 64
    write_params(params, raw)
    try:
        check = run(tool("freshness"), repo, env)
        report = run(tool("pr_report", "--base", "main"), repo, env)
    finally:
        params.write_text(original)
    for result in (check, report):
        assert result.returncode == 1
        assert "train@deep2d: param variants.deep2d modified" in result.stderr
        assert FIX_STALE in result.stderr and "Traceback" not in result.stderr
        assert "dense16" not in result.stderr
    assert "**Stale results:**" in (repo / "reports/pr-report.md").read_text()


@pytest.mark.integration
def test_smoke_runs_every_stage_in_a_temporary_copy(repo, env):
    """A new seed makes the lanes train and evaluate; the final experiment then restores
    those stages from DVC's run-cache (a stage with a plain ``cache: false`` out would
    not be saved there, and would train again), and the workspace stays untouched."""
    kept = ["dvc.lock", "params.yaml", "reports/variants/dense16/metrics.json"]
    before = {name: (repo / name).read_bytes() for name in kept}
    output = ok(tool("smoke", "-S", "training.seed=7"), repo, env)
    assert "dense16: " in output and "deep2d: " in output and "smoke run ok" in output
    lanes = [line for line in output.splitlines() if line.startswith("[lane")]
    final = [line for line in output.splitlines() if not line.startswith("[lane")]
    for stage in ("train@dense16", "evaluate@deep2d"):
        assert any(f"Running stage '{stage}'" in line for line in lanes), stage
        assert any(f"Stage '{stage}' is cached - skipping run" in line for line in final)
    assert not [line for line in final if re.search(r"Running stage '(train|evaluate)@", line)]
    assert {name: (repo / name).read_bytes() for name in kept} == before
    assert ok(["git", "status", "--porcelain", "--untracked-files=no"], repo, env) == ""
    experiments = ok(dvc("exp", "list", "--name-only"), repo, env).split()
    assert "smoke" in experiments and not [name for name in experiments if "lane" in name]


# ------------------------------------------------------------------ no pipeline runs

REVISIONS = Revisions(base="main", base_sha="abc1234", head_sha="def5678", dirty=False)
PARAMS_TABLE = "| Path | Param | abc1234 | workspace |\n|---|---|---|---|\n| p | k | 1 | 2 |"


def test_empty_diffs_say_so_in_words_not_a_header_only_table():
    """``dvc params diff --md`` with nothing changed prints a header and no rows: the report
    decides from DVC's JSON and says it in words."""
    empty = Diff(changes={}, table="")
    report = report_markdown(REVISIONS, Freshness([], []), empty, empty, [], [])
    assert "## Params\n\nNo params changed.\n" in report
    assert "## Metrics\n\nNo metrics changed.\n" in report
    assert "|" not in report and "No variant changed" in report
    changed = Diff(changes={"params.yaml": {"k": {"old": 1, "new": 2}}}, table=PARAMS_TABLE)
    report = report_markdown(REVISIONS, Freshness([], []), changed, empty, [], [], "https://ci/1")
    assert f"## Params\n\n{PARAMS_TABLE}\n" in report and "No metrics changed." in report
    assert report.endswith("Made by [this workflow run](https://ci/1).\n")


def test_changed_variants_come_from_their_params_and_metrics_files():
    params = {"params.yaml": {"variants.vae.epochs": {}, "training.seed": {}}}
    metrics = {"reports/variants/conv/metrics.json": {}, "reports/corruptions/mask.json": {}}
    names = ["conv", "dense16", "vae"]
    assert changed_variants(params, metrics, names) == ["conv", "vae"]
    gone = {"reports/variants/old/metrics.json": {}}  # removed from params.yaml on the branch
    assert changed_variants({}, gone, names) == ["old"]


def test_a_long_table_is_cut_to_whole_rows_and_says_how_many_are_left_out():
    table = "| a | b |\n|---|---|\n" + "\n".join(f"| {n} | {n} |" for n in range(100))
    cut = shorten_table(table, 200, "left out.")
    kept = cut.split("\n\n")[0].splitlines()
    assert len("\n".join(kept)) <= 200 and kept[:2] == ["| a | b |", "|---|---|"]
    assert kept[-1] == f"| {len(kept) - 3} | {len(kept) - 3} |"
    assert cut.endswith(f"_{100 - (len(kept) - 2)} more rows left out._")
    assert shorten_table(table, 10_000, "left out.") == table
    assert COMMENT_LIMIT < 65_536  # GitHub's limit for a comment


def test_every_variants_reconstruction_grid_is_an_image_plot_of_dvc(tmp_path):
    """dvc.yaml's top-level plots hold each variant's grid, so a bare `dvc plots diff`
    (or show) draws it at each revision."""
    variants = load_params(ROOT / "params.yaml").variants
    grids = [reconstructions_plot(name) for name in variants]
    assert yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"] == grids
    shown = subprocess.run(
        dvc("plots", "show", "--json", "-o", str(tmp_path)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    images = {
        plot_id
        for plot_id, renderings in json.loads(shown)["data"].items()
        if [rendering["type"] for rendering in renderings] == ["image"]
    }
    assert images == set(grids)


def test_a_vega_lite_chart_is_drawn_as_a_png_by_vegas_own_cli(tmp_path):
    """DVC's loss template, filled the way ``dvc plots diff --json`` fills it."""
    template = json.loads((ROOT / ".dvc/plots/loss.json").read_text())
    rows = [
        {"epoch": epoch, "loss": 1 / epoch, "val_loss": 1.1 / epoch, "rev": rev}
        for rev in ("abc1234", "workspace")
        for epoch in (1, 2, 3)
    ]
    spec = {**template, "data": {"values": rows}, "title": {"text": "dense16"}}
    spec.update(width=300, height=300)
    spec["encoding"]["x"].update(field="epoch", title="epoch")
    png = vega_lite_png(spec, tmp_path / "loss.png", zoom=1.0)
    assert is_png(png) and png.stat().st_size > 5000
    width = int.from_bytes(png.read_bytes()[16:20], "big")  # the IHDR chunk
    assert 300 < width < 600  # the plot, its axes and its legend at zoom 1
    assert not list(tmp_path.glob(".*"))  # written atomically: no leftovers
    broken = {**spec, "mark": "no-such-mark"}
    with pytest.raises(Exception, match="vl2svg"):
        vega_lite_png(broken, tmp_path / "broken.png")
    assert not (tmp_path / "broken.png").exists()


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


def test_a_directory_dep_missing_only_its_cached_files_is_absent_not_stale(tmp_path):
    """compare depends on reports/variants: git holds its metrics, the DVC cache its
    train.json files. In a fresh clone the directory is `modified` for DVC only because
    those are missing; with one of them present (or a committed file edited) it is stale."""
    from tools.freshness import missing_cached_part

    root = tmp_path
    variant = root / "reports" / "variants" / "dense16"
    variant.mkdir(parents=True)
    (variant / "metrics.json").write_text("{}")
    (variant / ".gitignore").write_text("/train.json\n")
    (root / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  train@dense16:\n    cmd: x\n    outs:\n"
        "    - path: reports/variants/dense16/train.json\n      md5: 0\n"
    )
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"]):
        subprocess.run(["git", *command], cwd=root, check=True, env=git_identity())
    status = {"compare": [{"changed deps": {"reports/variants": "modified"}}]}
    check = missing_cached_part(root)
    state = classify_status(status, lambda path: False, check)
    assert state == Freshness(stale=[], absent=["reports/variants/dense16/train.json"])

    (variant / "train.json").write_text("{}")  # present: the difference may be real
    assert classify_status(status, lambda path: False, check).stale == [
        "compare: dependency reports/variants modified"
    ]
    (variant / "train.json").unlink()
    (variant / "metrics.json").write_text('{"edited": 1}')  # a committed file changed
    assert classify_status(status, lambda path: False, check).stale


def git_identity() -> dict[str, str]:
    names = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t"}
    return {**os.environ, **names, "GIT_COMMITTER_EMAIL": "t@x"}


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


@pytest.mark.parametrize(
    ("lines", "marked"),
    [
        (["setting up", "Reproducing experiment 'smoke-lane1'", "Running stage"], True),
        (["ERROR: Unable to acquire lock."], False),
    ],
)
def test_a_smoke_lane_counts_as_started_once_dvc_runs_it_or_it_ends(lines, marked, capsys):
    import threading

    script = "\n".join(f"print({line!r}, flush=True)" for line in lines)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    started = threading.Event()
    forward_lane_output(process, "[lane 1] ", started)
    process.wait()
    assert started.is_set()
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"[lane 1] {line}" for line in lines]
    assert any(LANE_STARTED in line for line in printed) is marked


def test_the_library_has_none_of_the_tools_and_pipeline_only_stages():
    """tools/ and benchmarks/ import aezoo, never the reverse; pipeline/ holds only the
    scripts that DVC stages run."""
    assert (
        not (ROOT / "src/aezoo/ci.py").exists() and not (ROOT / "src/aezoo/benchmark.py").exists()
    )
    commands = "\n".join(
        path.read_text()
        for path in (ROOT / "dvc.yaml", ROOT / "studies/dvc.yaml")
        if path.is_file()
    )
    staged = set(re.findall(r"pipeline/(\w+\.py)", commands))
    assert {path.name for path in (ROOT / "pipeline").glob("*.py")} == staged


# -------------------------------------------------------------------------- workflows

WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))


def schema_checker() -> str | None:
    """check-jsonschema from this interpreter's environment, else from PATH."""
    beside = Path(sys.executable).parent / "check-jsonschema"
    return str(beside) if beside.is_file() else shutil.which("check-jsonschema")


def workflow_runs(path: Path) -> list[str]:
    """The ``run:`` commands of a workflow's steps, in order."""
    jobs = yaml.safe_load(path.read_text())["jobs"].values()
    return [step["run"] for job in jobs for step in job["steps"] if "run" in step]


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
    commands = {
        path.name: set(re.findall(r"\bmake ([a-z-]+)", "\n".join(workflow_runs(path))))
        for path in WORKFLOWS
    }
    assert {"env", "lint", "test-all", "check-fresh", "smoke"} <= commands["ci.yml"]
    assert {"env", "pr-report"} <= commands["pr-report.yml"]
    assert set().union(*commands.values()) <= targets


def test_the_pr_workflow_posts_the_report_with_a_pinned_cml():
    """CML posts reports/pr-report.md and uploads its images (``--publish``), editing its
    own earlier comment (``comment update``); its version is exact, as npm ci's are."""
    runs = workflow_runs(ROOT / ".github/workflows/pr-report.yml")
    [comment] = [command for command in runs if "cml" in command]
    assert re.search(r"@dvcorg/cml@\d+\.\d+\.\d+ comment update\b", comment), comment
    assert "--publish" in comment and comment.rstrip().endswith("reports/pr-report.md")
    package = json.loads((ROOT / "package.json").read_text())
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in package["dependencies"].values())
