"""params.yaml validation: every bad key is named with its full path."""

import pytest
from conftest import ROOT

from aezoo.config import ConvVariant, load_params, parse_params
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


def test_wrong_type_and_unknown_family(raw_params):
    raw_params["variants"]["dense16"]["batch_size"] = "big"
    raw_params["variants"]["conv"]["family"] = "convolutional"
    message = _error_of(raw_params)
    assert "variants.dense16.batch_size: Input should be a valid integer" in message
    assert "variants.conv: Input tag 'convolutional'" in message


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
