"""The trainer on a small real subset: it learns, it is deterministic, it stops on NaN."""

import subprocess
import sys

import numpy as np
import pytest

from aezoo import stages
from aezoo.config import parse_params
from aezoo.data import load_prepared
from aezoo.errors import TrainingError
from aezoo.training import (
    evaluation_dataset,
    execution_steps,
    train_variant,
    training_dataset,
)

FAMILY_REPRESENTATIVES = ["dense16", "sparse32", "conv", "strided_denoise", "vae"]


def small_params(raw, name, **variant_overrides):
    raw["variants"] = {name: {**raw["variants"][name], **variant_overrides}}
    raw["variants"][name]["batch_size"] = 64
    return parse_params(raw)


def _inputs(params, name, prepared):
    clean = load_prepared(prepared / "clean.npz")
    spec = params.variant(name)
    if spec.input == "clean":
        return clean, clean
    from aezoo.corruption import corrupt_split
    from aezoo.data import Split

    corruption = params.corruption(spec.input)
    noisy = {s: Split(corrupt_split(d.x, corruption, s), d.y) for s, d in clean.items()}
    return clean, noisy


@pytest.mark.parametrize("name", FAMILY_REPRESENTATIVES)
def test_one_epoch_lowers_the_validation_loss(name, raw_params, prepared_small):
    params = small_params(raw_params, name, epochs=1)
    clean, inputs = _inputs(params, name, prepared_small)
    result = train_variant(name, params.variant(name), params, clean, inputs)
    val = evaluation_dataset(inputs["val"].x, clean["val"].x, 64)
    from aezoo.models import LOSSES, build

    untrained = build(name, params.variant(name)).autoencoder
    untrained.compile(loss=LOSSES[params.variant(name).loss])
    initial = untrained.evaluate(val, verbose=0)
    assert result.history["val_loss"][0] < initial
    assert result.progress_frames.shape == (1, 10, 28, 28)
    assert result.facts["epochs"] == 1 and result.facts["parameters"] > 0


def _batches(dataset):
    return [(np.asarray(x), np.asarray(y)) for x, y in dataset]


def test_training_batches_shuffle_every_sample_once_an_epoch():
    images = np.arange(10 * 28 * 28, dtype=np.uint8).reshape(10, 28, 28) % 251
    images[:, 0, 0] = np.arange(10)  # pixel (0, 0) identifies the image
    batches = _batches(training_dataset(images, images, 4, epochs=2, seed=7))
    assert [len(x) for x, _ in batches] == [4, 4, 2, 4, 4, 2]
    for x, y in batches:
        assert x.shape[1:] == (28, 28, 1) and x.dtype == np.float32
        np.testing.assert_array_equal(x, y)
    ids = [round(float(pixel) * 255) for x, _ in batches for pixel in x[:, 0, 0, 0]]
    first, second = ids[:10], ids[10:]
    assert sorted(first) == sorted(second) == list(range(10))
    assert first != second and first != list(range(10))
    np.testing.assert_allclose(batches[0][0][0], images[first[0]][..., None] / 255, rtol=1e-6)
    again = _batches(training_dataset(images, images, 4, epochs=2, seed=7))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))


def test_training_batches_pair_each_input_with_its_own_target():
    targets = np.repeat(np.arange(6, dtype=np.uint8)[:, None, None], 28, 1).repeat(28, 2)
    inputs = (targets.astype(np.float16) + np.float16(0.5)) / 255  # float16, like noisy inputs
    for x, y in _batches(training_dataset(inputs, targets, 4, epochs=1, seed=0)):
        np.testing.assert_allclose(x, y + 0.5 / 255, atol=1e-4)
    x, y = _batches(evaluation_dataset(inputs, targets, 4))[1]
    np.testing.assert_allclose(y[:, 0, 0, 0] * 255, [4, 5], atol=1e-4)
    np.testing.assert_allclose(x, y + 0.5 / 255, atol=1e-4)


