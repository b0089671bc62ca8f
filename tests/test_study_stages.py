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


@pytest.mark.integration
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


@pytest.mark.parametrize(
    ("script", "study", "setting"),
    [("frontier_trial.py", "frontier", "4"), ("denoise_trial.py", "denoising", "0.5")],
)
def test_trials_name_an_unknown_model_and_the_known_ones(
    tmp_path, base_params, script, study, setting
):
    out = tmp_path / "trial"
    result = stage(script, "nosuchmodel", setting, "--out", str(out))
    known = ", ".join(base_params["studies"][study]["models"])
    assert_clean_failure(
        result, f"studies.{study}.models.nosuchmodel: no such model", f"(known: {known})"
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


# ------------------------------------------------------------- the denoising study

DENOISING_STD = 0.5
DENOISING_SUBSETS = {"test_images": 30, "validation_images": 12}
CLASSICAL_METHODS = ("gaussian_filter", "median_filter", "pca", "nl_means", "bm3d")


def denoising_raw(base_params: dict, **changes) -> dict:
    """``small_raw`` with a small denoising study: few images and candidates (BM3D takes
    ~0.25 s an image), one model (conv), two noise levels; ``changes`` replace its keys."""
    raw = small_raw(base_params)
    study = raw["studies"]["denoising"]
    study.update(
        noise_levels=[0.25, DENOISING_STD],
        **DENOISING_SUBSETS,
        gaussian_sigmas=[0.5, 1.0],
        median_sizes=[3],
        pca_components=[8, 32],
        bm3d_sigma_factors=[1.0],
    )
    study["nl_means"]["h_factors"] = [0.6, 1.0]
    study["models"] = {"strided": study["models"]["strided"]}
    study.update(changes)
    return raw


@pytest.fixture(scope="module")
def denoising_params(base_params):
    return parse_params(denoising_raw(base_params))


@pytest.fixture(scope="module")
def denoising_trials(tmp_path_factory):
    """Where the integration tests' classical methods and trial write, as the study lays
    them out (``classical/<std>/``, ``models/<model>-<std>/``)."""
    return tmp_path_factory.mktemp("denoising")


@pytest.fixture(scope="module")
def classical_level(denoising_trials, denoising_params, prepared_small):
    """The classical methods at noise std 0.5 on prepared_small's subsets."""
    from threadpoolctl import threadpool_limits

    from aezoo.stages.denoising import classical_denoising

    out = denoising_trials / "classical" / str(DENOISING_STD)
    with threadpool_limits(1):  # PCA's fit: OpenBLAS's threads spin on a busy machine
        classical_denoising(denoising_params, DENOISING_STD, prepared_small, out, workers=1)
    return out


@pytest.mark.integration
def test_classical_denoising_scores_every_method_on_the_fixed_subset(
    classical_level, denoising_params, prepared_small
):
    from aezoo import denoising
    from aezoo.corruption import noisy_splits
    from aezoo.data import load_prepared, to_unit_float

    study = denoising_params.studies.denoising
    arrays = read_arrays(classical_level / "classical.npz", ["indices"], "denoise_classical")
    assert set(arrays) == {"indices", "noisy", *CLASSICAL_METHODS}
    rows = denoising.fixed_subset(TEST_IMAGES, study.test_images, study.seed)
    np.testing.assert_array_equal(arrays["indices"], rows)
    for method in ("noisy", *CLASSICAL_METHODS):
        values = arrays[method]
        assert values.shape == (study.test_images,) and np.all(np.isfinite(values)), method
    # at std 0.5 the noisy input is ~6-9 dB; every method improves on it, on average
    assert 4 < arrays["noisy"].mean() < 12
    for method in CLASSICAL_METHODS:
        assert arrays[method].mean() > arrays["noisy"].mean() + 2, method

    # the arrays are the subset's images: the noisy input and a cheap method, recomputed
    clean = load_prepared(prepared_small / "clean.npz")
    noise = study.noise(DENOISING_STD)
    noisy = noisy_splits({"test": clean["test"]}, noise)["test"].x[rows].astype(np.float32)
    target = to_unit_float(clean["test"].x[rows])
    np.testing.assert_allclose(
        arrays["noisy"], denoising.per_image_psnr(target, np.clip(noisy, 0, 1)), rtol=1e-6
    )
    facts = read_json(classical_level / "classical.json")
    sigma = facts["gaussian_filter"]["chosen"]
    output = denoising.clipped(denoising.gaussian_filter(), noisy, sigma, DENOISING_STD)
    np.testing.assert_allclose(
        arrays["gaussian_filter"], denoising.per_image_psnr(target, output), rtol=1e-6
    )


@pytest.mark.integration
def test_classical_denoising_records_settings_chosen_among_the_candidates(
    classical_level, denoising_params
):
    study = denoising_params.studies.denoising
    facts = read_json(classical_level / "classical.json")
    assert facts["noise_std"] == DENOISING_STD
    assert (facts["test_images"], facts["validation_images"]) == (30, 12)
    arrays = read_arrays(classical_level / "classical.npz", [], "denoise_classical")
    candidates = {
        "gaussian_filter": ("sigma", study.gaussian_sigmas),
        "median_filter": ("size", study.median_sizes),
        "pca": ("components", study.pca_components),
        "nl_means": ("h / std", study.nl_means.h_factors),
        "bm3d": ("sigma / std", study.bm3d_sigma_factors),
    }
    assert set(candidates) == {key for key, value in facts.items() if isinstance(value, dict)}
    for method, (setting, tried) in candidates.items():
        fact = facts[method]
        assert fact["setting"] == setting, method
        assert fact["chosen"] in tried, method
        scores = fact["validation_psnr_db"]
        assert set(scores) == {str(value) for value in tried}, method
        assert scores[str(fact["chosen"])] == max(scores.values()), method  # the best on val
        assert fact["test_psnr_db"] == pytest.approx(float(arrays[method].mean()), rel=1e-6)
        assert fact["choice_seconds"] >= 0 and fact["test_ms_per_image"] > 0, method


@pytest.fixture(scope="module")
def denoising_trial(denoising_trials, denoising_params, prepared_small):
    """The study's conv model trained one epoch as a denoiser of noise std 0.5."""
    from aezoo.stages.trial import run_trial

    study = denoising_params.studies.denoising
    out = denoising_trials / "models" / f"strided-{DENOISING_STD}"
    spec = study.variant("strided")
    noise = study.noise(DENOISING_STD)
    name = "denoise_conv_0_5"
    run_trial(denoising_params, name, spec, 42, prepared_small, out, bounds=False, noise=noise)
    return out


@pytest.mark.integration
def test_denoising_trial_scores_validation_images_and_records_the_noise(
    denoising_trial, prepared_small
):
    scores = scores_of(denoising_trial)
    assert set(scores) == {"mse", "bce", "val_mse"}
    assert scores["mse"].shape == (TEST_IMAGES,)
    assert scores["val_mse"].shape == (SMALL_SUBSETS["val_subset"],)
    for key, values in scores.items():
        assert values.dtype == np.float32 and np.all(np.isfinite(values)), key
        assert np.all(values > 0), key
    trial = read_json(denoising_trial / "trial.json")
    assert trial["name"] == "denoise_conv_0_5"
    assert trial["noise_std"] == DENOISING_STD
    assert (trial["seed"], trial["test_images"], trial["epochs_run"]) == (42, TEST_IMAGES, 1)
    assert trial["test_mse"] == float(np.mean(scores["mse"]))
    assert read_json(denoising_trial / "train.json")["max_epochs"] == 1


@pytest.mark.integration
def test_denoising_trial_scores_the_model_on_the_studys_noisy_images(
    denoising_trial, denoising_params, prepared_small
):
    from aezoo.corruption import noisy_splits
    from aezoo.data import load_prepared, to_unit_float
    from aezoo.evaluation import as_model_input, per_image_mse
    from aezoo.stages.loading import load_models

    clean = load_prepared(prepared_small / "clean.npz")
    noisy = noisy_splits(clean, denoising_params.studies.denoising.noise(DENOISING_STD))
    autoencoder = load_models(denoising_trial / "model", ("autoencoder",))["autoencoder"]
    scores = scores_of(denoising_trial)
    for split, key in (("test", "mse"), ("val", "val_mse")):
        output = autoencoder.predict(as_model_input(noisy[split].x), batch_size=512, verbose=0)
        np.testing.assert_allclose(
            per_image_mse(to_unit_float(clean[split].x), output), scores[key], rtol=1e-5
        )
    # scored on noisy inputs, not on clean ones
    on_clean = autoencoder.predict(as_model_input(clean["test"].x), batch_size=512, verbose=0)
    assert not np.allclose(per_image_mse(to_unit_float(clean["test"].x), on_clean), scores["mse"])


@pytest.mark.integration
def test_denoising_report_reads_what_the_stages_wrote(
    classical_level, denoising_trial, denoising_trials, base_params, tmp_path
):
    from aezoo.stages.study import denoising_report
    from aezoo.statistics import psnr_per_image

    params = parse_params(denoising_raw(base_params, noise_levels=[DENOISING_STD]))
    out = tmp_path / "reports"
    denoising_report(params, denoising_trials, out)
    assert sorted(path.name for path in out.iterdir()) == [
        "denoising.csv",
        "denoising.md",
        "denoising.png",
    ]
    frame = pd.read_csv(out / "denoising.csv")
    assert list(frame["method"]) == ["noisy", *CLASSICAL_METHODS, "strided", "autoencoder"]
    rows = read_arrays(classical_level / "classical.npz", ["indices"], "x")["indices"]
    ours = psnr_per_image(scores_of(denoising_trial)["mse"])
    autoencoder = frame[frame["method"] == "autoencoder"].iloc[0]
    assert autoencoder["psnr_db"] == pytest.approx(ours[rows].mean(), rel=1e-5)
    assert autoencoder["full_psnr_db"] == pytest.approx(ours.mean(), rel=1e-5)
    assert (autoencoder["subset_images"], autoencoder["full_images"]) == (30, TEST_IMAGES)


# The report from synthetic trials: per level, conv is best on the validation images and
# pca_dense on the test images; the report must stand conv for the autoencoders.
REPORT_STDS = (0.25, 0.5)
REPORT_SUBSET = 100
REPORT_MODELS = ("strided", "pca_dense")
CLASSICAL_PSNR = {"noisy": 8.0, "gaussian_filter": 14.0, "median_filter": 13.0, "pca": 15.0}
CLASSICAL_PSNR |= {"nl_means": 15.5, "bm3d": 17.0}
# the mean validation MSE and test MSE of each model
MODEL_MSE = {"strided": (0.010, 0.012), "pca_dense": (0.011, 0.009)}
VAL_IMAGES = 60


@pytest.fixture
def denoising_setup(tmp_path, base_params):
    from aezoo import denoising
    from aezoo.io import write_json

    raw = denoising_raw(base_params, noise_levels=list(REPORT_STDS), test_images=REPORT_SUBSET)
    raw["studies"]["denoising"]["models"] = {
        model: base_params["studies"]["denoising"]["models"][model] for model in REPORT_MODELS
    }
    params = parse_params(raw)
    shared = np.random.default_rng(300).gamma(2.0, 0.5, IMAGES)
    rows = denoising.fixed_subset(IMAGES, REPORT_SUBSET, params.studies.denoising.seed)
    trials = tmp_path / "trials"
    for level, std in enumerate(REPORT_STDS):
        arrays = {"indices": rows}
        facts = {"noise_std": std, "test_images": REPORT_SUBSET, "validation_images": 20}
        for index, (method, mean) in enumerate(CLASSICAL_PSNR.items()):
            values = np.random.default_rng(10 * level + index).normal(mean - 4 * std, 2, IMAGES)
            arrays[method] = values[rows]
            if method != "noisy":
                chosen = {"chosen": 1.0 + index, "validation_psnr_db": {"1.0": 20.0}}
                facts[method] = {"setting": "factor", **chosen}
        write_arrays(trials / "classical" / str(std) / "classical.npz", arrays)
        write_json(trials / "classical" / str(std) / "classical.json", facts)
        for index, (model, (val_mse, test_mse)) in enumerate(MODEL_MSE.items()):
            scale = 1 + std
            test = per_image(test_mse * scale, 40 + 10 * level + index, shared)
            val = np.random.default_rng(60).uniform(0.5, 1.5, VAL_IMAGES)  # alike: by the mean
            scores = {"mse": test, "bce": 5 * test, "val_mse": val * val_mse * scale / val.mean()}
            write_arrays(trials / "models" / f"{model}-{std}" / "scores.npz", scores)
    return params, trials, rows


def test_denoising_report_stands_the_validation_favourite_for_the_autoencoders(
    denoising_setup, tmp_path
):
    from aezoo.stages.study import denoising_report
    from aezoo.statistics import psnr_per_image

    params, trials, rows = denoising_setup
    out = tmp_path / "reports"
    denoising_report(params, trials, out)
    assert (out / "denoising.png").read_bytes().startswith(b"\x89PNG")

    frame = pd.read_csv(out / "denoising.csv")
    methods = [*CLASSICAL_PSNR, *REPORT_MODELS, "autoencoder"]
    assert len(frame) == len(REPORT_STDS) * len(methods)
    assert list(frame["method"]) == methods * len(REPORT_STDS)
    assert list(frame["noise_std"]) == [std for std in REPORT_STDS for _ in methods]
    assert set(frame["model"]) == {"strided"}  # best on validation, though worse on test
    for std in REPORT_STDS:
        at = frame[frame["noise_std"] == std].set_index("method")
        assert at.loc["pca_dense", "psnr_db"] > at.loc["strided", "psnr_db"]  # pca_dense: test
        assert at.loc["autoencoder", "psnr_db"] == at.loc["strided", "psnr_db"]
        conv = psnr_per_image(scores_of(trials / "models" / f"strided-{std}")["mse"])
        assert at.loc["strided", "psnr_db"] == pytest.approx(conv[rows].mean(), rel=1e-5)
        assert at.loc["autoencoder", "full_psnr_db"] == pytest.approx(conv.mean(), rel=1e-5)
        assert at.loc["autoencoder", "subset_images"] == REPORT_SUBSET
        assert at.loc["autoencoder", "full_images"] == IMAGES
        assert at.loc["autoencoder", "rival"] == "bm3d"

    markdown = (out / "denoising.md").read_text()
    assert "| noise std | noisy input (clipped) | Gaussian filter |" in markdown
    assert "| strided | pca_dense | autoencoder (best on validation) |" in markdown
    verdict_rows = [line for line in markdown.splitlines() if line.startswith("| 0.25 | strided |")]
    assert len(verdict_rows) == 1
    assert "| 0.5 | factor 2 | factor 3 | factor 4 | factor 5 | factor 6 |" in markdown


def test_denoising_report_names_a_missing_trial(denoising_setup, tmp_path):
    from aezoo.stages.study import denoising_report

    params, trials, _ = denoising_setup
    out = tmp_path / "reports"
    (trials / "models" / "pca_dense-0.5" / "scores.npz").unlink()
    with pytest.raises(DataError) as caught:
        denoising_report(params, trials, out)
    message = str(caught.value)
    assert "pca_dense-0.5/scores.npz: no such file" in message
    assert "denoise_trial@pca_dense-0.5" in message
    assert not out.exists()  # nothing half-written


def test_denoising_report_names_a_trial_without_validation_scores(denoising_setup, tmp_path):
    from aezoo.stages.study import denoising_report

    params, trials, _ = denoising_setup
    scores = trials / "models" / "strided-0.25" / "scores.npz"
    write_arrays(scores, {"mse": np.ones(IMAGES), "bce": np.ones(IMAGES)})  # not a denoiser
    with pytest.raises(DataError, match=r"strided-0\.25/scores\.npz: missing the arrays val_mse"):
        denoising_report(params, trials, tmp_path / "reports")


def test_denoising_report_names_a_missing_classical_level(denoising_setup, tmp_path):
    from aezoo.stages.study import denoising_report

    params, trials, _ = denoising_setup
    (trials / "classical" / "0.5" / "classical.npz").unlink()
    with pytest.raises(DataError) as caught:
        denoising_report(params, trials, tmp_path / "reports")
    assert "0.5/classical.npz: no such file" in str(caught.value)
    assert "denoise_classical@0.5" in str(caught.value)


def test_study_report_entry_point_writes_the_denoising_study(
    denoising_setup, tmp_path, base_params
):
    _, trials, _ = denoising_setup
    raw = denoising_raw(base_params, noise_levels=list(REPORT_STDS), test_images=REPORT_SUBSET)
    raw["studies"]["denoising"]["models"] = {
        model: base_params["studies"]["denoising"]["models"][model] for model in REPORT_MODELS
    }
    params = write_params(tmp_path / "params.yaml", raw)
    out = tmp_path / "reports"
    result = stage(
        "study_report.py", "denoising", "--trials", str(trials), "--out", str(out), params=params
    )
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in out.iterdir()) == [
        "denoising.csv",
        "denoising.md",
        "denoising.png",
    ]
    assert "std 0.25: autoencoder (strided) - BM3D" in result.stdout


