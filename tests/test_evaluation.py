"""The evaluate stage on small real subsets: every figure present, baselines beside them."""

import json
import math

import keras
import numpy as np
import pytest
from scipy import ndimage

from aezoo import metrics
from aezoo.config import EvaluationConfig, parse_params
from aezoo.data import Split, load_prepared, to_unit_float
from aezoo.evaluation import (
    LoadedModels,
    figure_arrays,
    filter_baselines,
    pca_baseline,
    pca_components,
    per_image_bce,
    per_image_mse,
    probe_correct,
    vae_bounds,
    vae_bounds_per_image,
)
from aezoo.stages import load_inputs
from aezoo.stages.evaluate import evaluate
from aezoo.stages.loading import load_models

QUALITY = {"mse", "bce", "psnr_db", "ssim"}


@pytest.fixture(scope="module")
def zoo(small_zoo):
    """dense16, a conv denoiser and three VAEs, trained briefly and evaluated (conftest)."""
    return small_zoo


def _metrics(work, name):
    return json.loads((work / "reports" / name / "metrics.json").read_text())


def _facts(work, name):
    return json.loads((work / "reports" / name / "evaluate.json").read_text())


@pytest.mark.integration
def test_plain_variant_has_reconstruction_probe_and_pca_baseline(zoo):
    _, work = zoo
    result = _metrics(work, "dense16")
    assert set(result["reconstruction"]) == QUALITY
    assert 0 < result["reconstruction"]["mse"] < 0.2
    assert result["code"]["probe_accuracy"] > 0.3  # chance is 0.1
    assert "corrupted_input" not in result and "vae" not in result
    assert _facts(work, "dense16") == {"test_images": 512, "code_size": 16, "pca_components": 16}


@pytest.mark.integration
def test_metrics_hold_only_the_figures_that_judge_the_model_and_facts_the_rest(zoo):
    """metrics.json (a DVC metric) has test figures only; counts and the settings the
    baselines chose are facts, in evaluate.json."""
    params, work = zoo
    for name, spec in params.variants.items():
        result, facts = _metrics(work, name), _facts(work, name)
        sections = {"reconstruction", "code", "baselines"}
        baselines = {"pca"}
        expected_facts = {"test_images", "code_size", "pca_components"}
        if spec.denoising:
            sections |= {"corrupted_input", "psnr_gain_db"}
            baselines |= {"pca_denoise", "gaussian_filter", "median_filter"}
            expected_facts |= {"gaussian_filter_sigma", "median_filter_size"}
        if spec.variational:
            sections.add("vae")
            expected_facts.add("iwae_samples")
            assert set(result["vae"]) == {"neg_elbo", "iwae_nll"}, name
            assert facts["iwae_samples"] == params.evaluation.iwae_samples
        assert set(result) == sections, name
        assert set(result["baselines"]) == baselines, name
        assert set(result["code"]) == {"probe_accuracy", "mean_activation", "near_zero_fraction"}
        assert set(result["baselines"]["pca"]) == QUALITY | {"probe_accuracy"}
        for baseline in ("gaussian_filter", "median_filter"):
            assert set(result["baselines"].get(baseline, QUALITY)) == QUALITY, (name, baseline)
        assert set(facts) == expected_facts, name
        assert facts["code_size"] == spec.code_size and facts["test_images"] == 512
        assert facts["pca_components"] == pca_components(spec) == min(spec.code_size, 784)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "specific"),
    [
        ("dense16", {"code_map_pca", "code_map_pca_explained", "code_map_tsne"}),
        ("conv_denoise", {"triplet_indices", "triplet_outputs", "code_map_tsne"}),
        ("vae", {"samples", "interpolation", "interpolation_pairs", "code_map_tsne"}),
    ],
)
def test_test_outputs_hold_what_the_figures_show(zoo, name, specific):
    params, work = zoo
    with np.load(work / "test_outputs" / f"{name}.npz") as archive:
        arrays = {key: archive[key] for key in archive.files}
    assert specific <= set(arrays)
    test = load_prepared(work / "data" / "clean.npz")["test"]
    chosen = arrays["grid_indices"]
    assert list(test.y[chosen]) == [i % 10 for i in range(params.render.grid_digits)]  # 0-9, 0..
    assert arrays["grid_outputs"].shape == (len(chosen), 28, 28)
    assert np.isfinite(arrays["grid_outputs"]).all()
    count = min(params.render.code_map_samples, len(test))
    np.testing.assert_array_equal(arrays["code_map_labels"], test.y[:count])
    if "code_map_tsne" in arrays:
        assert arrays["code_map_tsne"].shape == arrays["code_map_pca"].shape == (count, 2)
        assert 0 < float(arrays["code_map_pca_explained"]) <= 1
    if name == "vae":
        side, steps = params.render.vae_grid_side, params.render.interpolation_steps
        assert arrays["samples"].shape == (side * side, 28, 28)
        pairs = arrays["interpolation_pairs"]
        assert arrays["interpolation"].shape == (len(pairs), steps, 28, 28) and len(pairs) == 4


