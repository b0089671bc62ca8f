"""params.yaml validation: every bad key is named with its full path."""

import copy

import pytest
from conftest import ROOT

from aezoo.config import ConvVariant, GaussianNoise, load_params, parse_params
from aezoo.errors import ConfigError


def _error_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as error:
        parse_params(raw)
    return str(error.value)


def test_repository_params_are_valid():
    params = load_params(ROOT / "params.yaml")
    assert params.data.validation_size == 5000
    assert {"dense16", "conv", "vae"} <= set(params.variants)
    assert params.variant("conv").code_size == 4 * 4 * 8
    assert params.variant("conv_denoise").code_size == 7 * 7 * 32
    assert len(params.variants) == 16


def test_negative_noise_level_names_the_key(raw_params):
    raw_params["corruptions"]["gauss05"]["std"] = -0.5
    with pytest.raises(ConfigError, match=r"corruptions\.gauss05\.std: .*greater than 0.*-0\.5"):
        parse_params(raw_params)


def test_misspelled_key_is_named_with_a_suggestion(raw_params):
    raw_params["corruptions"]["gauss05"]["stdd"] = raw_params["corruptions"]["gauss05"].pop("std")
    with pytest.raises(ConfigError) as error:
        parse_params(raw_params)
    assert "corruptions.gauss05.stdd: unknown key (did you mean 'std'?" in str(error.value)


def test_misspelled_top_level_and_nested_keys(raw_params):
    raw_params["trainig"] = {}
    raw_params["variants"]["conv"]["epoch"] = 3
    message = _error_of(raw_params)
    assert "trainig: unknown key (did you mean 'training'?" in message
    assert "variants.conv.epoch: unknown key (did you mean 'epochs'?" in message


def test_wrong_type_and_unknown_architecture(raw_params):
    raw_params["variants"]["dense16"]["batch_size"] = "big"
    raw_params["variants"]["conv"]["architecture"] = "convolutional"
    message = _error_of(raw_params)
    assert "variants.dense16.batch_size: Input should be a valid integer" in message
    assert "variants.conv: Input tag 'convolutional'" in message


def test_the_retired_family_key_is_unknown(raw_params):
    raw_params["variants"]["vae"]["family"] = "vae"
    assert "variants.vae.family: unknown key" in _error_of(raw_params)


def test_a_variational_conv_is_rejected_naming_the_variant(raw_params):
    raw_params["variants"]["conv"].update(objective="variational", loss="elbo")
    message = _error_of(raw_params)
    assert "variants.conv: objective 'variational' needs a dense code" in message
    assert message.count("\n  ") == 1  # that one error, nothing else


@pytest.mark.parametrize(
    ("name", "changes", "wanted"),
    [
        (
            "dense32",
            {"loss": "elbo"},
            "objective 'autoencoder' needs loss 'mse' or 'bce', got 'elbo'",
        ),
        ("vae", {"loss": "bce"}, "objective 'variational' needs loss 'elbo', got 'bce'"),
        (
            "pca_dense128",
            {"output_activation": "sigmoid"},
            "pca_start needs objective 'autoencoder' with code_activation and "
            "output_activation 'linear'",
        ),
        ("vae", {"objective": "autoencoder"}, "objective 'autoencoder' needs loss 'mse' or 'bce'"),
        (
            "dense32",
            {"output_activation": "linear"},
            "loss 'bce' compares probabilities: output_activation must be 'sigmoid', got 'linear'",
        ),
        (
            "conv_vae",
            {"output_activation": "tanh"},
            "loss 'elbo' compares probabilities: output_activation must be 'sigmoid', got 'tanh'",
        ),
    ],
)
def test_objective_loss_and_output_must_fit_together(raw_params, name, changes, wanted):
    raw_params["variants"][name].update(changes)
    assert f"variants.{name}: {wanted}" in _error_of(raw_params)


def test_objective_and_architecture_set_the_variants_properties():
    params = load_params(ROOT / "params.yaml")
    assert {name for name, spec in params.variants.items() if spec.variational} == {
        "vae",
        "vae2d",
        "conv_vae",
        "denoise_vae",
    }
    for name, spec in params.variants.items():
        assert spec.variational == (spec.loss == "elbo"), name
        assert spec.denoising == (spec.input != "clean"), name
    conv_vae = params.variant("conv_vae")
    assert (conv_vae.architecture, conv_vae.objective, conv_vae.code_size) == (
        "strided_conv",
        "variational",
        2,
    )
    denoise_vae = params.variant("denoise_vae")
    assert denoise_vae.variational and denoise_vae.denoising
    assert denoise_vae.input == "gauss05_unclipped"