@pytest.mark.parametrize("script", ["denoise_trial.py", "denoise_classical.py"])
def test_denoising_stages_name_an_unknown_noise_level_and_the_known_ones(
    tmp_path, base_params, script
):
    out = tmp_path / "level"
    model = [next(iter(base_params["studies"]["denoising"]["models"]))]
    args = [*(model if script == "denoise_trial.py" else []), "0.3", "--out", str(out)]
    result = stage(script, *args)
    known = ", ".join(f"{std:g}" for std in base_params["studies"]["denoising"]["noise_levels"])
    expected = f"error: studies.denoising: no noise level 0.3 (known: {known})"
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    # denoise_classical imports TensorFlow (and logs) before it checks the level: only the
    # last line is the error there
    assert result.stderr.strip().splitlines()[-1] == expected, result.stderr
    assert not out.exists()


def test_denoising_report_finds_a_level_however_dvc_spelled_it(denoising_setup, tmp_path):
    """DVC names the directories from params.yaml's text (``1`` or ``1.0``), the report
    knows the level as a number: ``0.50`` is the level 0.5."""
    from aezoo.stages.study import denoising_report

    params, trials, _ = denoising_setup
    (trials / "classical" / "0.5").rename(trials / "classical" / "0.50")
    for model in REPORT_MODELS:
        (trials / "models" / f"{model}-0.5").rename(trials / "models" / f"{model}-0.50")
    denoising_report(params, trials, tmp_path / "reports")
    frame = pd.read_csv(tmp_path / "reports" / "denoising.csv")
    assert 0.5 in set(frame["noise_std"])
