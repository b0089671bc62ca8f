"""MLflow mirrors what DVC produced: one run per variant, written in one go by the track stage.

The track stage (``aezoo.stages.track``) runs after render. It reads the variant's outputs
(config, per-epoch history, test metrics, figures, model) and logs them into one new run
with MLflow's fluent API, so MLflow's own source, git and user tags are set. Test figures
are metrics; constants (code size, parameter count, epochs, the seed's published figure)
are params; timings are tags. A model trained on all the data for all its epochs is
registered as ``aezoo-<variant>``; the workspace pipeline's (``dvc repro``) becomes its
``@champion``, a DVC experiment's stays a plain version; a smoke or subset run is never
registered.

Where runs go: ``MLFLOW_TRACKING_URI`` when set (a team server), else the embedded store
``sqlite:///<repository>/mlflow.db`` with artifacts in ``<repository>/mlartifacts``. A stage
that DVC runs in a temporary copy (``dvc exp run --temp`` or ``--queue``, under
``<repository>/.dvc/tmp/exps/``) logs to the original repository's store. SQLite serialises
the writes of parallel experiments itself; only a new store's creation takes a lock.

This module is the only one that imports MLflow.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import math
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Run

from aezoo.config import TrackingConfig
from aezoo.errors import TrackingError

STORE_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
DVC_TEMP_DIR = (".dvc", "tmp", "exps")
MODEL_NAME = "model"  # the logged model's name within its run
CHAMPION = "champion"  # the registry alias of the model the full pipeline produced
EPOCH_METRICS = ("loss", "val_loss", "epoch_seconds")
MIRROR_TAG = "aezoo.mirror_sha256"  # what a run mirrors: the same outputs are logged once
# Opens the experiment in `mlflow ui` on its training runs, not on the GenAI overview.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


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
    """A tracking URI, and where a new experiment keeps its artifacts (None: the server's)."""

    uri: str
    artifact_location: str | None

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
        return Store(uri=uri, artifact_location=None)
    database = Path(uri.removeprefix("sqlite:///"))
    database = database if database.is_absolute() else root / database
    return Store(
        uri=f"sqlite:///{database}", artifact_location=(database.parent / ARTIFACTS_DIR).as_uri()
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
def creation_lock(store: Store) -> Iterator[None]:
    """Hold an exclusive lock (``<db>.lock``) while a local SQLite store is first opened.

    SQLite serialises writes, but not MLflow's creation of a new store: two processes that
    open a fresh file at once both run its schema migrations and one fails (parallel queued
    experiments on a new clone). Only the opening and the experiment's creation are locked;
    runs are written without it. A server creates its own store: no lock there.
    """
    if not store.uri.startswith("sqlite:///"):
        yield
        return
    path = Path(store.uri.removeprefix("sqlite:///") + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def connect(config: TrackingConfig) -> Store:
    """Point MLflow at the resolved store (a server is checked first) and select, or create,
    the project's experiment."""
    store = resolve_store()
    if store.is_remote:
        check_reachable(store.uri, config.timeout_s)
        # No call may hang: MLflow's own HTTP client gives up as fast as our check.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(math.ceil(config.timeout_s)))
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    mlflow.set_tracking_uri(store.uri)
    mlflow.set_registry_uri(store.uri)
    with creation_lock(store):
        if mlflow.get_experiment_by_name(config.experiment) is None:
            mlflow.create_experiment(
                config.experiment, artifact_location=store.artifact_location, tags=EXPERIMENT_KIND
            )
    experiment = mlflow.set_experiment(config.experiment)
    for key, value in EXPERIMENT_KIND.items():
        if experiment.tags.get(key) != value:  # an experiment made before the tag existed
            mlflow.set_experiment_tag(key, value)
    return store


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


# ---------------------------------------------------------------------- the mirror


@dataclass
class VariantRecord:
    """Everything one variant's run holds, read from the stages' outputs."""

    name: str
    params: dict[str, Any]  # config, constants and data checksums
    tags: dict[str, str]
    history: dict[str, list[float]]  # one value an epoch for each of EPOCH_METRICS
    test_metrics: dict[str, Any]  # metrics.json as written
    figure_dir: Path
    load_model: Callable[[], Any]  # the Keras autoencoder (loaded only when it is logged)
    example: np.ndarray  # a few inputs, as the model takes them
    register: bool  # a full-data, full-epochs model: registered as a version
    champion: bool  # the workspace pipeline's model (not a DVC experiment's): @champion
    mirror_sha256: str  # digest of the outputs mirrored (the same outputs: one run)
    figures: list[str] = field(default_factory=list)


def find_mirror(record: VariantRecord, experiment: str) -> Run | None:
    """A finished run that already mirrors these exact outputs, if any."""
    runs = mlflow.search_runs(
        experiment_names=[experiment],
        filter_string=(
            f"tags.variant = '{record.name}' and tags.`{MIRROR_TAG}` = '{record.mirror_sha256}'"
            " and attributes.status = 'FINISHED'"
        ),
        max_results=1,
        output_format="list",
    )
    return runs[0] if runs else None


def log_variant(config: TrackingConfig, record: VariantRecord) -> str:
    """Mirror one variant into a new MLflow run (or find the run that already does); return
    its id. The run ends FAILED if logging fails part way."""
    import keras
    import tensorflow as tf
    from mlflow.models import infer_signature

    store = connect(config)
    if found := find_mirror(record, config.experiment):
        print(f"tracking: {record.name} is already mirrored in run {found.info.run_id}")
        return found.info.run_id
    tags = {**record.tags, MIRROR_TAG: record.mirror_sha256}
    with mlflow.start_run(run_name=record.name, tags=tags) as run:
        mlflow.log_params(record.params)
        epochs = len(record.history["loss"])
        for epoch in range(epochs):
            values = {key: record.history[key][epoch] for key in EPOCH_METRICS}
            mlflow.log_metrics(numeric(values), step=epoch + 1)
        mlflow.log_metrics(numeric(flatten(record.test_metrics, "test")))
        mlflow.log_artifacts(str(record.figure_dir), "figures")
        model = record.load_model()
        output = np.asarray(model.predict(record.example, verbose=0))
        registered = f"aezoo-{record.name}" if record.register else None
        # Keras prints the exported SavedModel's endpoints and captured tensors (~15 lines
        # of ids); MLflow records the signature, so the log keeps none of it.
        with contextlib.redirect_stdout(io.StringIO()):
            info = mlflow.keras.log_model(
                model,
                name=MODEL_NAME,
                save_exported_model=True,  # serving needs neither aezoo nor its layers
                signature=infer_signature(record.example, output),
                registered_model_name=registered,
                pip_requirements=[f"keras=={keras.__version__}", f"tensorflow=={tf.__version__}"],
            )
        if registered:
            client, version = MlflowClient(), info.registered_model_version
            if record.champion:
                client.set_registered_model_alias(registered, CHAMPION, version)
            if "dvc_exp_name" in record.tags:
                client.set_model_version_tag(
                    registered, version, "dvc_exp_name", record.tags["dvc_exp_name"]
                )
    where = "not registered"
    if registered:
        version = info.registered_model_version
        where = f"registered as {registered} version {version}"
        where += (
            f", now @{CHAMPION}" if record.champion else f" (a DVC experiment's: not @{CHAMPION})"
        )
    print(f"tracking: run {run.info.run_id} ({record.name}) in {store.uri}, model {where}")
    return run.info.run_id


# ------------------------------------------------------------------------ verification


def verify_runs(
    client: MlflowClient,
    experiment: str,
    expected: Mapping[str, tuple[int | None, list[str], bool | None]],
    dvc_experiment: str | None = None,
) -> list[str]:
    """Problems with the newest run of each variant; an empty list means complete.

    Without ``dvc_experiment`` the runs are the workspace pipeline's (no ``dvc_exp_name``).
    ``expected`` maps a variant to its (epochs, figure files, registered?); None takes the
    run's own word (its ``epochs`` param, its ``full_run`` tag): a DVC experiment may have
    trained other epochs than the workspace's params.yaml says. Per variant:
    a run (one per DVC experiment when ``dvc_experiment`` is given), finished, with its
    params, a per-epoch history of ``epochs`` steps, test metrics, the figures, a logged
    model and, when registered, the ``@champion`` alias on its version.
    """
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return [f"no MLflow experiment named {experiment!r} in {client.tracking_uri}"]
    problems = []
    for name, (epochs, figures, registered) in expected.items():
        query = f"tags.variant = '{name}'"
        if dvc_experiment:
            query += f" and tags.dvc_exp_name = '{dvc_experiment}'"
        runs = client.search_runs(
            [found.experiment_id], query, order_by=["attributes.start_time DESC"]
        )
        if not dvc_experiment:  # the workspace pipeline's runs, not the experiments'
            runs = [run for run in runs if "dvc_exp_name" not in run.data.tags]
            query += " and no tag dvc_exp_name"
        if not runs:
            problems.append(f"{name}: no run ({query})")
            continue
        if dvc_experiment and len(runs) > 1:
            problems.append(f"{name}: {len(runs)} runs for DVC experiment {dvc_experiment}")
        mirrors = [run.data.tags.get(MIRROR_TAG) for run in runs]
        if mirrors.count(mirrors[0]) > 1:
            problems.append(f"{name}: {mirrors.count(mirrors[0])} runs mirror the same outputs")
        latest = runs[0]
        problems += [
            f"{name} (run {latest.info.run_id}): {problem}"
            for problem in _run_problems(
                client, latest, name, epochs, figures, registered, dvc_experiment
            )
        ]
    return problems


def _run_problems(
    client: MlflowClient,
    run: Run,
    name: str,
    epochs: int | None,
    figures: list[str],
    registered: bool | None,
    dvc_experiment: str | None,
) -> list[str]:
    run_id, data = run.info.run_id, run.data
    if epochs is None:
        epochs = int(data.params.get("epochs", -1))
    if registered is None:
        registered = data.tags.get("full_run") == "true"
    problems = []
    if run.info.status != "FINISHED":
        problems.append(f"status {run.info.status}")
    if run.info.run_name != name:
        problems.append(f"named {run.info.run_name!r}")
    wanted_params = ("variant.architecture", "variant.objective", "training.seed", "epochs")
    wanted_params += ("epochs_run", "best_epoch")
    wanted_params += ("code_size", "parameters", "data.clean_sha256")
    problems += [f"no param {key}" for key in wanted_params if key not in data.params]
    wanted_tags = ("variant", "mlflow.source.name", "mlflow.user", MIRROR_TAG)
    problems += [f"no tag {key}" for key in wanted_tags if key not in data.tags]
    if data.params.get("epochs") != str(epochs):
        problems.append(f"param epochs is {data.params.get('epochs')}, expected {epochs}")
    run_epochs = int(data.params.get("epochs_run", -1))  # selection may stop before epochs
    if not 0 < run_epochs <= epochs:
        problems.append(f"param epochs_run is {run_epochs}, expected 1 to {epochs}")
    for key in EPOCH_METRICS:
        steps = len(client.get_metric_history(run_id, key))
        if steps != run_epochs:
            problems.append(f"metric {key} has {steps} steps, expected {run_epochs}")
    charted = [key for key in data.metrics if not key.startswith("test.")]
    if extra := sorted(set(charted) - set(EPOCH_METRICS)):
        problems.append(f"metrics that are not test figures or curves: {', '.join(extra)}")
    if "test.reconstruction.mse" not in data.metrics:
        problems.append("no test metrics (test.reconstruction.mse)")
    logged = {Path(item.path).name for item in client.list_artifacts(run_id, "figures")}
    problems += [f"no artifact figures/{figure}" for figure in figures if figure not in logged]
    models = client.search_logged_models(
        [run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
    )
    if not models:
        problems.append("no logged model")
    if registered:
        versions = client.search_model_versions(f"name = 'aezoo-{name}' and run_id = '{run_id}'")
        if not versions:
            problems.append(f"no registered version of aezoo-{name}")
        elif dvc_experiment is None:  # an experiment's version is not the champion
            champion = client.get_model_version_by_alias(f"aezoo-{name}", CHAMPION)
            if str(champion.version) != str(versions[0].version):
                problems.append(f"aezoo-{name} version {versions[0].version} is not @{CHAMPION}")
    return problems


def check(
    config: TrackingConfig,
    expected: Mapping[str, tuple[int | None, list[str], bool | None]],
    dvc_experiment: str | None = None,
) -> None:
    """Verify the store's runs of the ``expected`` variants; raise TrackingError listing the
    problems."""
    store = resolve_store()
    if store.is_remote:
        check_reachable(store.uri, config.timeout_s)
    client = MlflowClient(store.uri, store.uri)
    problems = verify_runs(client, config.experiment, expected, dvc_experiment)
    if problems:
        listed = "\n".join(f"  {problem}" for problem in problems)
        raise TrackingError(f"the runs in {store.uri} are incomplete:\n{listed}")
    print(f"tracking ok: {len(expected)} complete runs in {store.uri}")


def champion_versions(names: Iterable[str]) -> dict[str, str | None]:
    """The version behind each ``aezoo-<name>@champion`` (None where there is none)."""
    client = MlflowClient()
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = str(
                client.get_model_version_by_alias(f"aezoo-{name}", CHAMPION).version
            )
        except mlflow.exceptions.MlflowException:
            versions[name] = None
    return versions