@pytest.mark.integration
@pytest.mark.parametrize("name", ["dense16", "conv_denoise"])
def test_test_outputs_hold_the_validation_errors_sorted(zoo, name):
    """The out-of-distribution reference: each validation image's MSE, from what the model
    is fed and, for a denoiser, from clean images; recomputed here from the saved model."""
    params, work = zoo
    spec = params.variant(name)
    with np.load(work / "test_outputs" / f"{name}.npz") as archive:
        stored = {key: archive[key] for key in archive.files if key.startswith("validation")}
    expected = {"validation_mse"} | ({"validation_mse_clean_input"} if spec.denoising else set())
    assert set(stored) == expected
    clean = load_prepared(work / "data" / "clean.npz")
    inputs = load_inputs(work / "data", spec.input, clean)
    autoencoder = load_models(work / "models" / name, ("autoencoder",))["autoencoder"]
    target = to_unit_float(clean["val"].x)
    fed = {"validation_mse": inputs["val"].x, "validation_mse_clean_input": clean["val"].x}
    for key in stored:
        output = autoencoder.predict(to_unit_float(fed[key])[..., None], verbose=0)
        np.testing.assert_allclose(stored[key], np.sort(per_image_mse(target, output)), atol=1e-6)
        assert len(stored[key]) == len(clean["val"]) and np.all(np.diff(stored[key]) >= 0)


@pytest.mark.integration
def test_denoiser_reports_input_quality_gain_and_classical_baselines(zoo):
    _, work = zoo
    result = _metrics(work, "conv_denoise")
    assert result["psnr_gain_db"] == pytest.approx(
        result["reconstruction"]["psnr_db"] - result["corrupted_input"]["psnr_db"]
    )
    assert result["psnr_gain_db"] > 0
    baselines = result["baselines"]
    assert {"pca", "pca_denoise", "gaussian_filter", "median_filter"} <= set(baselines)
    facts = _facts(work, "conv_denoise")
    assert facts["gaussian_filter_sigma"] in zoo[0].evaluation.filter_sigmas
    assert facts["median_filter_size"] in zoo[0].evaluation.filter_sizes
    # the code is overcomplete (1,568 > 784): PCA keeps every pixel, so it reconstructs exactly
    assert facts["pca_components"] == 784 and baselines["pca"]["mse"] < 1e-10
    assert math.isfinite(baselines["gaussian_filter"]["psnr_db"])
    # probes learn and are scored on codes of corrupted images alike (chance is 0.1)
    assert result["code"]["probe_accuracy"] > 0.3
    assert baselines["pca_denoise"]["probe_accuracy"] > 0.3


