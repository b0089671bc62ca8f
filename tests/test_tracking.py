"""MLflow tracking: the track stage mirrors each variant's outputs into one complete run.

The tests run the real track stage on conftest's small zoo (trained, evaluated and rendered
on a small subset) against throwaway SQLite stores: what a run holds, that the same outputs
are logged once, that a subset run never becomes the registered @champion, that two track
processes at once both land, and that the logged model serves the same reconstructions.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, write_params

from aezoo import tracking
from aezoo.config import Params, parse_params
from aezoo.data import load_prepared, to_unit_float
from aezoo.errors import TrackingError
from aezoo.figures import figures_for
from aezoo.io import read_history, read_json
from aezoo.stages.loading import load_models
from aezoo.stages.track import track
from tools import check_tracking

EXPERIMENT = "aezoo"


def tracked_params(params: Params, **tracking_settings) -> Params:
    """The small zoo's params with tracking switched on (conftest switches it off)."""
    raw = params.model_dump(mode="json")
    raw["tracking"].update(enabled=True, **tracking_settings)
    return parse_params(raw)


def track_variant(params: Params, name: str, work: Path) -> None:
    track(params, name, work / "data", work / "models" / name, work / "reports" / name)


def client_of(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(uri, uri)


def runs_of(client, name: str | None = None) -> list:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    query = f"tags.variant = '{name}'" if name else ""
    return client.search_runs([experiment.experiment_id], query)


@pytest.fixture
def fresh_store(tmp_path, monkeypatch) -> str:
    """An empty SQLite store of this test's own, as MLFLOW_TRACKING_URI."""
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


# ------------------------------------------------------------------ no MLflow runs


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
    assert store.uri == f"sqlite:///{repo}/mlflow.db" and not store.is_remote
    assert store.artifact_location == (repo / "mlartifacts").as_uri()

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///shared/runs.db")  # relative: to repo
    assert tracking.resolve_store(repo).uri == f"sqlite:///{repo}/shared/runs.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    remote = tracking.resolve_store(repo)
    assert remote.is_remote and remote.artifact_location is None


def test_flatten_and_numeric():
    flat = tracking.flatten({"reconstruction": {"mse": 0.02, "ssim": None}, "note": "x"}, "test")
    assert flat == {"test.reconstruction.mse": 0.02, "test.reconstruction.ssim": None,
                    "test.note": "x"}  # fmt: skip
    assert tracking.flatten({"a": {}, "b": [1, 2]}) == {"a": {}, "b": [1, 2]}
    mixed = {"a": 1, "b": float("nan"), "c": None, "d": True, "e": "s", "f": 2.5}
    assert tracking.numeric(mixed) == {"a": 1.0, "f": 2.5}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def track_command(name: str, params_file: Path, work: Path) -> list[str]:
    """``python pipeline/track.py`` on a small-zoo variant."""
    return [
        sys.executable, str(ROOT / "pipeline" / "track.py"), name, "--params", str(params_file),
        "--data", str(work / "data"), "--models", str(work / "models"),
        "--reports", str(work / "reports"),
    ]  # fmt: skip


@pytest.mark.integration
@pytest.mark.parametrize("server", ["closed port", "silent listener"])
def test_an_unreachable_server_fails_the_track_stage_fast_naming_the_uri(
    server, tmp_path, rendered_zoo
):
    params, work = rendered_zoo
    config = write_params(
        tmp_path / "params.yaml", tracked_params(params, timeout_s=3).model_dump(mode="json")
    )
    silent = socket.socket()  # accepts connections (the backlog) but never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    port = silent.getsockname()[1] if server == "silent listener" else closed_port()
    uri = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        result = subprocess.run(
            track_command("dense16", config, work),
            cwd=tmp_path,
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
    assert "Traceback" not in result.stderr
    assert elapsed < 45, f"took {elapsed:.0f}s"


@pytest.mark.integration
def test_with_tracking_off_nothing_is_logged_and_mlflow_is_not_imported(tmp_path, small_zoo):
    params, work = small_zoo
    assert not params.tracking.enabled
    config = write_params(tmp_path / "params.yaml", params.model_dump(mode="json"))
    store = tmp_path / "store" / "mlflow.db"
    code = (
        "import sys; from pathlib import Path; from aezoo.config import load_params; "
        "from aezoo.stages.track import track; "
        f"work = Path({str(work)!r}); "
        f"track(load_params(Path({str(config)!r})), 'dense16', work / 'data', "
        "work / 'models' / 'dense16', work / 'reports' / 'dense16'); "
        "print('heavy:', sorted({'mlflow', 'tensorflow', 'keras'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tracking is off (tracking.enabled: false): dense16 is not logged" in result.stdout
    assert "heavy: []" in result.stdout
    assert not store.parent.exists() and sorted(tmp_path.iterdir()) == [config]


# ------------------------------------------------------------ the small zoo, tracked


@pytest.fixture(scope="module")
def tracked(rendered_zoo, tmp_path_factory):
    """Every small-zoo variant tracked into a store of this module's own; returns
    ``(params, work, uri)``."""
    params, work = rendered_zoo
    params = tracked_params(params)
    uri = f"sqlite:///{tmp_path_factory.mktemp('tracked') / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        for name in params.variants:
            started = time.monotonic()
            track_variant(params, name, work)
            print(f"track {name}: {time.monotonic() - started:.1f}s")
        yield params, work, uri
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.mark.integration
def test_one_finished_run_per_variant_named_after_it_with_mlflows_own_tags(tracked):
    params, _, uri = tracked
    client = client_of(uri)
    runs = runs_of(client)
    assert sorted(run.info.run_name for run in runs) == sorted(params.variants)
    for run in runs:
        name = run.info.run_name
        spec = params.variant(name)
        assert run.info.status == "FINISHED"
        tags = run.data.tags
        assert tags["variant"] == name
        assert tags["mlflow.source.name"] and tags["mlflow.user"]
        assert (tags["architecture"], tags["objective"]) == (spec.architecture, spec.objective)
        assert tags["input"] == spec.input and tags["full_run"] == "false"  # a subset run
        assert len(tags[tracking.MIRROR_TAG]) == 64


@pytest.mark.integration
def test_constants_are_params_and_the_only_curves_are_the_epoch_metrics(tracked):
    params, work, uri = tracked
    client = client_of(uri)
    for run in runs_of(client):
        name = run.info.run_name
        spec, report = params.variant(name), work / "reports" / name
        logged = run.data.params
        facts = read_json(report / "train.json")
        assert logged["epochs"] == str(params.epochs(name)) == str(facts["max_epochs"])
        assert logged["epochs_run"] == str(facts["epochs_run"])
        assert logged["best_epoch"] == str(facts["best_epoch"])
        assert logged["training.patience"] == str(params.training.patience)
        assert logged["code_size"] == str(spec.code_size)
        assert logged["parameters"] == str(facts["parameters"])
        assert logged["variant.architecture"] == spec.architecture
        assert logged["variant.objective"] == spec.objective
        assert logged["data.train_subset"] == "1024" and logged["training.seed"] == "42"
        assert logged["evaluate.test_images"] == "512"
        if spec.denoising:
            assert logged["data.corruption.std"] == "0.5"
        for constant in ("epochs", "epochs_run", "best_epoch", "code_size", "parameters"):
            assert constant not in run.data.metrics

        curves = {key for key in run.data.metrics if not key.startswith("test.")}
        assert curves == set(tracking.EPOCH_METRICS)
        history = read_history(report / "history.csv")
        expected = {
            "loss": list(history["loss"]),
            "val_loss": list(history["val_loss"]),
            "epoch_seconds": facts["epoch_seconds"],
        }
        for key, values in expected.items():
            steps = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
            assert [metric.step for metric in steps] == list(range(1, facts["epochs_run"] + 1))
            np.testing.assert_allclose([metric.value for metric in steps], values, rtol=1e-6)

        test = tracking.numeric(tracking.flatten(read_json(report / "metrics.json"), "test"))
        assert {key: value for key, value in run.data.metrics.items() if key in test} == (
            pytest.approx(test)
        )
        assert set(run.data.metrics) == set(test) | curves


@pytest.mark.integration
def test_the_figures_and_a_model_are_logged(tracked):
    params, _, uri = tracked
    client = client_of(uri)
    for run in runs_of(client):
        name = run.info.run_name
        logged = {
            Path(item.path).name for item in client.list_artifacts(run.info.run_id, "figures")
        }
        assert logged == {figure.file for figure in figures_for(params.variant(name))}, name
        models = client.search_logged_models(
            [run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
        )
        assert [model.name for model in models] == [tracking.MODEL_NAME], name


@pytest.mark.integration
def test_check_tracking_finds_every_run_complete_and_names_what_differs(tracked):
    params, _, _ = tracked
    expected = check_tracking.expected_runs(params, list(params.variants))
    assert expected["vae2d"] == (
        3,
        [figure.file for figure in figures_for(params.variant("vae2d"))],
        False,  # a subset run is never registered
    )
    tracking.check(params.tracking, expected)  # raises on any problem

    wrong = {"dense16": (expected["dense16"][0] + 1, *expected["dense16"][1:])}
    with pytest.raises(TrackingError, match=r"dense16 \(run \w+\): param epochs is 2, expected 3"):
        tracking.check(params.tracking, wrong)
    registered = {"vae": (expected["vae"][0], expected["vae"][1], True)}
    with pytest.raises(TrackingError, match=r"no registered version of aezoo-vae"):
        tracking.check(params.tracking, registered)
    with pytest.raises(TrackingError, match=r"nope: no run"):
        tracking.check(params.tracking, {"nope": (1, [], False)})


@pytest.mark.integration
def test_tracking_the_same_outputs_again_adds_no_run(tracked, capsys):
    params, work, uri = tracked
    client = client_of(uri)
    [before] = runs_of(client, "dense16")
    track_variant(params, "dense16", work)
    assert f"dense16 is already mirrored in run {before.info.run_id}" in capsys.readouterr().out
    assert [run.info.run_id for run in runs_of(client, "dense16")] == [before.info.run_id]
    assert len(runs_of(client)) == len(params.variants)


@pytest.mark.integration
@pytest.mark.parametrize("name", ["dense16", "vae2d", "conv_vae"])
def test_the_logged_model_reconstructs_as_the_keras_model(tracked, name):
    """The pyfunc model (an exported SavedModel: no aezoo layers needed) from the run."""
    import mlflow

    _, work, uri = tracked
    [run] = runs_of(client_of(uri), name)
    mlflow.set_tracking_uri(uri)
    served = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    images = to_unit_float(load_prepared(work / "data" / "clean.npz")["test"].x[:64])[..., None]
    keras_model = load_models(work / "models" / name, ("autoencoder",))["autoencoder"]
    expected = keras_model.predict(images, verbose=0)
    np.testing.assert_allclose(np.asarray(served.predict(images)), expected, atol=1e-5)


# ------------------------------------------------------------------- the registry


def champion_record(work: Path, name: str, champion: bool = True) -> tracking.VariantRecord:
    """A registered run of a real small model, standing in for a full pipeline's run (or,
    with ``champion=False``, a DVC experiment's full run)."""
    history = read_history(work / "reports" / name / "history.csv")
    example = to_unit_float(load_prepared(work / "data" / "clean.npz")["test"].x[:4])[..., None]
    return tracking.VariantRecord(
        name=name,
        params={"epochs": len(history["loss"]), "epochs_run": len(history["loss"])},
        tags={"variant": name, "full_run": "true"},
        history={
            "loss": list(history["loss"]),
            "val_loss": list(history["val_loss"]),
            "epoch_seconds": [1.0] * len(history["loss"]),
        },
        test_metrics=read_json(work / "reports" / name / "metrics.json"),
        figure_dir=work / "reports" / name / "figures",
        load_model=lambda: load_models(work / "models" / name, ("autoencoder",))["autoencoder"],
        example=example,
        register=True,
        champion=champion,
        mirror_sha256=("0" if champion else "1") * 64,
    )


def champions(names) -> dict[str, str | None]:
    """``tracking.champion_versions`` with the versions as text: the SQL store gives ints,
    a tracking server strings."""
    found = tracking.champion_versions(names)
    return {name: None if version is None else str(version) for name, version in found.items()}


@pytest.mark.integration
def test_only_a_full_run_is_registered_and_moves_the_champion(rendered_zoo, fresh_store):
    params, work = rendered_zoo
    subset = tracked_params(params)
    assert not subset.is_full_run("dense16") and subset.tracking.register_models
    tracking.log_variant(subset.tracking, champion_record(work, "dense16"))
    assert champions(["dense16", "vae"]) == {"dense16": "1", "vae": None}

    track_variant(subset, "dense16", work)
    client = client_of(fresh_store)
    runs = runs_of(client, "dense16")
    assert len(runs) == 2  # the champion's and the subset run
    subset_run = next(run for run in runs if run.data.tags["full_run"] == "false")
    assert client.search_model_versions(f"run_id = '{subset_run.info.run_id}'") == []
    assert champions(["dense16"]) == {"dense16": "1"}  # not moved
    assert len(client.search_model_versions("name = 'aezoo-dense16'")) == 1

    # The same outputs claimed as a full run (all the data, all the epochs) are registered.
    raw = subset.model_dump(mode="json")
    raw["data"].update(train_subset=None, val_subset=None, test_subset=None)
    full = parse_params(raw)
    assert full.is_full_run("dense16")
    track_variant(full, "dense16", work)
    full_run = runs_of(client, "dense16")[0]  # the newest
    assert full_run.data.tags["full_run"] == "true"
    [version] = client.search_model_versions(f"run_id = '{full_run.info.run_id}'")
    assert version.name == "aezoo-dense16" and str(version.version) == "2"
    assert champions(["dense16"]) == {"dense16": "2"}
    assert check_tracking.expected_runs(full, ["dense16"])["dense16"][2] is True

    # With register_models off, even a full run is not registered.
    raw["tracking"]["register_models"] = False
    raw["training"]["seed"] = 7  # other params: other outputs, a new run
    unregistered = parse_params(raw)
    track_variant(unregistered, "dense16", work)
    assert champions(["dense16"]) == {"dense16": "2"}
    assert len(client.search_model_versions("name = 'aezoo-dense16'")) == 2


@pytest.mark.integration
def test_check_tracking_accepts_a_registered_champion(rendered_zoo, fresh_store):
    """A full run registered as aezoo-<name>@champion is complete for check_tracking."""
    params, work = rendered_zoo
    raw = tracked_params(params).model_dump(mode="json")
    raw["data"].update(train_subset=None, val_subset=None, test_subset=None)
    full = parse_params(raw)
    track_variant(full, "dense16", work)
    assert champions(["dense16"]) == {"dense16": "1"}
    tracking.check(full.tracking, check_tracking.expected_runs(full, ["dense16"]))


@pytest.mark.integration
def test_switching_register_models_on_registers_the_mirrored_full_run(rendered_zoo, fresh_store):
    """tracking.register_models is a param of the track stage: turned on, a rerun of the
    same outputs registers the model, though they are already mirrored."""
    params, work = rendered_zoo
    raw = tracked_params(params, register_models=False).model_dump(mode="json")
    raw["data"].update(train_subset=None, val_subset=None, test_subset=None)
    track_variant(parse_params(raw), "dense16", work)
    assert champions(["dense16"]) == {"dense16": None}
    raw["tracking"]["register_models"] = True
    track_variant(parse_params(raw), "dense16", work)
    assert champions(["dense16"]) == {"dense16": "1"}


@pytest.mark.integration
def test_a_dvc_experiments_runs_are_found_by_its_name(rendered_zoo, fresh_store, monkeypatch):
    params, work = rendered_zoo
    params = tracked_params(params)
    monkeypatch.setenv("DVC_EXP_NAME", "wide-code")
    track_variant(params, "dense16", work)
    [run] = runs_of(client_of(fresh_store), "dense16")
    assert run.data.tags["dvc_exp_name"] == "wide-code"
    expected = check_tracking.expected_runs(params, ["dense16"])
    tracking.check(params.tracking, expected, dvc_experiment="wide-code")
    with pytest.raises(TrackingError, match=r"dense16: no run .*dvc_exp_name = 'other'"):
        tracking.check(params.tracking, expected, dvc_experiment="other")
    # The workspace's check looks only at the workspace pipeline's runs.
    with pytest.raises(TrackingError, match=r"dense16: no run .*no tag dvc_exp_name"):
        tracking.check(params.tracking, check_tracking.expected_runs(params, ["dense16"]))


@pytest.mark.integration
def test_an_experiments_runs_are_checked_against_their_own_epochs(
    rendered_zoo, fresh_store, monkeypatch
):
    params, work = rendered_zoo
    params = tracked_params(params)
    monkeypatch.setenv("DVC_EXP_NAME", "longer")
    track_variant(params, "dense16", work)
    raw = params.model_dump(mode="json")
    raw["variants"]["dense16"]["epochs"] += 5  # the workspace's params differ from the run's
    workspace = parse_params(raw)
    expected = check_tracking.expected_runs(workspace, ["dense16"], "longer")
    tracking.check(workspace.tracking, expected, dvc_experiment="longer")
    wrong = check_tracking.expected_runs(workspace, ["dense16"])
    with pytest.raises(TrackingError, match=r"dense16 \(run \w+\): param epochs is 2, expected 7"):
        tracking.check(workspace.tracking, wrong, dvc_experiment="longer")


@pytest.mark.integration
def test_a_run_stopped_early_by_the_patience_is_complete(rendered_zoo, fresh_store):
    """The small zoo's dense16 ran 2 epochs; tracked with 5 as its epochs, it is a run that
    model selection stopped after 2 of at most 5: its curves have the 2 epochs run."""
    params, work = rendered_zoo
    raw = tracked_params(params).model_dump(mode="json")
    raw["variants"]["dense16"]["epochs"] = 5
    longer = parse_params(raw)
    track_variant(longer, "dense16", work)
    [run] = runs_of(client_of(fresh_store), "dense16")
    facts = read_json(work / "reports" / "dense16" / "train.json")
    assert facts["epochs_run"] == 2
    assert run.data.params["epochs"] == "5" and run.data.params["epochs_run"] == "2"
    assert run.data.params["best_epoch"] == str(facts["best_epoch"])
    tracking.check(longer.tracking, check_tracking.expected_runs(longer, ["dense16"]))
    # Expected at most 1 epoch, the run's 2 epochs run are too many.
    fewer = {"dense16": (1, *check_tracking.expected_runs(longer, ["dense16"])["dense16"][1:])}
    with pytest.raises(TrackingError) as error:
        tracking.check(longer.tracking, fewer)
    assert "param epochs is 5, expected 1" in str(error.value)
    assert "param epochs_run is 2, expected 1 to 1" in str(error.value)


# ------------------------------------------------------------------ two at once


@pytest.mark.integration
def test_two_track_processes_at_once_on_a_fresh_store_both_land(rendered_zoo, tmp_path):
    params, work = rendered_zoo
    config = write_params(tmp_path / "params.yaml", tracked_params(params).model_dump(mode="json"))
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    names = ("dense16", "vae2d")
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            track_command(name, config, work),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in names
    ]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    print(f"two track processes at once: {time.monotonic() - started:.0f}s")
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-4000:]
        assert "database is locked" not in output
    client = client_of(uri)
    for name in names:
        [run] = runs_of(client, name)
        assert run.info.status == "FINISHED"
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "check_tracking.py"), *names,
         "--params", str(config)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "tracking ok: 2 complete runs" in result.stdout


@pytest.mark.integration
def test_an_experiments_full_run_is_a_version_but_not_the_champion(rendered_zoo, fresh_store):
    from mlflow import MlflowClient

    params, work = rendered_zoo
    config = tracked_params(params).tracking
    tracking.log_variant(config, champion_record(work, "dense16"))
    before = champions(["dense16"])
    tracking.log_variant(config, champion_record(work, "dense16", champion=False))
    versions = MlflowClient().search_model_versions("name = 'aezoo-dense16'")
    assert len(versions) == 2
    assert champions(["dense16"]) == before


# ------------------------------------------------------------------- serving


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(server: subprocess.Popen, url: str, timeout_s: float = 180) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"mlflow models serve ended: {server.stdout.read()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    raise AssertionError(f"no answer from {url}/ping in {timeout_s:.0f} s")


@pytest.fixture
def drawn_digits(tmp_path) -> Path:
    """Three digits drawn here: dark on light, light on dark, small."""
    from PIL import Image, ImageDraw

    folder = tmp_path / "drawn"
    folder.mkdir()
    for index, (paper, ink, size) in enumerate(
        [(250, 10, (160, 120)), (0, 255, (300, 400)), (230, 40, (50, 50))]
    ):
        image = Image.new("L", size, paper)
        width, height = size
        ImageDraw.Draw(image).line(
            [
                (width * 0.2, height * 0.2),
                (width * 0.7, height * 0.2),
                (width * 0.4, height * 0.85),
            ],
            fill=ink,
            width=max(3, width // 15),
        )
        image.save(folder / f"{index}.png")
    return folder


@pytest.mark.integration
def test_the_served_champion_answers_as_aezoo_reconstruct(
    rendered_zoo, fresh_store, drawn_digits, tmp_path
):
    """`mlflow models serve` of models:/aezoo-conv_denoise@champion (local environment,
    127.0.0.1, a free port): a batch posted to /invocations comes back equal to `aezoo
    reconstruct`'s outputs from models/conv_denoise, and to `aezoo reconstruct --model`'s."""
    import json
    import urllib.request

    from aezoo.command import run

    params, work = rendered_zoo
    tracking.log_variant(tracked_params(params).tracking, champion_record(work, "conv_denoise"))
    params_file = write_params(tmp_path / "params.yaml", params.model_dump(mode="json"))
    uri = "models:/aezoo-conv_denoise@champion"
    common = ["--params", str(params_file), "--models", str(work / "models"),
              "--outputs", str(work / "test_outputs")]  # fmt: skip
    run(["reconstruct", "conv_denoise", str(drawn_digits), *common, "--out", str(tmp_path / "a")])
    run(["reconstruct", "conv_denoise", str(drawn_digits), *common, "--model", uri,
         "--out", str(tmp_path / "b")])  # fmt: skip
    registry_report = json.loads((tmp_path / "b" / "results.json").read_text())
    assert (
        "fits models:/aezoo-conv_denoise@champion only if"
        in (registry_report["ood_threshold"]["reference"])
    )
    inputs = np.load(tmp_path / "a" / "inputs.npy")
    expected = np.load(tmp_path / "a" / "outputs.npy")
    np.testing.assert_allclose(np.load(tmp_path / "b" / "outputs.npy"), expected, atol=1e-6)

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            uri,
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={  # MLflow starts `uvicorn` from PATH: this environment's
            **os.environ,
            "MLFLOW_TRACKING_URI": fresh_store,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        },
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(server, url)
        request = urllib.request.Request(
            f"{url}/invocations",
            data=json.dumps({"inputs": inputs[..., None].tolist()}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            served = np.asarray(json.loads(answer.read())["predictions"], dtype=np.float32)
    finally:
        server.terminate()
        server.wait(timeout=30)
    np.testing.assert_allclose(served.reshape(expected.shape), expected, atol=1e-5)


@pytest.mark.integration
def test_a_registry_model_has_no_encoder_and_says_where_to_get_one(
    rendered_zoo, fresh_store, drawn_digits, tmp_path, capsys
):
    from aezoo.command import run

    params, work = rendered_zoo
    tracking.log_variant(tracked_params(params).tracking, champion_record(work, "dense16"))
    params_file = write_params(tmp_path / "params.yaml", params.model_dump(mode="json"))
    with pytest.raises(SystemExit) as stopped:
        command = ["encode", "dense16", str(drawn_digits), "--params", str(params_file)]
        run([*command, "--model", "models:/aezoo-dense16@champion", "--out", str(tmp_path / "o")])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "has no encoder" in error and "make pull" in error
    assert not (tmp_path / "o").exists()