@pytest.mark.parametrize(
    "path",
    [
        "variants.dense16.activation",
        "variants.dense16.activity_l1",
        "variants.dense16.fresh_noise",
        "variants.dense16.output_activation",
        "variants.dense16.pca_start",
        "variants.conv.kernel_size",
        "variants.strided_denoise.hidden_units",
        "variants.vae.optimizer.learning_rate",
        "corruptions.gauss05.clip",
        "corruptions.gauss05.mean",
        "corruptions.salt_pepper.salt_ratio",
        "corruptions.mask.fill",
        "data.validation_size",
        "data.test_subset",
        "training.max_epochs",
        "training.patience",
        "evaluation.iwae_samples",
        "render.manifold_side",
        "comparison.bootstrap_resamples",
        "comparison.confidence_level",
        "comparison.seed",
        "studies.seeds.variants",
        "studies.seeds.seeds",
        "studies.frontier.code_sizes",
        "studies.frontier.models",
    ],
)
def test_every_setting_that_changes_a_number_is_required(raw_params, path):
    """No silent default: deleting the key from params.yaml is an error naming it."""
    *parents, key = path.split(".")
    section = raw_params
    for part in parents:
        section = section[part]
    del section[key]
    message = _error_of(raw_params)
    assert f"{path}: Field required" in message
    assert message.count("\n  ") == 1


@pytest.mark.parametrize(
    "section", ["data", "training", "evaluation", "render", "comparison", "studies"]
)
def test_the_sections_have_no_defaults(raw_params, section):
    del raw_params[section]
    assert f"{section}: Field required" in _error_of(raw_params)


def test_epochs_are_capped_by_max_epochs(raw_params):
    params = parse_params(raw_params)
    assert params.epochs("dense32") == 50 and params.epochs("dense16") == 11
    raw_params["training"]["max_epochs"] = 20
    capped = parse_params(raw_params)
    assert capped.epochs("dense32") == 20 and capped.epochs("dense16") == 11
    with pytest.raises(ConfigError, match=r"variants\.nope: no such variant"):
        capped.epochs("nope")


def test_a_full_run_has_all_the_data_and_all_its_epochs(raw_params):
    params = parse_params(raw_params)
    assert params.data.full
    assert all(params.is_full_run(name) for name in params.variants)

    raw_params["training"]["max_epochs"] = 11  # caps dense32 (50), not dense16 (11)
    capped = parse_params(raw_params)
    assert not capped.is_full_run("dense32") and capped.is_full_run("dense16")

    for subset in ("train_subset", "val_subset", "test_subset"):
        raw = {**raw_params, "data": {**raw_params["data"], subset: 100}}
        raw["training"] = {**raw_params["training"], "max_epochs": None}
        subset_run = parse_params(raw)
        assert not subset_run.data.full, subset
        assert not any(subset_run.is_full_run(name) for name in subset_run.variants), subset


@pytest.mark.parametrize("patience", [0, -3, 2.5, "ten"])
def test_patience_must_be_a_positive_whole_number_of_epochs(raw_params, patience):
    """A patience of 0 would stop after the first epoch that is not a new lowest; none (null)
    is how to train every epoch."""
    raw_params["training"]["patience"] = patience
    message = _error_of(raw_params)
    assert message.count("\n  ") == 1
    assert "training.patience: " in message
    if patience in (0, -3):
        assert "greater than 0" in message


def test_patience_null_trains_every_epoch_and_a_number_is_kept(raw_params):
    assert parse_params(raw_params).training.patience == 10  # params.yaml's
    raw_params["training"]["patience"] = None
    assert parse_params(raw_params).training.patience is None
    raw_params["training"]["patience"] = 1
    assert parse_params(raw_params).training.patience == 1


def test_input_must_name_a_corruption(raw_params):
    raw_params["variants"]["conv_denoise"]["input"] = "gauss5"
    with pytest.raises(ConfigError, match=r"variants\.conv_denoise\.input: unknown input 'gauss5'"):
        parse_params(raw_params)


