"""The evaluate stage on small real subsets: every figure present, baselines beside them."""

import json
import math

import numpy as np
import pytest

from aezoo.config import parse_params
from aezoo.data import load_prepared
from aezoo.evaluation import LoadedModels, pca_components, vae_bounds
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


def test_plain_variant_has_reconstruction_probe_and_pca_baseline(zoo):
    _, work = zoo
    result = _metrics(work, "dense16")
    assert set(result["reconstruction"]) == QUALITY
    assert 0 < result["reconstruction"]["mse"] < 0.2
    assert result["code"]["probe_accuracy"] > 0.3  # chance is 0.1
    assert "corrupted_input" not in result and "vae" not in result
    assert _facts(work, "dense16") == {"test_images": 512, "code_size": 16, "pca_components": 16}


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
