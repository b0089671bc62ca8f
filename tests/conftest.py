"""Shared fixtures: the real MNIST mirror, small real subsets, and params builders; and the
guard that keeps every test reaching MNIST out of the fast tier (``make test``).

Tiers (markers in pyproject.toml): ``make test`` runs ``-m "not (integration or browser or
slow) or e2e"``: the unit tests and one small end-to-end stage chain. ``make test-all`` (and
``.ci/run``) runs everything.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

if TYPE_CHECKING:
    import numpy as np

# One BLAS thread in the tests and the stages they start. OpenBLAS's threads spin while they
# wait: with both of 2 cores busy, one 784 x 784 eigh (a PCA fit) took 7 s of CPU instead of
# 0.15 s. NumPy reads this when it loads, so it is set before any test module imports NumPy
# (this file imports it only inside functions; tests/test_tiers.py checks it took effect).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

pytest_plugins = ("pytester",)  # tests/test_tiers.py runs the guard below on small projects

ROOT = Path(__file__).resolve().parents[1]


def mirror_dir() -> Path | None:
    """The local MNIST mirror: AEZOO_MNIST_MIRROR, else ../shared/data/mnist."""
    candidate = os.environ.get("AEZOO_MNIST_MIRROR") or str(ROOT.parent / "shared/data/mnist")
    path = Path(candidate)
    return path if (path / "train-images-idx3-ubyte.gz").is_file() else None


@pytest.fixture(scope="session")
def mnist_mirror() -> Path:
    """The MNIST mirror: the only way a test reaches real data (only ``integration`` tests may
    request it, directly or through the fixtures built on it)."""
    path = mirror_dir()
    if path is None:
        pytest.skip("no MNIST mirror: set AEZOO_MNIST_MIRROR to a directory with the gz files")
    return path


# ------------------------------------------------------------------ the tiers' guard

DATA_FIXTURE = "mnist_mirror"
DATA_MARKER = "integration"
# What AEZOO_MNIST_MIRROR says in every other test: a mirror that does not exist, so a stage
# run there that fetches fails at once instead of finding real data (or the network).
NO_MIRROR = "/nonexistent/aezoo-tests-outside-integration-have-no-mnist"


def unmarked_data_tests(items: list[pytest.Item]) -> list[str]:
    """The tests that request ``mnist_mirror`` (the fixture closure: also through
    ``prepared_small``, ``small_zoo`` and the like) without the ``integration`` marker."""
    return [
        item.nodeid
        for item in items
        if DATA_FIXTURE in getattr(item, "fixturenames", ())
        and item.get_closest_marker(DATA_MARKER) is None
    ]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Stop the run, before any test and before ``-m`` deselects anything, when a test
    reaches MNIST unmarked: ``make test`` would run it, and the fast tier would grow slow
    again unnoticed. Checked at collection so that no tier, selection or skip hides it."""
    if unmarked := unmarked_data_tests(items):
        raise pytest.UsageError(
            f"{len(unmarked)} test(s) use real MNIST ({DATA_FIXTURE}, directly or through a "
            f"fixture built on it) without @pytest.mark.{DATA_MARKER}:\n  " + "\n  ".join(unmarked)
        )


@pytest.fixture(autouse=True)
def _no_mnist_outside_integration(request: pytest.FixtureRequest, monkeypatch) -> None:
    """Outside ``integration`` tests, AEZOO_MNIST_MIRROR names no mirror: a test (or a stage
    it starts) that fetches without the fixture fails rather than quietly using real data."""
    if request.node.get_closest_marker(DATA_MARKER) is None:
        monkeypatch.setenv("AEZOO_MNIST_MIRROR", NO_MIRROR)


@pytest.fixture(scope="session", autouse=True)
def tracking_store(tmp_path_factory) -> str:
    """A throwaway MLflow store: no test ever logs to the project's own mlflow.db."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    return uri


@pytest.fixture(scope="session")
def base_params() -> dict:
    """The repository's params.yaml, parsed (tests copy and modify it).

    Tracking is off here, so stage tests stay fast; tests/test_tracking.py switches it on.
    """
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["tracking"]["enabled"] = False
    return raw


@pytest.fixture
def raw_params(base_params) -> dict:
    return copy.deepcopy(base_params)


def data_config(base_params: dict, **overrides):
    """params.yaml's ``data`` section with ``overrides``, validated."""
    from aezoo.config import DataConfig

    return DataConfig(**{**base_params["data"], **overrides})


@pytest.fixture(scope="session")
def prepared_small(tmp_path_factory, mnist_mirror, base_params) -> Path:
    """Real MNIST, fetched from the mirror and prepared with small subsets."""
    from aezoo.data import fetch_mnist, prepare_mnist

    work = tmp_path_factory.mktemp("mnist")
    config = data_config(
        base_params, mirror=str(mnist_mirror), train_subset=1024, val_subset=256, test_subset=512
    )
    fetch_mnist(config, work / "raw")
    prepare_mnist(config, work / "raw", work / "prepared" / "clean.npz")
    return work / "prepared"


