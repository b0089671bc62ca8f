"""Experiment tracking with MLflow: every variant a comparable run, linked to its DVC run.

One MLflow experiment (``tracking.experiment``); one run per variant per pipeline
execution, named after the variant. The train stage creates the run (config, data
checksums, per-epoch losses, the model in the Keras flavour, registered as
``aezoo-<variant>``) and writes its id to ``models/<variant>/mlflow_run.json``; evaluate and
render reopen that run and add the test metrics and the figures.

Where runs go: ``MLFLOW_TRACKING_URI`` when set (a team server), else the embedded store
``sqlite:///<repository>/mlflow.db`` with artifacts in ``<repository>/mlartifacts``. Stages
that DVC runs in a temporary copy (``dvc exp run --temp`` or ``--queue``, under
``<repository>/.dvc/tmp/exps/``) log to the original repository's store. Writes to a SQLite
store are serialised across processes by a file lock, so parallel experiments lose nothing.

This module is the only one that imports MLflow.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.models import Model

from aezoo.config import Params, TrackingConfig
from aezoo.errors import TrackingError
from aezoo.io import read_json, write_json

RUN_FILE = "mlflow_run.json"  # in models/<variant>/: the run id, from train to the others
STORE_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
DVC_TEMP_DIR = (".dvc", "tmp", "exps")
MODEL_NAME = "model"  # the logged model's name within its run
EPOCH_METRICS = ("loss", "val_loss", "epoch_seconds")
FIGURES = ("reconstructions.png", "progress.gif", "loss.png", "code_map.png")
EXAMPLE_IMAGES = 4  # test images in the logged model's input example
LOCKED_RETRIES = 8  # "database is locked" from a process outside our lock: back off

T = TypeVar("T")

# ------------------------------------------------------------------------- the store


def repository_root(start: Path | None = None) -> Path:
    """The repository whose store the runs belong to.

    Inside a DVC temporary experiment directory (``<repo>/.dvc/tmp/exps/<tmp>/...``) that is
    ``<repo>``, not the copy; elsewhere the nearest directory holding ``.dvc`` or ``.git``,
    else ``start`` (the working directory) itself.
    """
    start = (start or Path.cwd()).absolute()
    parts = start.parts
    for index in range(len(parts) - len(DVC_TEMP_DIR) + 1):
        if parts[index : index + len(DVC_TEMP_DIR)] == DVC_TEMP_DIR:
            return Path(*parts[:index])
    for candidate in (start, *start.parents):
        if (candidate / ".dvc").is_dir() or (candidate / ".git").exists():
            return candidate
    return start


@dataclass(frozen=True)
class Store:
    """A tracking URI, where new experiments keep artifacts, and the lock of a SQLite file."""

    uri: str
    artifact_location: str | None  # None: the server decides
    lock_path: Path | None  # None: not a local SQLite file

    @property
    def is_remote(self) -> bool:
        return self.uri.startswith(("http://", "https://"))


def resolve_store(root: Path | None = None) -> Store:
    """``MLFLOW_TRACKING_URI``, else the embedded SQLite store at the repository root.

    A SQLite file keeps its artifacts beside it (``mlartifacts/``); a relative SQLite path
    is taken from the repository root, so a temporary DVC copy logs to the real one.
    """
    root = root or repository_root()
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / STORE_FILE}"
    if not uri.startswith("sqlite:///"):
        return Store(uri=uri, artifact_location=None, lock_path=None)
    database = Path(uri.removeprefix("sqlite:///"))
    database = database if database.is_absolute() else root / database
    return Store(
        uri=f"sqlite:///{database}",
        artifact_location=(database.parent / ARTIFACTS_DIR).as_uri(),
        lock_path=database.with_name(database.name + ".lock"),
    )


def check_reachable(uri: str, timeout_s: float) -> None:
    """Fail within ``timeout_s`` with a TrackingError naming ``uri`` if its server is down."""
    health = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(health, timeout=timeout_s) as response:
            response.read(64)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise TrackingError(
            f"MLflow tracking server {uri} is unreachable ({reason}): start it, point "
            "MLFLOW_TRACKING_URI at a running one, or unset it to use the local store "
            "(tracking.enabled: false in params.yaml switches tracking off)"
        ) from None


@contextmanager
def file_lock(path: Path | None) -> Iterator[None]:
    """An exclusive inter-process lock on ``path`` (``flock``); no-op for None."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ----------------------------------------------------------------------- small helpers


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def numeric(flat: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of a flat mapping (nulls, strings and booleans are left out)."""
    return {
        key: float(value)
        for key, value in flat.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(["git", *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def describe(params: Params, name: str, data_dir: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """A variant's run params (config, training, data, checksums) and tags (git, DVC)."""
    spec = params.variant(name)
    values = {
        **flatten(spec.model_dump(mode="json"), "variant"),
        **flatten(params.training.model_dump(mode="json"), "training"),
        "epochs": min(spec.epochs, params.training.max_epochs or spec.epochs),
        "data.input": spec.input,
        **flatten(params.data.model_dump(mode="json", exclude={"mirror", "sources"}), "data"),
        "data.clean_sha256": file_sha256(data_dir / "clean.npz"),
    }
    if spec.denoising:
        values |= flatten(params.corruption(spec.input).model_dump(mode="json"), "data.corruption")
        values["data.input_sha256"] = file_sha256(data_dir / f"{spec.input}.npz")
    commit = _git("rev-parse", "HEAD")
    tags = {
        "variant": name,
        "family": spec.family,
        "git_commit": commit or "unknown",
        "git_dirty": str(bool(_git("status", "--porcelain", "--untracked-files=no"))).lower(),
    }
    if commit:
        tags["mlflow.source.git.commit"] = commit
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    return values, tags


def input_example(params: Params, name: str, data_dir: Path) -> np.ndarray:
    """A few test images as the model sees them: float32 ``(n, 28, 28, 1)`` in [0, 1]."""
    from aezoo.data import load_prepared, to_unit_float

    spec = params.variant(name)
    source = "clean" if spec.input == "clean" else spec.input
    images = load_prepared(data_dir / f"{source}.npz")["test"].x[:EXAMPLE_IMAGES]
    return to_unit_float(images)[..., None].astype(np.float32)


# ------------------------------------------------------------------------ the tracker


class Tracker:
    """An open store and the project's experiment; every write holds the store's lock."""

    def __init__(self, config: TrackingConfig, store: Store):
        self.config, self.store = config, store
        if store.is_remote:
            check_reachable(store.uri, config.timeout_s)
            # No call may hang: MLflow's own HTTP client gives up as fast as our check.
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(math.ceil(config.timeout_s)))
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        mlflow.set_tracking_uri(store.uri)
        mlflow.set_registry_uri(store.uri)
        self.client = MlflowClient(store.uri, store.uri)
        self.experiment_id = self.write(self._experiment)
        mlflow.set_experiment(experiment_id=self.experiment_id)  # where models are logged

    def write(self, action: Callable[[], T]) -> T:
        """Run ``action`` under the store's lock; retry "database is locked" with backoff."""
        for attempt in range(LOCKED_RETRIES):
            try:
                with file_lock(self.store.lock_path):
                    return action()
            except MlflowException as error:
                if "database is locked" not in str(error) or attempt == LOCKED_RETRIES - 1:
                    raise
                time.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    def _experiment(self) -> str:
        """The experiment's id, created on first use (this also creates and migrates a store)."""
        self.client.search_registered_models(max_results=1)  # the registry's tables too
        found = self.client.get_experiment_by_name(self.config.experiment)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(
                self.config.experiment, artifact_location=self.store.artifact_location
            )
        except MlflowException:  # created meanwhile by another worker against a server
            found = self.client.get_experiment_by_name(self.config.experiment)
            if found is None:
                raise
            return found.experiment_id

    def start(self, name: str, values: Mapping[str, Any], tags: Mapping[str, str]) -> TrackedRun:
        """A new run named ``name`` with ``values`` as params and ``tags``."""
        run = self.write(
            lambda: self.client.create_run(self.experiment_id, run_name=name, tags=dict(tags))
        )
        tracked = TrackedRun(self, run.info.run_id, name)
        tracked.log_params(values)
        return tracked

    def run_exists(self, run_id: str) -> bool:
        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return False
        return run.info.lifecycle_stage == "active"

    def find_run(self, name: str, model_sha256: str) -> str | None:
        """The newest run of variant ``name`` whose model has this checksum, if any."""
        runs = self.client.search_runs(
            [self.experiment_id],
            f"tags.variant = '{name}' and tags.model_sha256 = '{model_sha256}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return runs[0].info.run_id if runs else None


class TrackedRun:
    """One variant's run: what the stages log into it."""

    def __init__(self, tracker: Tracker, run_id: str, name: str):
        self.tracker, self.run_id, self.name = tracker, run_id, name

    def log_params(self, values: Mapping[str, Any]) -> None:
        params = [Param(key, str(value)) for key, value in values.items()]
        self.tracker.write(lambda: self.tracker.client.log_batch(self.run_id, params=params))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        entries = [RunTag(key, str(value)) for key, value in tags.items()]
        self.tracker.write(lambda: self.tracker.client.log_batch(self.run_id, tags=entries))

    def log_metrics(self, values: Mapping[str, float], step: int = 0) -> None:
        stamp = int(time.time() * 1000)
        metrics = [Metric(key, float(value), stamp, step) for key, value in values.items()]
        self.tracker.write(lambda: self.tracker.client.log_batch(self.run_id, metrics=metrics))

    def log_artifacts(self, directory: Path, artifact_path: str) -> None:
        self.tracker.write(
            lambda: self.tracker.client.log_artifacts(self.run_id, str(directory), artifact_path)
        )

    def epoch_callbacks(self) -> list:
        """A Keras callback that logs loss, val_loss and epoch_seconds at step = epoch."""
        import keras

        run = self

        class LogEpochs(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.started = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                seconds = time.perf_counter() - self.started
                values = {key: logs[key] for key in EPOCH_METRICS[:2] if key in logs}
                run.log_metrics(numeric({**values, "epoch_seconds": seconds}), step=epoch + 1)

        return [LogEpochs()]

    def log_model(self, model: Any, example: np.ndarray, model_path: Path) -> None:
        """Log ``model`` (Keras flavour, signature and input example) and register it.

        The model is stored as an exported TensorFlow graph: ``mlflow.pyfunc.load_model``
        then serves it without aezoo (the VAE's custom layer is traced, not imported).
        """
        import keras
        import tensorflow as tf
        from mlflow.models import infer_signature

        signature = infer_signature(example, np.asarray(model.predict(example, verbose=0)))
        registered = f"aezoo-{self.name}" if self.tracker.config.register_models else None

        def log() -> None:
            Model.log(
                artifact_path=None,
                name=MODEL_NAME,
                flavor=KerasFlavor,
                flavor_name="mlflow.keras",
                run_id=self.run_id,
                model=model,
                save_exported_model=True,  # serving needs neither aezoo nor its layers
                signature=signature,
                input_example=example,
                registered_model_name=registered,
                pip_requirements=[f"keras=={keras.__version__}", f"tensorflow=={tf.__version__}"],
            )

        self.tracker.write(log)
        self.set_tags({"model_sha256": file_sha256(model_path)})

    def log_test_metrics(self, metrics: Mapping[str, Any]) -> None:
        """The evaluate stage's metrics (as ``metrics.json`` holds them) as ``test.<key>``."""
        self.log_metrics(numeric(flatten(metrics, "test")))

    def log_trained_model(
        self, params: Params, model: Any, data_dir: Path, model_dir: Path
    ) -> None:
        """The train stage's model logging: the autoencoder, then the run record."""
        model_path = model_dir / "autoencoder.keras"
        self.log_model(model, input_example(params, self.name, data_dir), model_path)
        self.save_record(model_dir)

    def end(self, status: str) -> None:
        self.tracker.write(lambda: self.tracker.client.set_terminated(self.run_id, status))

    def save_record(self, model_dir: Path) -> None:
        """Write the run id for the evaluate and render stages (a train-stage output)."""
        write_json(
            model_dir / RUN_FILE,
            {
                "run_id": self.run_id,
                "experiment_id": self.tracker.experiment_id,
                "tracking_uri": self.tracker.store.uri,
            },
        )


class KerasFlavor:
    """``mlflow.keras`` for ``Model.log``, but creating the model directory first.

    MLflow 3.17's ``mlflow.keras.log_model`` fails with an input example: its
    ``save_model`` writes ``input_example.json`` before it creates the directory.
    """

    @staticmethod
    def save_model(path: str, **kwargs: Any) -> None:
        import mlflow.keras  # imports Keras and TensorFlow: only where a model is logged

        os.makedirs(path, exist_ok=True)
        mlflow.keras.save_model(path=path, **kwargs)


# ------------------------------------------------------------- what the stages call


def connect(config: TrackingConfig) -> Tracker:
    """The tracker of the resolved store; checks a tracking server first."""
    return Tracker(config, resolve_store())


@contextmanager
def training_run(params: Params, name: str, data_dir: Path) -> Iterator[TrackedRun]:
    """A new run for training ``name``; it ends FINISHED, or FAILED if the block raises.

    Connects (and checks a tracking server) before the block, so no training starts
    against a store that is down.
    """
    tracker = connect(params.tracking)
    values, tags = describe(params, name, data_dir)
    run = tracker.start(name, values, tags)
    print(f"tracking: run {run.run_id} ({name}) in {tracker.store.uri}", flush=True)
    try:
        yield run
    except BaseException:
        run.end(RunStatus.to_string(RunStatus.FAILED))
        raise
    run.end(RunStatus.to_string(RunStatus.FINISHED))


def variant_run(
    params: Params, name: str, data_dir: Path, model_dir: Path, report_dir: Path
) -> TrackedRun:
    """The run the train stage created for ``name``, to log more into.

    It is read from ``model_dir/mlflow_run.json``. When that file is missing (a model
    trained before tracking) or names a run this store does not have, the run is found by
    the variant and its model's checksum, or created from the train stage's outputs (config,
    ``history.csv``, the model), so that repeating a stage never adds a stray run.
    """
    tracker = connect(params.tracking)
    record = model_dir / RUN_FILE
    if record.is_file():
        run_id = read_json(record)["run_id"]
        if tracker.run_exists(run_id):
            return TrackedRun(tracker, run_id, name)
        reason = f"run {run_id} of {record} is not in {tracker.store.uri}"
    else:
        reason = f"{record} is missing (a model trained without tracking)"
    model_path = model_dir / "autoencoder.keras"
    if not model_path.is_file():
        raise TrackingError(f"{model_path}: no such file (run the train stage first)")
    model_sha256 = file_sha256(model_path)
    if run_id := tracker.find_run(name, model_sha256):
        print(f"tracking: {reason}; logging into run {run_id}, found by its model", flush=True)
        return TrackedRun(tracker, run_id, name)
    run = backfill_run(tracker, params, name, data_dir, model_dir, report_dir)
    print(f"tracking: {reason}; created run {run.run_id} from the train outputs", flush=True)
    return run


def backfill_run(
    tracker: Tracker, params: Params, name: str, data_dir: Path, model_dir: Path, report_dir: Path
) -> TrackedRun:
    """A run holding what the train stage would have logged, read from its outputs."""
    import keras

    import aezoo.models  # noqa: F401 - registers the custom layer and loss

    values, tags = describe(params, name, data_dir)
    run = tracker.start(name, values, tags)
    history = report_dir / "history.csv"
    if history.is_file():
        for row in read_history_rows(history):
            run.log_metrics({key: row[key] for key in EPOCH_METRICS}, step=int(row["epoch"]))
    model_path = model_dir / "autoencoder.keras"
    model = keras.saving.load_model(model_path, safe_mode=True)
    run.log_model(model, input_example(params, name, data_dir), model_path)
    run.end(RunStatus.to_string(RunStatus.FINISHED))
    return run


def read_history_rows(path: Path) -> list[dict[str, float]]:
    import csv

    with open(path) as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


# ------------------------------------------------------------------------ verification


def verify_runs(
    client: MlflowClient,
    experiment: str,
    variants: Iterable[str],
    dvc_experiment: str | None = None,
    registered: bool = True,
) -> list[str]:
    """Problems with the tracked runs of ``variants``; an empty list means complete.

    Per variant: one run (one per DVC experiment when ``dvc_experiment`` is given, else
    no two runs of the same trained model), finished, with its params, a per-epoch
    history of ``epochs`` steps, test metrics, the figures, a logged model and, when
    ``registered``, a registered version ``aezoo-<variant>``.
    """
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return [f"no MLflow experiment named {experiment!r} in {client.tracking_uri}"]
    problems = []
    for name in variants:
        query = f"tags.variant = '{name}'"
        if dvc_experiment:
            query += f" and tags.dvc_exp_name = '{dvc_experiment}'"
        runs = client.search_runs(
            [found.experiment_id], query, order_by=["attributes.start_time DESC"]
        )
        if not runs:
            problems.append(f"{name}: no run ({query})")
            continue
        if dvc_experiment and len(runs) > 1:
            problems.append(f"{name}: {len(runs)} runs for DVC experiment {dvc_experiment}")
        models = [run.data.tags.get("model_sha256") for run in runs]
        if models[0] is not None and models.count(models[0]) > 1:
            problems.append(f"{name}: {models.count(models[0])} runs of the same trained model")
        latest = runs[0]
        problems += [
            f"{name} (run {latest.info.run_id}): {problem}"
            for problem in _run_problems(client, latest, name, registered)
        ]
    return problems


def _run_problems(client: MlflowClient, run: Run, name: str, registered: bool) -> list[str]:
    run_id, data = run.info.run_id, run.data
    problems = []
    if run.info.status != "FINISHED":
        problems.append(f"status {run.info.status}")
    if run.info.run_name != name:
        problems.append(f"named {run.info.run_name!r}")
    wanted_params = ("variant.family", "variant.epochs", "training.seed", "epochs", "data.input")
    wanted_params += ("data.clean_sha256",)
    problems += [f"no param {key}" for key in wanted_params if key not in data.params]
    wanted_tags = ("variant", "family", "git_commit", "git_dirty", "model_sha256")
    problems += [f"no tag {key}" for key in wanted_tags if key not in data.tags]
    epochs = int(data.params.get("epochs", -1))
    for key in EPOCH_METRICS:
        steps = len(client.get_metric_history(run_id, key))
        if steps != epochs:
            problems.append(f"metric {key} has {steps} steps, expected {epochs}")
    tests = [key for key in data.metrics if key.startswith("test.")]
    if "test.reconstruction.mse" not in tests:
        problems.append(f"no test metrics (test.reconstruction.mse; found {len(tests)} test.*)")
    figures = {Path(item.path).name for item in client.list_artifacts(run_id, "figures")}
    problems += [f"no artifact figures/{figure}" for figure in FIGURES if figure not in figures]
    logged = client.search_logged_models(
        [run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
    )
    if not logged:
        problems.append("no logged model")
    if registered:
        versions = client.search_model_versions(f"name = 'aezoo-{name}' and run_id = '{run_id}'")
        if not versions:
            problems.append(f"no registered version of aezoo-{name}")
    return problems


def check(params: Params, variants: Iterable[str], dvc_experiment: str | None = None) -> None:
    """Verify the store's runs of ``variants``; raise TrackingError listing the problems."""
    store = resolve_store()
    if store.is_remote:
        check_reachable(store.uri, params.tracking.timeout_s)
    client = MlflowClient(store.uri, store.uri)
    variants = list(variants)
    problems = verify_runs(
        client,
        params.tracking.experiment,
        variants,
        dvc_experiment,
        params.tracking.register_models,
    )
    if problems:
        listed = "\n".join(f"  {problem}" for problem in problems)
        raise TrackingError(f"the runs in {store.uri} are incomplete:\n{listed}")
    print(f"tracking ok: {len(variants)} complete runs in {store.uri}")
