"""The evaluate stage on small real subsets: every figure present, baselines beside them."""

import json
import math

import numpy as np
import pytest

from aezoo import stages
from aezoo.config import parse_params
from aezoo.data import load_prepared
from aezoo.evaluation import load_models, vae_bounds


@pytest.fixture(scope="module")
def zoo(small_zoo):
    """dense16, a conv denoiser and two VAEs, trained briefly and evaluated (conftest)."""
    return small_zoo


def _metrics(work, name):
    return json.loads((work / "reports" / name / "metrics.json").read_text())


def test_plain_variant_has_reconstruction_probe_and_pca_baseline(zoo):
    _, work = zoo
    result = _metrics(work, "dense16")
    assert set(result["reconstruction"]) == {"mse", "bce", "psnr_db", "ssim"}
    assert 0 < result["reconstruction"]["mse"] < 0.2
    assert result["code"]["probe_accuracy"] > 0.3  # chance is 0.1
    assert result["baselines"]["pca"]["components"] == 16
    assert result["parameters"] == 25888 and result["epochs"] == 2
    assert "corrupted_input" not in result and "vae" not in result


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
    assert baselines["gaussian_filter"]["sigma"] in zoo[0].evaluation.filter_sigmas
    assert baselines["median_filter"]["size"] in zoo[0].evaluation.filter_sizes
    # the code is overcomplete (1,568 > 784): PCA keeps every pixel, so it reconstructs exactly
    assert baselines["pca"]["components"] == 784 and baselines["pca"]["mse"] < 1e-10
    assert math.isfinite(baselines["gaussian_filter"]["psnr_db"])
    # probes learn and are scored on codes of corrupted images alike (chance is 0.1)
    assert result["code"]["probe_accuracy"] > 0.3
    assert baselines["pca_denoise"]["probe_accuracy"] > 0.3


def test_iwae_bound_is_at_least_as_tight_as_the_elbo(zoo):
    _, work = zoo
    result = _metrics(work, "vae")["vae"]
    assert 0 < result["iwae_nll"] <= result["neg_elbo"]
    models = load_models(work / "models" / "vae")
    images = load_prepared(work / "data" / "clean.npz")["test"].x[:50]
    more = vae_bounds(models, images, samples=200, batch_size=2000)
    fewer = vae_bounds(models, images, samples=2, batch_size=2000)
    assert more["iwae_nll"] <= fewer["iwae_nll"] + 0.5  # more samples: a tighter bound


def test_missing_model_is_named(tmp_path, prepared_small, raw_params):
    from aezoo.errors import DataError

    params = parse_params(raw_params)
    with pytest.raises(DataError, match=r"autoencoder\.keras: no such file"):
        stages.evaluate(
            params,
            "dense16",
            prepared_small,
            tmp_path / "none",
            tmp_path,
            test_outputs=tmp_path / "dense16.npz",
        )