def test_missing_required_key(raw_params):
    del raw_params["variants"]["dense16"]["epochs"]
    with pytest.raises(ConfigError, match=r"variants\.dense16\.epochs: Field required"):
        parse_params(raw_params)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_params(tmp_path / "missing.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)


def test_conv_layout_that_cannot_return_to_28_pixels_is_an_error(raw_params):
    from aezoo.models import build

    raw_params["variants"]["conv"]["encoder_filters"] = [8, 8, 8, 8]
    raw_params["variants"]["conv"]["decoder_filters"] = [8, 8]
    spec = parse_params(raw_params).variant("conv")
    assert isinstance(spec, ConvVariant)
    with pytest.raises(ConfigError, match=r"variants\.conv: .*28x28"):
        build("conv", spec)


def test_unknown_variant_lists_the_known_ones():
    params = load_params(ROOT / "params.yaml")
    with pytest.raises(ConfigError, match=r"variants\.nope: no such variant \(known: dense16"):
        params.variant("nope")


# ------------------------------------------------ pca_start, comparison and studies


def test_every_dense_variant_must_say_whether_it_starts_as_pca(raw_params):
    """pca_start has no default: each dense variant spells it out, and leaving it out of
    any of them is an error naming that variant's key."""
    dense = [
        name for name, spec in raw_params["variants"].items() if spec["architecture"] == "dense"
    ]
    assert dense and all("pca_start" in raw_params["variants"][name] for name in dense)
    for name in dense:
        raw = copy.deepcopy(raw_params)
        del raw["variants"][name]["pca_start"]
        message = _error_of(raw)
        assert f"variants.{name}.pca_start: Field required" in message, name
        assert message.count("\n  ") == 1, name


def test_repository_studies_are_valid_at_every_code_size():
    params = load_params(ROOT / "params.yaml")
    seeds, frontier = params.studies.seeds, params.studies.frontier
    assert set(seeds.variants) <= set(params.variants)  # the seed study retrains zoo variants
    assert len(set(seeds.seeds)) == len(seeds.seeds) >= 2
    assert frontier.models and frontier.code_sizes
    assert all(0 < size <= 784 for size in frontier.code_sizes)
    for model in frontier.models:
        for size in frontier.code_sizes:
            spec = frontier.variant(model, size)
            assert spec.code_size == size, (model, size)
            assert not spec.denoising, (model, size)  # the frontier compares clean models
    assert 0 < params.comparison.confidence_level < 1
    assert params.comparison.bootstrap_resamples >= 100


def test_an_unknown_frontier_model_lists_the_known_ones():
    frontier = load_params(ROOT / "params.yaml").studies.frontier
    with pytest.raises(ConfigError, match=r"studies\.frontier\.models\.nope: no such model"):
        frontier.variant("nope", 8)


def _frontier_error(raw_params: dict, change) -> str:
    change(raw_params["studies"]["frontier"])
    message = _error_of(raw_params)
    assert "studies.frontier" in message
    return message


@pytest.mark.parametrize(
    ("key", "value"),
    [("activation", "nope"), ("code_size", 8), ("epochs", 0), ("activaton", "relu")],
)
def test_a_bad_frontier_model_names_the_study_the_model_and_the_key(raw_params, key, value):
    """A frontier model is a variant without code_size: a bad value, a code_size of its own
    (code_sizes sets it) or an unknown key is an error naming models.<name>.<key>."""
    model = next(iter(raw_params["studies"]["frontier"]["models"]))
    message = _frontier_error(
        raw_params, lambda frontier: frontier["models"][model].update({key: value})
    )
    assert f"models.{model}.{key}: " in message


def test_a_frontier_model_missing_a_key_names_it(raw_params):
    models = raw_params["studies"]["frontier"]["models"]
    model = next(name for name, spec in models.items() if spec["architecture"] == "dense")
    del models[model]["pca_start"]
    message = _error_of(raw_params)
    assert "studies.frontier" in message and f"models.{model}.pca_start: " in message


@pytest.mark.parametrize("size", [0, -4, 785, 1000])
def test_a_frontier_code_size_outside_1_to_784_names_code_sizes(raw_params, size):
    message = _frontier_error(raw_params, lambda frontier: frontier["code_sizes"].append(size))
    assert "code_sizes: " in message and str(size) in message


@pytest.mark.parametrize(
    ("key", "value", "wanted"),
    [
        ("confidence_level", 1.5, "less than 1"),
        ("confidence_level", 0, "greater than 0"),
        ("bootstrap_resamples", 10, "greater than or equal to 100"),
        ("seed", -1, "greater than or equal to 0"),
    ],
)
def test_a_bad_comparison_setting_names_the_key(raw_params, key, value, wanted):
    raw_params["comparison"][key] = value
    message = _error_of(raw_params)
    assert f"comparison.{key}: " in message and wanted in message
    assert message.count("\n  ") == 1


def test_the_seed_study_needs_two_seeds_at_least(raw_params):
    raw_params["studies"]["seeds"]["seeds"] = [1]
    assert "studies.seeds.seeds: " in _error_of(raw_params)


def test_a_frontier_error_is_one_short_line(raw_params):
    model = next(iter(raw_params["studies"]["frontier"]["models"]))
    raw_params["studies"]["frontier"]["models"][model]["objective"] = "variational"
    message = _error_of(raw_params)
    assert f"studies.frontier.models.{model}: objective 'variational' needs" in message
    assert "'code_sizes'" not in message and len(message) < 300


# ------------------------------------------------------------ the denoising study


def test_repository_denoising_study_is_valid():
    study = load_params(ROOT / "params.yaml").studies.denoising
    assert study.noise_levels and all(0 < std <= 2 for std in study.noise_levels)
    assert study.test_images > 0 and study.validation_images > 0
    for model in study.models:
        spec = study.variant(model)
        assert spec.input == study.INPUT and spec.denoising, model  # each denoises the noise
    assert "input" not in next(iter(study.models.values()))  # the template stays as written


def _denoising_error(raw_params: dict, change) -> str:
    change(raw_params["studies"]["denoising"])
    message = _error_of(raw_params)
    assert "studies.denoising" in message
    return message


def test_a_denoising_model_with_its_own_input_is_refused(raw_params):
    model = next(iter(raw_params["studies"]["denoising"]["models"]))
    message = _denoising_error(
        raw_params, lambda study: study["models"][model].update(input="gauss05")
    )
    assert f"studies.denoising.models.{model}.input: set by the study" in message
    assert message.count("\n  ") == 1


@pytest.mark.parametrize(
    ("key", "value", "wanted"),
    [
        ("activaton", "relu", "Extra inputs are not permitted"),
        ("epochs", 0, "greater than 0"),
        ("loss", "hinge", "Input should be"),
    ],
)
def test_a_bad_denoising_model_names_the_model_and_the_key(raw_params, key, value, wanted):
    model = next(iter(raw_params["studies"]["denoising"]["models"]))
    message = _denoising_error(
        raw_params, lambda study: study["models"][model].update({key: value})
    )
    assert f"studies.denoising.models.{model}.{key}: " in message and wanted in message


def test_a_denoising_model_missing_a_key_names_it(raw_params):
    models = raw_params["studies"]["denoising"]["models"]
    model = next(name for name, spec in models.items() if spec["architecture"] == "dense")
    del models[model]["pca_start"]
    message = _error_of(raw_params)
    assert f"studies.denoising.models.{model}.pca_start: Field required" in message


@pytest.mark.parametrize("std", [0, -0.1, 2.5])
def test_a_noise_level_outside_0_to_2_is_refused(raw_params, std):
    message = _denoising_error(raw_params, lambda study: study["noise_levels"].append(std))
    index = len(raw_params["studies"]["denoising"]["noise_levels"]) - 1
    assert f"studies.denoising.noise_levels.{index}: " in message and f"got {std}" in message


def test_a_noise_level_of_2_is_allowed(raw_params):
    raw_params["studies"]["denoising"]["noise_levels"] = [2]
    assert parse_params(raw_params).studies.denoising.noise_levels == [2.0]


@pytest.mark.parametrize("key", ["noise_levels", "models", "bm3d_sigma_factors"])
def test_the_denoising_study_needs_at_least_one_of_each(raw_params, key):
    raw_params["studies"]["denoising"][key] = {} if key == "models" else []
    assert f"studies.denoising.{key}: " in _error_of(raw_params)


def test_the_study_noise_at_a_known_level_is_unclipped_gaussian_with_the_study_seed(raw_params):
    raw_params["studies"]["denoising"].update(noise_levels=[0.25, 1.0], seed=11)
    study = parse_params(raw_params).studies.denoising
    noise = study.noise(0.25)
    assert isinstance(noise, GaussianNoise)
    assert (noise.kind, noise.mean, noise.std, noise.clip, noise.seed) == (
        "gaussian",
        0.0,
        0.25,
        False,
        11,
    )
    assert study.noise(1).std == 1.0  # an int on the command line is the same level


def test_the_study_noise_at_an_unknown_level_lists_the_known_ones(raw_params):
    raw_params["studies"]["denoising"]["noise_levels"] = [0.1, 0.5, 1.0]
    study = parse_params(raw_params).studies.denoising
    with pytest.raises(ConfigError) as error:
        study.noise(0.3)
    assert str(error.value) == "studies.denoising: no noise level 0.3 (known: 0.1, 0.5, 1)"


def test_an_unknown_denoising_model_lists_the_known_ones(raw_params):
    study = parse_params(raw_params).studies.denoising
    known = ", ".join(raw_params["studies"]["denoising"]["models"])
    with pytest.raises(ConfigError) as error:
        study.variant("nope")
    assert str(error.value) == f"studies.denoising.models.nope: no such model (known: {known})"