@pytest.mark.integration
@pytest.mark.parametrize("name", ["vae", "conv_vae"])
def test_iwae_bound_is_at_least_as_tight_as_the_elbo(zoo, name):
    _, work = zoo
    result = _metrics(work, name)["vae"]
    assert 0 < result["iwae_nll"] <= result["neg_elbo"]
    models = LoadedModels(**load_models(work / "models" / name))
    images = load_prepared(work / "data" / "clean.npz")["test"].x[:50]
    more = vae_bounds(models, images, images, samples=200, batch_size=2000)
    fewer = vae_bounds(models, images, images, samples=2, batch_size=2000)
    assert more["iwae_nll"] <= fewer["iwae_nll"] + 0.5  # more samples: a tighter bound
    assert more["iwae_nll"] <= more["neg_elbo"]


@pytest.mark.integration
def test_vae_bounds_encode_the_inputs_and_score_the_targets(zoo):
    """A denoising VAE's bound: q(z | corrupted input) proposes codes, and the clean target is
    scored; still a bound on the clean image's NLL."""
    _, work = zoo
    models = LoadedModels(**load_models(work / "models" / "vae"))
    clean = load_prepared(work / "data" / "clean.npz")["test"].x[:50]
    noisy = load_prepared(work / "data" / "gauss05.npz")["test"].x[:50]

    def bounds(inputs, targets):
        return vae_bounds(models, inputs, targets, samples=50, batch_size=2000)

    clean_to_clean, noisy_to_clean, noisy_to_noisy = (
        bounds(clean, clean),
        bounds(noisy, clean),
        bounds(noisy, noisy),
    )
    assert noisy_to_clean["iwae_nll"] <= noisy_to_clean["neg_elbo"]
    # a VAE trained on clean digits proposes worse codes from a noisy input ...
    assert noisy_to_clean["neg_elbo"] > clean_to_clean["neg_elbo"]
    # ... and the noisy image itself, as a target, is far less likely than the clean one
    assert noisy_to_noisy["neg_elbo"] > noisy_to_clean["neg_elbo"] + 100


@pytest.mark.integration
def test_a_two_d_vae_decodes_its_manifold_and_interpolations(zoo):
    params, work = zoo
    for name in ("vae2d", "conv_vae"):
        with np.load(work / "test_outputs" / f"{name}.npz") as archive:
            side = params.render.manifold_side
            assert archive["manifold"].shape == (side, side, 28, 28)
            assert archive["manifold_grid"].shape == (side,)
            assert np.all(np.diff(archive["manifold_grid"]) > 0)
            assert archive["code_map_points"].shape == (300, 2)
            assert "code_map_tsne" not in archive.files  # a 2-D code is shown as it is
            assert archive["manifold"].min() >= 0 and archive["manifold"].max() <= 1  # sigmoid


@pytest.mark.integration
@pytest.mark.parametrize("name", ["vae2d", "conv_vae", "conv_denoise"])
def test_figure_arrays_trace_no_graph(zoo, name, monkeypatch):
    """The figures' arrays come from direct model calls: ``model.predict`` traces a graph for
    each new input shape, and their many small arrays of different sizes made TensorFlow warn
    of retracing in every VAE's evaluate log."""
    params, work = zoo

    def refuse(*args, **kwargs):
        raise AssertionError("figure_arrays called model.predict")

    models = LoadedModels(**load_models(work / "models" / name))
    spec = params.variant(name)
    clean = load_prepared(work / "data" / "clean.npz")
    inputs = load_inputs(work / "data", spec.input, clean)
    with np.load(work / "test_outputs" / f"{name}.npz") as archive:
        written = {key: archive[key] for key in archive.files}
    monkeypatch.setattr(keras.Model, "predict", refuse)
    arrays = figure_arrays(spec, params, models, clean, inputs)
    for key in ("grid_outputs", "samples", "manifold", "interpolation", "triplet_outputs"):
        if key in arrays:
            np.testing.assert_allclose(arrays[key], written[key], atol=1e-6, err_msg=key)


@pytest.mark.integration
def test_missing_model_is_named(tmp_path, prepared_small, raw_params):
    from aezoo.errors import DataError

    params = parse_params(raw_params)
    with pytest.raises(DataError, match=r"autoencoder\.keras: no such file"):
        evaluate(
            params,
            "dense16",
            prepared_small,
            tmp_path / "none",
            tmp_path,
            test_outputs=tmp_path / "dense16.npz",
        )


