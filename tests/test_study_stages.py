"""The study stages (studies/dvc.yaml): trials on a small real subset, PCA's frontier, the
studies' reports from synthetic trials, and the entry points' clean failures."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, SMALL_SUBSETS, tiny_images, write_params

from aezoo.config import parse_params
from aezoo.errors import ConfigError, DataError
from aezoo.io import read_arrays, read_history, read_json, write_arrays

TEST_IMAGES = SMALL_SUBSETS["test_subset"]  # prepared_small's test split


def small_raw(base_params: dict, **studies) -> dict:
    """params.yaml for the small subset: one epoch, 5 importance samples, fewer resamples;
    ``studies`` replaces keys of ``studies.frontier`` / ``studies.seeds``."""
    raw = copy.deepcopy(base_params)
    raw["data"].update(SMALL_SUBSETS)
    raw["training"]["max_epochs"] = 1
    raw["evaluation"]["iwae_samples"] = 5
    raw["comparison"]["bootstrap_resamples"] = 200
    for key, value in studies.items():
        study, setting = key.split("__")
        raw["studies"][study][setting] = value
    return raw


@pytest.fixture(scope="module")
def small_params(base_params):
    return parse_params(small_raw(base_params))


# ------------------------------------------------------------------------- trials


def scores_of(trial_dir):
    with np.load(trial_dir / "scores.npz") as archive:
        return {key: archive[key] for key in archive.files}


@pytest.fixture(scope="module")
def dense_trial(tmp_path_factory, small_params, prepared_small):
    """Frontier model ``dense`` at code size 4, one epoch on the small subset."""
    from aezoo.stages.trial import run_trial

    spec = small_params.studies.frontier.variant("dense", 4)
    out = tmp_path_factory.mktemp("trials") / "dense-4"
    run_trial(small_params, "frontier_dense_4", spec, 42, prepared_small, out, bounds=False)
    return out


@pytest.mark.integration
def test_trial_writes_models_history_facts_and_per_image_scores(dense_trial, prepared_small):
    for part in ("autoencoder", "encoder", "decoder"):
        assert (dense_trial / "model" / f"{part}.keras").is_file(), part
    assert len(read_history(dense_trial / "history.csv")["loss"]) == 1
    assert read_json(dense_trial / "train.json")["max_epochs"] == 1

    scores = scores_of(dense_trial)
    assert set(scores) == {"mse", "bce"}  # no bounds for an autoencoder
    for key, values in scores.items():
        assert values.shape == (TEST_IMAGES,) and values.dtype == np.float32, key
        assert np.all(np.isfinite(values)) and np.all(values > 0), key
    assert scores["mse"].mean() < 0.3  # four steps: the sigmoid output still near 0.5
    assert np.all(scores["bce"] > scores["mse"])

    trial = read_json(dense_trial / "trial.json")
    assert trial["name"] == "frontier_dense_4"
    assert (trial["seed"], trial["code_size"], trial["test_images"]) == (42, 4, TEST_IMAGES)
    assert (trial["epochs_run"], trial["best_epoch"]) == (1, 1)
    assert trial["parameters"] == 784 * 4 + 4 + 4 * 784 + 784  # 784-4-784
    assert trial["test_mse"] == float(np.mean(scores["mse"]))
    assert trial["test_bce"] == float(np.mean(scores["bce"]))


@pytest.mark.integration
def test_trial_scores_are_the_saved_models_outputs(dense_trial, prepared_small):
    from aezoo.data import load_prepared, to_unit_float
    from aezoo.evaluation import as_model_input, per_image_mse
    from aezoo.stages.loading import load_models

    test = load_prepared(prepared_small / "clean.npz")["test"].x
    autoencoder = load_models(dense_trial / "model", ("autoencoder",))["autoencoder"]
    output = autoencoder.predict(as_model_input(test), batch_size=512, verbose=0)
    np.testing.assert_allclose(
        per_image_mse(to_unit_float(test), output), scores_of(dense_trial)["mse"], rtol=1e-5
    )


@pytest.mark.integration
def test_trial_is_deterministic(dense_trial, tmp_path, small_params, prepared_small):
    from aezoo.stages.trial import run_trial

    spec = small_params.studies.frontier.variant("dense", 4)
    # bounds only concern a VAE: asked for here, the same scores come back
    run_trial(small_params, "frontier_dense_4", spec, 42, prepared_small, tmp_path, bounds=True)
    first, again = scores_of(dense_trial), scores_of(tmp_path)
    assert set(again) == set(first) == {"mse", "bce"}
    for key in first:
        np.testing.assert_array_equal(again[key], first[key], err_msg=key)


@pytest.mark.integration
def test_vae_trial_with_bounds_scores_elbo_and_iwae(tmp_path, small_params, prepared_small):
    from aezoo.stages.trial import run_trial

    spec = small_params.studies.frontier.variant("vae", 2)
    run_trial(small_params, "vae_seed1", spec, 1, prepared_small, tmp_path, bounds=True)
    scores = scores_of(tmp_path)
    assert set(scores) == {"mse", "bce", "neg_elbo", "iwae_nll"}
    for key, values in scores.items():
        assert values.shape == (TEST_IMAGES,) and np.all(np.isfinite(values)), key
    assert 50 < scores["neg_elbo"].mean() < 784 * np.log(2)  # nats: better than coin flips
    assert scores["iwae_nll"].mean() <= scores["neg_elbo"].mean()
    trial = read_json(tmp_path / "trial.json")
    assert (trial["seed"], trial["code_size"]) == (1, 2)
    assert trial["test_neg_elbo"] == float(np.mean(scores["neg_elbo"]))
    assert trial["test_iwae_nll"] == float(np.mean(scores["iwae_nll"]))


# ---------------------------------------------------------------------------- PCA


def test_pca_frontier_matches_pca_fit_at_each_size(tmp_path, base_params, prepared_small):
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    from aezoo.data import load_prepared, to_unit_float
    from aezoo.stages.study import pca_frontier

    params = parse_params(small_raw(base_params, frontier__code_sizes=[8, 2]))
    # One BLAS thread: OpenBLAS's threads spin on a busy machine (~20x slower here).
    with threadpool_limits(1):
        pca_frontier(params, prepared_small, tmp_path / "pca.npz")
    arrays = read_arrays(tmp_path / "pca.npz", ["mse_2", "mse_8"], "frontier_pca")
    assert set(arrays) == {"mse_2", "mse_8"}
    assert all(values.shape == (TEST_IMAGES,) for values in arrays.values())
    assert arrays["mse_8"].mean() < arrays["mse_2"].mean()
    # nested subspaces: every image's error shrinks with more components
    assert np.all(arrays["mse_8"] <= arrays["mse_2"] + 1e-6)

    clean = load_prepared(prepared_small / "clean.npz")
    train, test = (
        to_unit_float(clean[split].x).reshape(len(clean[split]), -1).astype(np.float64)
        for split in ("train", "test")
    )
    for size in (2, 8):
        # exact SVD: for this shape sklearn's default picks the randomized solver, ~3e-4 off
        with threadpool_limits(1):
            reference = PCA(size, svd_solver="full").fit(train)
        reconstruction = reference.inverse_transform(reference.transform(test))
        expected = np.mean((test - reconstruction) ** 2, axis=1)
        np.testing.assert_allclose(arrays[f"mse_{size}"], expected, rtol=1e-4, err_msg=size)


def test_pca_frontier_names_a_code_size_wider_than_the_training_split(tmp_path, base_params):
    from aezoo.errors import AezooError
    from aezoo.stages.study import pca_frontier

    rng = np.random.default_rng(0)
    splits = {"train": 16, "val": 4, "test": 4}
    arrays = {
        f"x_{split}": tiny_images(count, seed) for seed, (split, count) in enumerate(splits.items())
    }
    arrays |= {f"y_{split}": rng.integers(0, 10, count) for split, count in splits.items()}
    write_arrays(tmp_path / "clean.npz", arrays)
    params = parse_params(small_raw(base_params, frontier__code_sizes=[2, 32]))
    with pytest.raises(AezooError, match="code_sizes"):
        pca_frontier(params, tmp_path, tmp_path / "pca.npz")


# ------------------------------------------------------------------------ reports

IMAGES = 400
FRONTIER_MODELS = ("dense", "deep_dense")


def per_image(mean: float, seed: int, shared: np.ndarray) -> np.ndarray:
    """Positive per-image values with exactly ``mean``, hard where ``shared`` is."""
    values = shared * np.random.default_rng(seed).uniform(0.95, 1.05, IMAGES)
    return (values * (mean / values.mean())).astype(np.float32)


# At code 2 PCA beats both autoencoders; at 16 deep_dense beats PCA.
FRONTIER_MEANS = {
    ("dense", 2): 0.060,
    ("deep_dense", 2): 0.050,
    ("dense", 16): 0.020,
    ("deep_dense", 16): 0.012,
    ("PCA", 2): 0.040,
    ("PCA", 16): 0.018,
}


@pytest.fixture
def frontier_setup(tmp_path, base_params):
    """Params with two models at code sizes 2 and 16, their synthetic trials and pca.npz."""
    raw = small_raw(base_params, frontier__code_sizes=[2, 16])
    raw["studies"]["frontier"]["models"] = {
        model: raw["studies"]["frontier"]["models"][model] for model in FRONTIER_MODELS
    }
    params = parse_params(raw)
    shared = np.random.default_rng(100).gamma(2.0, 0.5, IMAGES)
    trials = tmp_path / "trials"
    values = {}
    for index, ((model, size), mean) in enumerate(FRONTIER_MEANS.items()):
        values[model, size] = per_image(mean, index, shared)
        if model != "PCA":
            bce = values[model, size] * 5
            write_arrays(
                trials / f"{model}-{size}" / "scores.npz", {"mse": values[model, size], "bce": bce}
            )
    write_arrays(trials / "pca.npz", {f"mse_{size}": values["PCA", size] for size in (2, 16)})
    return params, trials, values


def test_frontier_report_writes_its_tables_and_chart(frontier_setup, tmp_path):
    from aezoo.stages.study import frontier_report

    params, trials, values = frontier_setup
    out = tmp_path / "reports"
    frontier_report(params, trials, trials / "pca.npz", out)
    assert (out / "frontier.png").read_bytes().startswith(b"\x89PNG")

    frame = pd.read_csv(out / "frontier.csv")
    assert len(frame) == len(FRONTIER_MEANS)
    for (model, size), mean in FRONTIER_MEANS.items():
        row = frame[(frame["model"] == model) & (frame["code_size"] == size)]
        assert len(row) == 1, (model, size)
        assert row["mse"].iloc[0] == pytest.approx(float(values[model, size].mean()), rel=1e-5)
        assert row["mse"].iloc[0] == pytest.approx(mean, rel=1e-4)
    best = frame[frame["best_at_size"]]
    assert sorted(zip(best["code_size"], best["model"], strict=True)) == [
        (2, "deep_dense"),
        (16, "deep_dense"),
    ]

    markdown = (out / "frontier.md").read_text()
    sizes_table, verdicts = markdown.split("## The best autoencoder against PCA")
    assert "| code | dense | deep_dense | PCA |" in sizes_table
    rows = [
        line for line in sizes_table.splitlines() if line.startswith("| ") and "---" not in line
    ]
    assert [row.split(" | ")[0] for row in rows[1:]] == ["| 2", "| 16"]  # one row a code size
    assert all(row.count("±") == 3 for row in rows[1:])
    verdict_rows = [line for line in verdicts.splitlines() if line.startswith("| ")][1:]
    assert len(verdict_rows) == 2
    assert verdict_rows[0].startswith("| 2 | deep_dense |") and verdict_rows[0].endswith("| PCA |")
    assert verdict_rows[1].startswith("| 16 | deep_dense |")
    assert verdict_rows[1].endswith("| autoencoder |")
    assert "PCA wins or ties at code sizes 2 (PCA)." in verdicts
    assert "![test MSE against code size](frontier.png)" in markdown


def test_frontier_report_names_a_missing_trial(frontier_setup, tmp_path):
    from aezoo.stages.study import frontier_report

    params, trials, _ = frontier_setup
    (trials / "deep_dense-16" / "scores.npz").unlink()
    out = tmp_path / "reports"
    with pytest.raises(DataError) as caught:
        frontier_report(params, trials, trials / "pca.npz", out)
    message = str(caught.value)
    assert "deep_dense-16/scores.npz: no such file" in message
    assert "frontier_trial@deep_dense-16" in message
    assert not out.exists()  # nothing half-written


def test_frontier_report_names_missing_arrays(frontier_setup, tmp_path):
    from aezoo.stages.study import frontier_report

    params, trials, values = frontier_setup
    write_arrays(trials / "pca.npz", {"mse_2": values["PCA", 2]})  # no mse_16
    with pytest.raises(DataError, match=r"pca\.npz: missing the arrays mse_16 .*frontier_pca"):
        frontier_report(params, trials, trials / "pca.npz", tmp_path / "reports")
    write_arrays(trials / "dense-2" / "scores.npz", {"bce": values["dense", 2]})  # no mse
    with pytest.raises(DataError, match=r"dense-2/scores\.npz: missing the arrays mse"):
        frontier_report(params, trials, trials / "pca.npz", tmp_path / "reports")


# The seed study's variants in params.yaml, one of each loss, and the figure each is judged by.
SEED_FIGURES = {"dense16": "mse", "dense32": "bce", "vae": "neg_elbo"}
SEEDS = (1, 2, 3)
FIGURE_SCALES = {"mse": 0.02, "bce": 0.1, "neg_elbo": 100.0, "iwae_nll": 95.0}


@pytest.fixture
def seeds_setup(tmp_path, base_params):
    """Params of the seed study, and synthetic trials: each figure on its own scale, so a
    report that read the wrong array would be far off."""
    raw = small_raw(base_params, seeds__variants=list(SEED_FIGURES), seeds__seeds=list(SEEDS))
    params = parse_params(raw)
    for variant, figure in SEED_FIGURES.items():
        assert params.variant(variant).loss == {"neg_elbo": "elbo"}.get(figure, figure)
    shared = np.random.default_rng(200).gamma(2.0, 0.5, IMAGES)
    trials, means = tmp_path / "trials", {}
    for index, (variant, seed) in enumerate(
        (variant, seed) for variant in SEED_FIGURES for seed in SEEDS
    ):
        keys = ["mse", "bce"] + (["neg_elbo", "iwae_nll"] if variant == "vae" else [])
        arrays = {
            key: per_image(FIGURE_SCALES[key] * (1 + 0.01 * seed), 10 * index + k, shared)
            for k, key in enumerate(keys)
        }
        write_arrays(trials / f"{variant}-{seed}" / "scores.npz", arrays)
        means[variant, seed] = float(arrays[SEED_FIGURES[variant]].mean())
    return params, trials, means


def test_seeds_report_judges_each_variant_by_its_loss(seeds_setup, tmp_path):
    from aezoo.stages.study import seeds_report

    params, trials, means = seeds_setup
    out = tmp_path / "reports"
    seeds_report(params, trials, out)
    frame = pd.read_csv(out / "seeds.csv")
    assert list(frame["variant"]) == list(SEED_FIGURES)
    assert list(frame["figure"]) == list(SEED_FIGURES.values())
    for _, row in frame.iterrows():
        per_seed = [means[row["variant"], seed] for seed in SEEDS]
        assert row["mean"] == pytest.approx(np.mean(per_seed), rel=1e-5)
        assert row["std"] == pytest.approx(np.std(per_seed, ddof=1), rel=1e-3)
        assert 0 < row["test_half_width"] < row["mean"]

    markdown = (out / "seeds.md").read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == len(SEED_FIGURES)
    for row, (variant, name) in zip(
        rows,
        [("dense16", "test MSE"), ("dense32", "test BCE"), ("vae", "test -ELBO (nats)")],
        strict=True,
    ):
        assert row.startswith(f"| {variant} | {name} | 1: "), row


def test_seeds_report_names_a_missing_trial_or_figure(seeds_setup, tmp_path):
    from aezoo.stages.study import seeds_report

    params, trials, _ = seeds_setup
    out = tmp_path / "reports"
    # a VAE trial scored without bounds has no neg_elbo, the figure that judges it
    scores = trials / "vae-2" / "scores.npz"
    write_arrays(scores, {"mse": np.ones(IMAGES), "bce": np.ones(IMAGES)})
    with pytest.raises(DataError, match=r"vae-2/scores\.npz: missing the arrays neg_elbo"):
        seeds_report(params, trials, out)
    scores.unlink()
    with pytest.raises(DataError) as caught:
        seeds_report(params, trials, out)
    assert "vae-2/scores.npz: no such file" in str(caught.value)
    assert "seed_trial@vae-2" in str(caught.value)
    assert not out.exists()


def test_study_report_entry_point_writes_only_its_study(seeds_setup, tmp_path, base_params):
    _, trials, _ = seeds_setup
    raw = small_raw(base_params, seeds__variants=list(SEED_FIGURES), seeds__seeds=list(SEEDS))
    params = write_params(tmp_path / "params.yaml", raw)
    out = tmp_path / "reports"
    result = stage(
        "study_report.py", "seeds", "--trials", str(trials), "--out", str(out), params=params
    )
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in out.iterdir()) == ["seeds.csv", "seeds.md"]


# ------------------------------------------------------------------- entry points


def test_a_negative_study_seed_fails_when_params_load(base_params):
    with pytest.raises(ConfigError, match=r"studies\.seeds\.seeds"):
        parse_params(small_raw(base_params, seeds__seeds=[-1, 2]))


def stage(script: str, *args: str, params=ROOT / "params.yaml") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "pipeline" / script), *args, "--params", str(params)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_clean_failure(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in lines[0]


def test_frontier_trial_names_an_unknown_model_and_the_known_ones(tmp_path, base_params):
    out = tmp_path / "trial"
    result = stage("frontier_trial.py", "nosuchmodel", "4", "--out", str(out))
    known = ", ".join(base_params["studies"]["frontier"]["models"])
    assert_clean_failure(
        result, "studies.frontier.models.nosuchmodel: no such model", f"(known: {known})"
    )
    assert not out.exists()


@pytest.mark.parametrize("size", ["0", "785"])
def test_frontier_trial_rejects_a_code_size_out_of_range(tmp_path, size):
    out = tmp_path / "trial"
    result = stage("frontier_trial.py", "dense", size, "--out", str(out))
    assert_clean_failure(result, "code size", f"got {size}")
    assert not out.exists()


def test_seed_trial_names_an_unknown_variant_and_the_known_ones(tmp_path, base_params):
    out = tmp_path / "trial"
    result = stage("seed_trial.py", "dense61", "1", "--out", str(out))
    known = ", ".join(base_params["variants"])
    assert_clean_failure(result, "variants.dense61: no such variant", f"(known: {known})")
    assert not out.exists()
