"""The fast tier's one end-to-end run: the real ``dvc.yaml``, in a throwaway copy of the
project, from fetching MNIST (the mirror) to the comparison report, for one variant on a
small subset. Every other test that reaches MNIST is in the integration tier (``make
test-all``); this one keeps ``make test`` honest about the stages fitting together: the
commands, their arguments, deps and outs as DVC runs them.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import copy_project, project_environment, write_params

VARIANT = "dense16"  # the cheapest network; clean input
EPOCHS, BATCH = 2, 32  # 32 Adam steps on 512 images: enough to leave the untrained MSE (0.23)
CORRUPTION = "gauss05"  # one corruption: the compare stage reads reports/corruptions
SUBSETS = {"train_subset": 512, "val_subset": 128, "test_subset": 256}


def small_params(raw: dict) -> dict:
    """params.yaml cut down to one variant, one corruption and two short epochs on a small
    subset, with small figures, and tracking off (MLflow's own tests are integration)."""
    raw["variants"] = {VARIANT: {**raw["variants"][VARIANT], "epochs": EPOCHS, "batch_size": BATCH}}
    raw["corruptions"] = {CORRUPTION: raw["corruptions"][CORRUPTION]}
    raw["data"].update(SUBSETS)
    raw["evaluation"].update(probe_train_samples=None)
    raw["render"].update(code_map_samples=200, interpolation_steps=5)
    raw["comparison"].update(bootstrap_resamples=200)
    raw["tracking"]["enabled"] = False
    return raw


def run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def numbers_in(tree: object) -> list[float]:
    """Every number in a parsed JSON document."""
    if isinstance(tree, dict):
        return [number for value in tree.values() for number in numbers_in(value)]
    if isinstance(tree, list):
        return [number for value in tree for number in numbers_in(value)]
    return [float(tree)] if isinstance(tree, int | float) and not isinstance(tree, bool) else []


@pytest.mark.integration
@pytest.mark.e2e
def test_dvc_repro_runs_every_stage_of_one_variant_on_a_small_subset(tmp_path, mnist_mirror):
    repo = copy_project(tmp_path / "project")
    write_params(
        repo / "params.yaml", small_params(yaml.safe_load((repo / "params.yaml").read_text()))
    )
    env = project_environment(mnist_mirror, repo)
    run(["git", "init", "-q"], repo, env)  # DVC keeps its files in a git repository

    run([sys.executable, "-m", "dvc", "repro", "--quiet"], repo, env)

    raw = repo / "data" / "raw"
    assert sorted(path.name for path in raw.iterdir()) == sorted(
        path.name for path in mnist_mirror.glob("*-ubyte.gz")
    )
    variant = repo / "reports" / "variants" / VARIANT
    train = json.loads((variant / "train.json").read_text())
    assert train["epochs_run"] == EPOCHS, train
    history = (variant / "history.csv").read_text().splitlines()
    val_loss = [float(line.split(",")[2]) for line in history[1:]]
    assert len(val_loss) == EPOCHS and val_loss[1] < val_loss[0], history
    metrics = json.loads((variant / "metrics.json").read_text())
    numbers = numbers_in(metrics)
    assert numbers and all(math.isfinite(number) for number in numbers), metrics
    assert 0 < metrics["reconstruction"]["mse"] < 0.15  # untrained: 0.23
    assert (variant / "figures").is_dir() and any((variant / "figures").iterdir())
    corruption = json.loads((repo / "reports" / "corruptions" / f"{CORRUPTION}.json").read_text())
    assert 8 < corruption["test_psnr_db"] < 11
    assert VARIANT in (repo / "reports" / "summary.md").read_text()
    assert (repo / "reports" / "index.html").is_file()
    # Every output is where dvc.yaml says and every dep was declared: nothing left to run.
    status = run([sys.executable, "-m", "dvc", "status", "--json"], repo, env)
    assert json.loads(status or "{}") == {}, status