# ------------------------------------------- per-image values, on synthetic arrays


def _synthetic_split(count: int, seed: int) -> Split:
    """``count`` uint8 28x28 images in 10 classes: a fixed random template per class (the
    same for every seed) plus noise, so PCA and a digit probe have something to find."""
    templates = np.random.default_rng(1234).uniform(0, 200, (10, 28, 28))
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    images = templates[labels] + rng.normal(0, 20, (count, 28, 28))
    return Split(np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8))


def test_per_image_errors_average_to_the_overall_metrics():
    rng = np.random.default_rng(0)
    target = rng.uniform(0, 1, (12, 28, 28)).astype(np.float32)
    prediction = rng.uniform(0, 1, (12, 28, 28)).astype(np.float32)
    prediction[0, :3] = 0.0  # exact 0 and 1, which the BCE must clip as Keras does
    prediction[1, :3] = 1.0
    mse, bce = per_image_mse(target, prediction), per_image_bce(target, prediction)
    assert mse.shape == bce.shape == (12,)
    assert mse.dtype == bce.dtype == np.float32
    assert np.isfinite(bce).all()
    assert float(mse.mean()) == pytest.approx(metrics.mse(target, prediction), rel=1e-6)
    bce_all = metrics.binary_crossentropy(target, prediction)
    assert float(bce.mean()) == pytest.approx(bce_all, rel=1e-6)
    for i in (0, 1, 7):  # each value is that image's own figure
        assert mse[i] == pytest.approx(metrics.mse(target[i], prediction[i]), rel=1e-6)
        expected = metrics.binary_crossentropy(target[i], prediction[i])
        assert bce[i] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "error",
    [
        per_image_mse,
        per_image_bce,
    ],
)
def test_per_image_errors_take_the_models_output_shape(error):
    """The autoencoder predicts ``(n, 28, 28, 1)``; the targets are ``(n, 28, 28)`` (as
    the trial stage passes them): the values are those of the same images, flattened."""
    rng = np.random.default_rng(1)
    target = rng.uniform(0, 1, (12, 28, 28)).astype(np.float32)
    prediction = rng.uniform(0, 1, (12, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(
        error(target, prediction[..., None]), error(target, prediction), rtol=1e-6
    )


def test_probe_correct_marks_each_test_image_and_its_mean_is_the_accuracy():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (10, 6))

    def codes(labels):
        return centres[labels] + rng.normal(0, 0.1, (len(labels), 6))

    train_labels = np.arange(200) % 10
    test_labels = np.arange(50) % 10
    wrong = np.array([3, 17, 29, 41, 44])  # labels no probe can match: 5 of 50 wrong
    scored = test_labels.copy()
    scored[wrong] = (scored[wrong] + 1) % 10
    correct = probe_correct(codes(train_labels), train_labels, codes(test_labels), scored)
    assert correct.shape == (50,) and correct.dtype == bool
    assert not correct[wrong].any() and np.delete(correct, wrong).all()
    assert float(correct.mean()) == pytest.approx(0.9)


def test_pca_baseline_per_image_values_average_to_its_figures():
    train, test = _synthetic_split(300, seed=1), _synthetic_split(100, seed=2)
    result, denoising, per_image = pca_baseline(
        train, train.x, test.x, test, components=8, probe_limit=None
    )
    assert denoising is None  # the clean images themselves: no denoising baseline
    assert set(per_image) == {"pca_mse", "pca_probe_correct"}
    assert per_image["pca_mse"].shape == per_image["pca_probe_correct"].shape == (100,)
    assert float(per_image["pca_mse"].mean()) == pytest.approx(result["mse"], rel=1e-5)
    probe = per_image["pca_probe_correct"]
    assert float(probe.mean()) == pytest.approx(result["probe_accuracy"])

    # Corrupted inputs: the per-image values are those of PCA denoising, not of the clean test.
    rng = np.random.default_rng(3)
    noisy = lambda split: np.clip(  # noqa: E731
        split.x + rng.normal(0, 60, split.x.shape), 0, 255
    ).astype(np.uint8)
    clean_result, denoising, per_image = pca_baseline(
        train, noisy(train), noisy(test), test, components=8, probe_limit=None
    )
    assert clean_result == pytest.approx(result)  # the clean figures do not depend on inputs
    assert denoising is not None
    assert denoising["mse"] > result["mse"]
    assert float(per_image["pca_mse"].mean()) == pytest.approx(denoising["mse"], rel=1e-5)
    probe = per_image["pca_probe_correct"]
    assert float(probe.mean()) == pytest.approx(denoising["probe_accuracy"])


def test_filter_widths_are_chosen_on_the_validation_split_only():
    """Validation: flat images under heavy noise, where the widest filter is best. Test:
    sharp random images, fed uncorrupted, where the narrowest would be. The widths are the
    validation's choice, and the test figures are those of that width."""
    rng = np.random.default_rng(0)
    flat = np.full((40, 28, 28), 128, np.uint8)
    val = Split(flat, np.arange(40) % 10)
    val_inputs = np.clip(flat + rng.normal(0, 80, flat.shape), 0, 255).astype(np.uint8)
    sharp = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    test = Split(sharp, np.arange(30) % 10)
    config = EvaluationConfig(
        batch_size=32,
        iwae_samples=1,
        probe_train_samples=None,
        filter_sizes=[1, 3, 5],
        filter_sigmas=[0.5, 1.0, 2.0],
    )

    def test_mse(apply):  # what the test split alone would choose (checked to be narrow)
        return metrics.mse(sharp / 255.0, apply(sharp / 255.0))

    assert test_mse(lambda x: ndimage.gaussian_filter(x, sigma=(0, 0.5, 0.5))) < test_mse(
        lambda x: ndimage.gaussian_filter(x, sigma=(0, 2.0, 2.0))
    )
    results, per_image = filter_baselines(val_inputs, val, sharp, test, config)
    assert results["gaussian_filter"]["sigma"] == 2.0
    assert results["median_filter"]["size"] == 5
    assert set(per_image) == {"gaussian_filter_mse", "median_filter_mse"}
    for name in ("gaussian_filter", "median_filter"):
        values = per_image[f"{name}_mse"]
        assert values.shape == (30,)
        assert float(values.mean()) == pytest.approx(results[name]["mse"], rel=1e-5)
        assert results[name]["mse"] > 0  # a size-1 median filter would be exact on test


def test_vae_bounds_are_the_means_of_the_per_image_bounds():
    """On an untrained two-unit VAE (no training needed for the bookkeeping): one value per
    image, over several batches, whose means are what vae_bounds reports."""
    import keras

    images = keras.Input((28, 28, 1))
    flat = keras.layers.Flatten()(images)
    mean = keras.layers.Dense(2)(flat)
    log_var = keras.layers.Dense(2)(flat)
    encoder = keras.Model(images, [mean, log_var, mean])
    code = keras.Input((2,))
    decoded = keras.layers.Reshape((28, 28, 1))(keras.layers.Dense(784, "sigmoid")(code))
    decoder = keras.Model(code, decoded)
    models = LoadedModels(autoencoder=None, encoder=encoder, decoder=decoder)
    digits = _synthetic_split(13, seed=0).x  # 13 images in batches of 20 // 5 = 4

    per_image = vae_bounds_per_image(models, digits, digits, samples=5, batch_size=20, seed=3)
    means = vae_bounds(models, digits, digits, samples=5, batch_size=20, seed=3)
    assert set(per_image) == set(means) == {"neg_elbo", "iwae_nll"}
    for key, values in per_image.items():
        assert values.shape == (13,) and np.isfinite(values).all() and (values > 0).all()
        assert means[key] == pytest.approx(float(values.mean()), rel=1e-12)