def test_training_is_deterministic(raw_params, prepared_small):
    params = small_params(raw_params, "dense16", epochs=2)
    clean, _ = _inputs(params, "dense16", prepared_small)
    first = train_variant("dense16", params.variant("dense16"), params, clean, clean)
    second = train_variant("dense16", params.variant("dense16"), params, clean, clean)
    assert first.history["loss"] == second.history["loss"]
    for a, b in zip(first.parts.autoencoder.weights, second.parts.autoencoder.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(
    ("steps", "configured", "expected"),
    [(215, 1, 1), (215, 1000, 215), (215, 100, 43), (550, 100, 55), (16, 5, 4), (13, 12, 1)],
)
def test_steps_per_execution_is_the_largest_divisor_of_the_epoch(steps, configured, expected):
    assert execution_steps(steps, configured) == expected


def test_steps_per_execution_not_dividing_the_epoch_trains_the_same_epochs(
    raw_params, prepared_small
):
    raw_params["training"]["steps_per_execution"] = 5  # 1024 / 64 = 16 steps: 4 is used
    params = small_params(raw_params, "dense16", epochs=3)
    clean, _ = _inputs(params, "dense16", prepared_small)
    result = train_variant("dense16", params.variant("dense16"), params, clean, clean)
    assert result.facts["steps_per_epoch"] == 16 and result.facts["steps_per_execution"] == 4
    assert len(result.history["loss"]) == 3 and np.all(np.isfinite(result.history["val_loss"]))
    raw_params["training"]["steps_per_execution"] = 1
    reference = train_variant(
        "dense16",
        params.variant("dense16"),
        small_params(raw_params, "dense16", epochs=3),
        clean,
        clean,
    )
    np.testing.assert_allclose(result.history["loss"], reference.history["loss"], rtol=1e-5)


def test_fresh_noise_draws_new_noise_each_epoch_and_still_learns(raw_params, prepared_small):
    params = small_params(raw_params, "conv_denoise", epochs=2, fresh_noise=True)
    clean, inputs = _inputs(params, "conv_denoise", prepared_small)
    spec = params.variant("conv_denoise")
    result = train_variant(
        "conv_denoise", spec, params, clean, inputs, fresh_noise=params.corruption(spec.input)
    )
    assert result.history["val_loss"][1] < result.history["val_loss"][0]


def test_nan_loss_stops_with_a_clear_error_and_writes_no_model(
    raw_params, prepared_small, tmp_path
):
    raw_params["variants"]["dense16"]["optimizer"] = {"name": "sgd", "learning_rate": 1e12}
    raw_params["variants"]["dense16"]["output_activation"] = "linear"
    params = small_params(raw_params, "dense16", epochs=2)
    with pytest.raises(TrainingError, match=r"variants\.dense16: the loss became NaN"):
        stages.train(params, "dense16", prepared_small, tmp_path / "models", tmp_path / "reports")
    assert not (tmp_path / "models").exists() and not (tmp_path / "reports").exists()


def test_saved_models_reload_safely_with_identical_predictions(
    raw_params, prepared_small, tmp_path
):
    params = small_params(raw_params, "vae", epochs=1)
    stages.train(params, "vae", prepared_small, tmp_path / "vae", tmp_path / "reports")
    assert (tmp_path / "reports" / "history.csv").read_text().startswith("epoch,loss,val_loss")
    images = load_prepared(prepared_small / "clean.npz")["test"].x[:64]
    np.save(tmp_path / "images.npy", images)
    script = f"""
import numpy as np, keras
import aezoo.models  # registers the custom layer and loss
x = np.load({str(tmp_path / "images.npy")!r}).astype("float32")[..., None] / 255
for part in ("autoencoder", "encoder", "decoder"):
    keras.saving.load_model({str(tmp_path / "vae")!r} + f"/{{part}}.keras", safe_mode=True)
model = keras.saving.load_model({str(tmp_path / "vae" / "autoencoder.keras")!r}, safe_mode=True)
np.save({str(tmp_path / "out.npy")!r}, model.predict(x, verbose=0))
"""
    runs = []
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
        runs.append(np.load(tmp_path / "out.npy"))
    assert runs[0].shape == (64, 28, 28, 1)
    np.testing.assert_array_equal(runs[0], runs[1])