@pytest.fixture(scope="session")
def full_prepared(tmp_path_factory, mnist_mirror, base_params) -> Path:
    """Real MNIST, prepared in full (55,000 / 5,000 / 10,000)."""
    from aezoo.data import fetch_mnist, prepare_mnist

    work = tmp_path_factory.mktemp("mnist_full")
    config = data_config(base_params, mirror=str(mnist_mirror))
    assert config.full
    fetch_mnist(config, work / "raw")
    prepare_mnist(config, work / "raw", work / "prepared" / "clean.npz")
    return work / "prepared"


# The small zoo that the evaluate, render, figures and tracking tests share: one variant of
# each figure kind and each architecture x objective (conv_vae: a strided-conv VAE, 2-D code).
SMALL_ZOO_EPOCHS = {"dense16": 2, "conv_denoise": 2, "vae": 2, "vae2d": 3, "conv_vae": 1}
SMALL_SUBSETS = {"train_subset": 1024, "val_subset": 256, "test_subset": 512}  # prepared_small


def small_zoo_raw(base_params: dict) -> dict:
    """params.yaml for the small zoo: its variants, briefly trained on ``prepared_small``'s
    subsets (so ``params.data`` says what the data is), small evaluation and figures."""
    raw = copy.deepcopy(base_params)
    raw["data"].update(SMALL_SUBSETS)
    raw["variants"] = {
        name: {**raw["variants"][name], "epochs": epochs, "batch_size": 64}
        for name, epochs in SMALL_ZOO_EPOCHS.items()
    }
    raw["evaluation"].update(iwae_samples=20, probe_train_samples=None)
    raw["render"].update(
        grid_digits=12,
        code_map_samples=300,
        vae_grid_side=4,
        manifold_side=6,
        interpolation_steps=5,
        gif_frame_ms=250,
    )
    return raw


@pytest.fixture(scope="session")
def small_zoo(tmp_path_factory, prepared_small, base_params):
    """The small zoo's variants trained briefly on the small subset and evaluated (metrics
    and the arrays the figures show); returns ``(params, work)``.

    Paths: ``work/data`` (clean.npz, gauss05.npz), ``work/models/<name>``,
    ``work/reports/<name>``, ``work/test_outputs/<name>.npz``. Figure sizes are small, so
    rendering stays quick (``rendered_zoo`` draws them).
    """
    from aezoo.config import parse_params
    from aezoo.stages.corrupt import corrupt
    from aezoo.stages.evaluate import evaluate
    from aezoo.stages.train import train

    params = parse_params(small_zoo_raw(base_params))
    work = tmp_path_factory.mktemp("zoo")
    data = work / "data"
    data.mkdir()
    (data / "clean.npz").symlink_to(prepared_small / "clean.npz")
    corrupt(params, "gauss05", data / "clean.npz", data / "gauss05.npz", work / "gauss05.json")
    for name in params.variants:
        models, report = work / "models" / name, work / "reports" / name
        train(params, name, data, models, report)
        evaluate(params, name, data, models, report, test_outputs=zoo_outputs(work, name))
    return params, work


@pytest.fixture(scope="session")
def rendered_zoo(small_zoo):
    """The small zoo with every variant's figures drawn by the render stage."""
    from aezoo.stages.render import render

    params, work = small_zoo
    for name in params.variants:
        models, report = work / "models" / name, work / "reports" / name
        render(params, name, work / "data", models, report, test_outputs=zoo_outputs(work, name))
    return params, work


def zoo_outputs(work: Path, name: str) -> Path:
    """The evaluate stage's arrays of a small-zoo variant (what the render stage draws)."""
    return work / "test_outputs" / f"{name}.npz"


def write_params(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def tiny_images(count: int = 8, seed: int = 0) -> np.ndarray:
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, (count, 28, 28), dtype=np.uint8)


def copy_project(destination: Path) -> Path:
    """The project's files as git sees them (committed or new, not ignored), without the
    results (``reports/``, ``dvc.lock``) and without the studies' pipeline (``studies/``:
    its lock records full-data runs): the start of a throwaway repository of the zoo."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    generated = ("reports/", "dvc.lock", "studies/")  # results, rebuilt there; the studies
    for name in listed:
        if name and (ROOT / name).is_file() and not name.startswith(generated):
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination


def project_environment(mnist_mirror: Path, workdir: Path) -> dict[str, str]:
    """The environment for running a throwaway project copy's stages and git: the copy's
    library, this interpreter as the stages' ``python``, the MNIST mirror, a git identity,
    and no ``MLFLOW_TRACKING_URI`` (runs go to the copy's own embedded store)."""
    variables = dict(os.environ)
    variables.pop("MLFLOW_TRACKING_URI", None)
    variables.update(
        AEZOO_MNIST_MIRROR=str(mnist_mirror),
        PYTHONPATH=str(workdir / "src"),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), variables.get("PATH", "")]),
        GIT_AUTHOR_NAME="aezoo test",
        GIT_AUTHOR_EMAIL="test@example.invalid",
        GIT_COMMITTER_NAME="aezoo test",
        GIT_COMMITTER_EMAIL="test@example.invalid",
    )
    return variables
