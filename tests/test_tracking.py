"""MLflow tracking: where runs go, what they hold, and that nothing is lost or duplicated.

The integration tests build a throwaway git + DVC repository from the project (two
variants, the smoke profile) and run the real stages with DVC against real MLflow stores:
the embedded SQLite default, a local ``mlflow server`` over HTTP, and two queued
experiments logging at once.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT, copy_project, project_environment, write_params
from test_pr_report import dvc, ok, run, script

from aezoo import tracking
from aezoo.ci import SMOKE_OVERRIDES
from aezoo.config import parse_params

VARIANTS = ("dense16", "vae2d")  # a plain model and one with a custom layer
STAGES = [f"{stage}@{name}" for name in VARIANTS for stage in ("train", "evaluate", "render")]
ONE_VARIANT = STAGES[:3]  # dense16's stages: the experiments below stay fast


# ------------------------------------------------------------------ no pipeline runs


def test_a_dvc_temporary_copy_logs_to_the_original_repository(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / ".dvc").mkdir(parents=True)
    (repo / "pipeline").mkdir()
    copy = repo / ".dvc" / "tmp" / "exps" / "tmpab12cd" / "pipeline"
    copy.mkdir(parents=True)
    (copy.parent / ".dvc").mkdir()  # the copy is a DVC repository too
    assert tracking.repository_root(copy) == repo
    assert tracking.repository_root(copy.parent) == repo
    assert tracking.repository_root(repo / "pipeline") == repo

    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    store = tracking.resolve_store(tracking.repository_root(copy))
    assert store.uri == f"sqlite:///{repo}/mlflow.db"
    assert store.artifact_location == (repo / "mlartifacts").as_uri()
    assert store.lock_path == repo / "mlflow.db.lock"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///shared/runs.db")  # relative: to repo
    assert tracking.resolve_store(repo).uri == f"sqlite:///{repo}/shared/runs.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    remote = tracking.resolve_store(repo)
    assert remote.is_remote and remote.lock_path is None and remote.artifact_location is None


def test_params_are_the_flattened_config_data_and_checksums(raw_params, prepared_small):
    params = parse_params(raw_params)
    values, tags = tracking.describe(params, "stacked256", prepared_small)
    assert values["variant.optimizer.learning_rate"] == 1e-3
    assert values["variant.optimizer.name"] == "adam"
    assert values["variant.decoder_units"] == [256, 512]
    assert values["variant.reference.mse"] == 0.0046
    assert values["training.seed"] == 42 and values["epochs"] == 20
    assert values["data.input"] == "clean" and values["data.train_subset"] is None
    clean = (prepared_small / "clean.npz").read_bytes()
    assert values["data.clean_sha256"] == hashlib.sha256(clean).hexdigest()
    assert tags["variant"] == "stacked256" and tags["family"] == "dense"
    assert tags["git_dirty"] in ("true", "false") and tags["git_commit"]

    flat = tracking.flatten({"reconstruction": {"mse": 0.02, "ssim": None}, "note": "x"}, "test")
    assert flat == {"test.reconstruction.mse": 0.02, "test.reconstruction.ssim": None,
                    "test.note": "x"}  # fmt: skip
    mixed = {"a": 1, "b": float("nan"), "c": None, "d": True, "e": "s", "f": 2.5}
    assert tracking.numeric(mixed) == {"a": 1.0, "f": 2.5}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("server", ["closed port", "silent listener"])
def test_an_unreachable_server_fails_the_train_stage_fast_naming_the_uri(
    server, tmp_path, raw_params, prepared_small
):
    raw_params["tracking"].update(enabled=True, timeout_s=3)
    params = write_params(tmp_path / "params.yaml", raw_params)
    silent = socket.socket()  # accepts connections (the backlog) but never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    port = silent.getsockname()[1] if server == "silent listener" else closed_port()
    uri = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        result = subprocess.run(
            [
                sys.executable,
                "pipeline/train.py",
                "dense16",
                "--params",
                str(params),
                "--data",
                str(prepared_small),
                "--models",
                str(tmp_path / "models"),
                "--reports",
                str(tmp_path / "reports"),
            ],
            cwd=ROOT,
            env={**os.environ, "MLFLOW_TRACKING_URI": uri},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        silent.close()
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"error: MLflow tracking server {uri} is unreachable" in result.stderr
    assert "Traceback" not in result.stderr and "epoch" not in result.stdout
    assert not (tmp_path / "models").exists()
    assert elapsed < 30, f"took {elapsed:.0f}s"


def hold_the_lock(lock: Path, log: Path) -> None:
    with tracking.file_lock(lock):
        with open(log, "a") as handle:
            handle.write(f"in {time.monotonic()}\n")
        time.sleep(0.5)
        with open(log, "a") as handle:
            handle.write(f"out {time.monotonic()}\n")


def test_the_store_lock_serialises_processes(tmp_path):
    lock, log = tmp_path / "mlflow.db.lock", tmp_path / "log.txt"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=hold_the_lock, args=(lock, log)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    events = [line.split() for line in log.read_text().splitlines()]
    assert [kind for kind, _ in events] == ["in", "out"] * 3  # never two inside at once
    times = [float(stamp) for _, stamp in events]
    assert times == sorted(times) and times[-1] - times[0] >= 1.5


# --------------------------------------------------------------- a throwaway project


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tracked")


@pytest.fixture(scope="module")
def env(mnist_mirror, workdir) -> dict[str, str]:
    return project_environment(mnist_mirror, workdir)


@pytest.fixture(scope="module")
def repo(workdir, env) -> Path:
    """The project with two variants and the smoke profile, committed, run by ``dvc repro``."""
    repo = copy_project(workdir)
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["variants"] = {name: raw["variants"][name] for name in VARIANTS}
    raw["corruptions"] = {"gauss05": raw["corruptions"]["gauss05"]}
    for dotted, value in SMOKE_OVERRIDES.items():
        section, key = dotted.split(".")
        raw[section][key] = value
    raw["render"]["manifold_side"] = 6
    raw["tracking"]["enabled"] = True  # the smoke profile switches it off
    write_params(repo / "params.yaml", raw)
    ok(["git", "init", "-q", "-b", "main"], repo, env)
    ok(["git", "add", "-A"], repo, env)
    ok(["git", "commit", "-q", "-m", "tracked"], repo, env)
    started = time.monotonic()
    ok(dvc("repro", *STAGES), repo, env)
    print(f"dvc repro of {len(STAGES)} stages: {time.monotonic() - started:.0f}s")
    return repo


def client_of(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(uri, uri)


def runs_of(client, name: str) -> list:
    experiment = client.get_experiment_by_name("aezoo")
    return client.search_runs([experiment.experiment_id], f"tags.variant = '{name}'")


@pytest.mark.integration
def test_dvc_repro_logs_one_complete_run_per_variant_to_the_default_store(repo, env):
    assert (repo / "mlflow.db").is_file() and (repo / "mlartifacts").is_dir()
    client = client_of(f"sqlite:///{repo}/mlflow.db")
    assert tracking.verify_runs(client, "aezoo", VARIANTS) == []
    for name in VARIANTS:
        record = yaml.safe_load((repo / "models" / name / "mlflow_run.json").read_text())
        [only] = runs_of(client, name)
        assert only.info.run_id == record["run_id"] and only.info.run_name == name
        assert only.data.params["variant.family"] in ("dense", "vae")
        assert only.data.tags["git_commit"] == ok(["git", "rev-parse", "HEAD"], repo, env).strip()
    ignored = ok(["git", "status", "--porcelain", "--ignored"], repo, env)
    assert "!! mlflow.db\n" in ignored and "!! mlartifacts/\n" in ignored
    assert "tracking ok: 2 complete runs" in ok(script("check_tracking.py"), repo, env)


@pytest.mark.integration
def test_rerunning_only_evaluate_updates_the_same_run(repo, env):
    client = client_of(f"sqlite:///{repo}/mlflow.db")
    [before] = runs_of(client, "dense16")
    ok(dvc("repro", "--force", "--single-item", "evaluate@dense16"), repo, env)
    (repo / "models" / "vae2d" / "mlflow_run.json").unlink()  # a model trained before tracking
    try:
        output = ok(dvc("repro", "--force", "--single-item", "evaluate@vae2d"), repo, env)
    finally:
        ok(dvc("checkout", "--force", "train@vae2d"), repo, env)
    assert "mlflow_run.json is missing" in output and "found by its model" in output
    [after] = runs_of(client, "dense16")
    assert after.info.run_id == before.info.run_id
    assert len(client.get_metric_history(after.info.run_id, "test.reconstruction.mse")) == 2
    assert len(runs_of(client, "vae2d")) == 1
    assert tracking.verify_runs(client, "aezoo", VARIANTS) == []


@pytest.mark.integration
def test_a_registered_model_reproduces_the_saved_reconstructions_in_a_fresh_process(
    repo, env, tmp_path
):
    import keras

    import aezoo.models  # noqa: F401 - the saved VAE's custom layer

    with np.load(repo / "data" / "prepared" / "clean.npz") as archive:
        images = archive["x_test"][:200].astype(np.float32)[..., None] / 255
    np.save(tmp_path / "images.npy", images)
    child = (
        "import sys, numpy as np, mlflow\n"  # no aezoo, no Keras model class: only MLflow
        f"mlflow.set_tracking_uri('sqlite:///{repo}/mlflow.db')\n"
        f"x = np.load({str(tmp_path / 'images.npy')!r})\n"
        "for name in sys.argv[1:]:\n"
        "    model = mlflow.pyfunc.load_model(f'models:/aezoo-{name}/latest')\n"
        f"    np.save(f'{tmp_path}/{{name}}.npy', np.asarray(model.predict(x)))\n"
    )
    bare = {key: value for key, value in env.items() if key != "PYTHONPATH"}
    result = run([sys.executable, "-c", child, *VARIANTS], tmp_path, bare)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in VARIANTS:
        saved = keras.saving.load_model(repo / "models" / name / "autoencoder.keras")
        expected = saved.predict(images, verbose=0)
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), expected, atol=1e-5)


@pytest.fixture
def mlflow_server(tmp_path):
    """A real ``mlflow server`` on 127.0.0.1 with a SQLite backend; always stopped."""
    port = closed_port()  # free now; the server takes it
    uri = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{tmp_path}/server.db",
        "--artifacts-destination", str(tmp_path / "artifacts"),
    ]  # fmt: skip
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "server.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        yield uri
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.mark.integration
def test_an_experiment_logs_complete_runs_to_a_tracking_server_over_http(repo, env, mlflow_server):
    started = time.monotonic()
    ok(
        dvc("exp", "run", "--temp", "--name", "http", "-S", "training.seed=7", *ONE_VARIANT),
        repo,
        {**env, "MLFLOW_TRACKING_URI": mlflow_server},
    )
    print(f"dvc exp run --temp against {mlflow_server}: {time.monotonic() - started:.0f}s")
    client = client_of(mlflow_server)
    assert tracking.verify_runs(client, "aezoo", ["dense16"], dvc_experiment="http") == []
    assert len(runs_of(client, "dense16")) == 1


@pytest.mark.integration
def test_two_queued_experiments_at_once_both_land_complete_in_the_sqlite_store(repo, env):
    names = {"queued-a": 11, "queued-b": 12}
    for name, seed in names.items():
        command = ["exp", "run", "--queue", "--name", name, "-S", f"training.seed={seed}"]
        ok(dvc(*command, *ONE_VARIANT), repo, env)
    started = time.monotonic()
    ok(dvc("queue", "start", "--jobs", "2"), repo, env)
    while time.monotonic() - started < 900:
        status = ok(dvc("queue", "status"), repo, env)
        if not any(state in status for state in ("Queued", "Running")):
            break
        time.sleep(5)
    print(f"two queued experiments, 2 workers: {time.monotonic() - started:.0f}s\n{status}")
    logs = "".join(run(dvc("queue", "logs", name), repo, env).stdout for name in names)
    assert status.count("Success") == 2, status + logs[-4000:]
    assert "database is locked" not in logs
    client = client_of(f"sqlite:///{repo}/mlflow.db")
    for name in names:
        assert tracking.verify_runs(client, "aezoo", ["dense16"], dvc_experiment=name) == []
