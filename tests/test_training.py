"""The trainer on a small real subset: it learns, it is deterministic, it stops on NaN, and
with a patience it keeps the epoch of lowest validation loss."""

import json
import subprocess
import sys

import numpy as np
import pytest

from aezoo.config import parse_params
from aezoo.data import load_prepared, to_unit_float
from aezoo.errors import TrainingError
from aezoo.stages.train import train
from aezoo.training import (
    EpochTrainer,
    compile_for_training,
    epoch_order,
    evaluation_dataset,
    train_variant,
)

# Each architecture x objective, the sparse penalty, and a denoiser.
REPRESENTATIVES = ["dense16", "sparse32", "conv", "strided_denoise", "vae", "conv_vae"]


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


@pytest.mark.integration
@pytest.mark.parametrize("name", REPRESENTATIVES)
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
    facts = result.facts
    assert facts["max_epochs"] == facts["epochs_run"] == facts["best_epoch"] == 1
    assert facts["best_val_loss"] == result.history["val_loss"][0] and facts["parameters"] > 0


def _batches(dataset):
    return [(np.asarray(x), np.asarray(y)) for x, y in dataset]


def _order(count, seed, epoch):
    return np.asarray(epoch_order(count, seed, epoch))


def test_each_epoch_visits_every_sample_once_in_a_new_seeded_order():
    first, second = _order(10, 7, 0), _order(10, 7, 1)
    assert sorted(first) == sorted(second) == list(range(10))
    assert list(first) != list(second) and list(first) != list(range(10))
    np.testing.assert_array_equal(first, _order(10, 7, 0))  # a rerun: the same orders
    assert list(first) != list(_order(10, 8, 0))  # another seed: another order


def _trainer(name, raw_params, inputs, targets, batch_size=4):
    from aezoo.models import build

    params = small_params(raw_params, name)
    autoencoder = build(name, params.variant(name)).autoencoder
    return EpochTrainer(autoencoder, inputs, targets, batch_size, seed=0)


def test_trainer_batches_pair_each_input_with_its_own_scaled_target(raw_params):
    import tensorflow as tf

    targets = np.repeat(np.arange(6, dtype=np.uint8)[:, None, None], 28, 1).repeat(28, 2)
    inputs = (targets.astype(np.float16) + np.float16(0.5)) / 255  # float16, like noisy inputs
    trainer = _trainer("dense16", raw_params, inputs, targets)
    x, y = (np.asarray(t) for t in trainer.batch(tf.constant([4, 1], tf.int64), 0))
    assert x.shape == y.shape == (2, 28, 28, 1) and x.dtype == y.dtype == np.float32
    np.testing.assert_allclose(y[:, 0, 0, 0] * 255, [4, 1], atol=1e-4)
    np.testing.assert_allclose(x, y + 0.5 / 255, atol=1e-4)
    x, y = _batches(evaluation_dataset(inputs, targets, 4))[1]
    np.testing.assert_allclose(y[:, 0, 0, 0] * 255, [4, 5], atol=1e-4)
    np.testing.assert_allclose(x, y + 0.5 / 255, atol=1e-4)


@pytest.mark.integration
def test_the_compiled_epoch_trains_like_keras_fit_on_the_same_batches(raw_params, prepared_small):
    """Every batch of each epoch, the partial last one included, trained in order: the same
    weights and losses as Keras's own fit on a tf.data pipeline of the same batches."""
    import tensorflow as tf

    from aezoo.models import LOSSES, build, make_optimizer

    params = small_params(raw_params, "dense16")
    spec = params.variant("dense16")
    images = load_prepared(prepared_small / "clean.npz")["train"].x[:1000]  # 15 x 64 + 40
    trainer = _trainer("dense16", raw_params, images, images, batch_size=64)
    initial = trainer.autoencoder.get_weights()
    compile_for_training(trainer, spec, params.training)
    ours = trainer.fit(
        trainer.epochs(0, 2), epochs=2, steps_per_epoch=1, shuffle=False, verbose=0
    ).history

    reference = build("dense16", spec).autoencoder
    reference.set_weights(initial)
    reference.compile(optimizer=make_optimizer(spec), loss=LOSSES[spec.loss])
    floats = images.astype(np.float32)[..., None] / 255

    def epoch_batches(epoch):
        shuffled = floats[_order(1000, 0, epoch)]
        return tf.data.Dataset.from_tensor_slices((shuffled, shuffled)).batch(64)

    batches = epoch_batches(0).concatenate(epoch_batches(1))
    theirs = reference.fit(batches, epochs=2, steps_per_epoch=16, shuffle=False, verbose=0).history

    np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-6)
    for a, b in zip(trainer.autoencoder.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.integration
def test_training_is_deterministic(raw_params, prepared_small):
    params = small_params(raw_params, "dense16", epochs=2)
    clean, _ = _inputs(params, "dense16", prepared_small)
    first = train_variant("dense16", params.variant("dense16"), params, clean, clean)
    second = train_variant("dense16", params.variant("dense16"), params, clean, clean)
    assert first.history["loss"] == second.history["loss"]
    for a, b in zip(first.parts.autoencoder.weights, second.parts.autoencoder.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("name", ["vae", "vae2d", "conv_vae"])
def test_no_gradient_of_the_vae_sums_more_than_two_terms(name, raw_params):
    """A 3-term ``AddN`` adds in an order picked at run time (see ``Sampling``): the VAE
    trained to different weights in different processes. Checked on the traced epoch."""
    import tensorflow as tf

    params = parse_params(raw_params)
    images = np.zeros((100, 28, 28), np.uint8)
    trainer = _trainer(name, raw_params, images, images, batch_size=32)
    compile_for_training(trainer, params.variant(name), params.training)
    epoch = tf.function(trainer.train_step).get_concrete_function(tf.TensorSpec([], tf.int64))
    graph = epoch.graph.as_graph_def()
    nodes = [*graph.node, *(node for body in graph.library.function for node in body.node_def)]
    terms = {n.name: [i for i in n.input if not i.startswith("^")] for n in nodes if n.op == "AddN"}
    assert any(sum_name.startswith("while/") for sum_name in terms)  # the loop body's sums
    assert {sum_name: len(t) for sum_name, t in terms.items() if len(t) > 2} == {}


@pytest.mark.integration
def test_fresh_noise_draws_new_noise_each_epoch_and_still_learns(raw_params, prepared_small):
    params = small_params(raw_params, "conv_denoise", epochs=2, fresh_noise=True)
    clean, inputs = _inputs(params, "conv_denoise", prepared_small)
    spec = params.variant("conv_denoise")
    result = train_variant(
        "conv_denoise", spec, params, clean, inputs, fresh_noise=params.corruption(spec.input)
    )
    assert result.history["val_loss"][1] < result.history["val_loss"][0]


@pytest.mark.integration
def test_nan_loss_stops_with_a_clear_error_and_writes_no_model(
    raw_params, prepared_small, tmp_path
):
    raw_params["variants"]["dense16"]["optimizer"] = {"name": "sgd", "learning_rate": 1e12}
    raw_params["variants"]["dense16"]["output_activation"] = "linear"
    params = small_params(raw_params, "dense16", epochs=2)
    with pytest.raises(TrainingError, match=r"variants\.dense16: the loss became NaN"):
        train(params, "dense16", prepared_small, tmp_path / "models", tmp_path / "reports")
    assert not (tmp_path / "models").exists() and not (tmp_path / "reports").exists()


@pytest.mark.integration
def test_saved_models_reload_safely_with_identical_predictions(
    raw_params, prepared_small, tmp_path
):
    params = small_params(raw_params, "vae", epochs=1)
    train(params, "vae", prepared_small, tmp_path / "vae", tmp_path / "reports")
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


@pytest.mark.integration
def test_the_train_stage_writes_models_progress_history_and_run_facts(
    raw_params, prepared_small, tmp_path
):
    """train.json holds facts about the run (no loss: that is history.csv, a DVC plot);
    epochs are capped by training.max_epochs."""
    raw_params["training"]["max_epochs"] = 2
    params = small_params(raw_params, "dense16", epochs=5)
    models, reports = tmp_path / "models", tmp_path / "reports"
    train(params, "dense16", prepared_small, models, reports)
    assert sorted(path.name for path in models.iterdir()) == [
        "autoencoder.keras",
        "decoder.keras",
        "encoder.keras",
        "progress.npz",
    ]
    facts = json.loads((reports / "train.json").read_text())
    assert set(facts) == {
        "parameters",
        "max_epochs",
        "epochs_run",
        "best_epoch",
        "best_val_loss",
        "train_samples",
        "steps_per_epoch",
        "jit_compile",
        "wall_seconds",
        "samples_per_second",
        "epoch_seconds",
    }
    assert facts["max_epochs"] == facts["epochs_run"] == params.epochs("dense16") == 2
    assert facts["parameters"] == 25888 and facts["train_samples"] == 1024
    assert facts["steps_per_epoch"] == 1024 // 64 and facts["jit_compile"] is False
    assert len(facts["epoch_seconds"]) == 2 and all(s > 0 for s in facts["epoch_seconds"])
    assert sum(facts["epoch_seconds"]) <= facts["wall_seconds"] + 0.01
    history = (reports / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,loss,val_loss" and len(history) == 1 + 2
    val_losses = [float(line.split(",")[2]) for line in history[1:]]
    assert facts["best_epoch"] == int(np.argmin(val_losses)) + 1  # patience 10: the best
    assert facts["best_val_loss"] == pytest.approx(min(val_losses), rel=1e-5)  # 6 digits
    with np.load(models / "progress.npz") as progress:
        assert progress["frames"].shape == (2, params.training.progress_digits, 28, 28)
        assert progress["inputs"].dtype == progress["targets"].dtype == np.uint8
        test = load_prepared(prepared_small / "clean.npz")["test"]
        np.testing.assert_array_equal(progress["targets"], test.x[progress["indices"]])


# ------------------------------------------------- model selection on the validation split


def selection_params(raw, epochs, patience):
    """dense16 at a high learning rate (Adam, 0.05) on the small subset: its validation loss
    falls for ten epochs or so, then goes up and down, so the best epoch is not the last."""
    raw["training"]["patience"] = patience
    optimizer = {"name": "adam", "learning_rate": 0.05}
    return small_params(raw, "dense16", epochs=epochs, optimizer=optimizer)


def train_dense16(params, prepared):
    clean = load_prepared(prepared / "clean.npz")
    return train_variant("dense16", params.variant("dense16"), params, clean, clean)


def validation_mse(model, prepared) -> float:
    """The model's MSE on the validation split, in float64 from its predictions: what
    Keras's val_loss is for an MSE variant, computed without Keras's loss."""
    images = to_unit_float(load_prepared(prepared / "clean.npz")["val"].x)[..., None]
    predicted = np.asarray(model.predict(images, batch_size=64, verbose=0), np.float64)
    return float(np.mean((predicted - images) ** 2))


def same_weights(first, second) -> bool:
    return all(
        np.array_equal(a, b) for a, b in zip(first.get_weights(), second.get_weights(), strict=True)
    )


@pytest.mark.integration
def test_with_a_patience_the_best_validation_epoch_is_kept_and_training_stops_after_it(
    raw_params, prepared_small
):
    result = train_dense16(selection_params(raw_params, 30, patience=2), prepared_small)
    facts, val_losses = result.facts, result.history["val_loss"]
    best = facts["best_epoch"]
    assert facts["max_epochs"] == 30
    assert facts["epochs_run"] < 30, "stopped early"  # 13 on x86-64
    assert len(val_losses) == len(result.history["loss"]) == facts["epochs_run"]
    assert len(facts["epoch_seconds"]) == len(result.progress_frames) == facts["epochs_run"]
    assert best == int(np.argmin(val_losses)) + 1  # the first epoch of the lowest
    assert facts["best_val_loss"] == val_losses[best - 1] == min(val_losses)
    # Stopped after exactly `patience` epochs, none of them a new lowest.
    assert facts["epochs_run"] == best + 2
    assert min(val_losses[best:]) >= facts["best_val_loss"]

    kept = validation_mse(result.parts.autoencoder, prepared_small)
    assert kept == pytest.approx(facts["best_val_loss"], rel=1e-6)
    assert kept != pytest.approx(val_losses[-1], rel=1e-4)  # not the last epoch's weights
    # The encoder and decoder (saved beside the autoencoder) share the kept weights.
    images = to_unit_float(load_prepared(prepared_small / "clean.npz")["val"].x[:64])[..., None]
    parts = result.parts
    np.testing.assert_allclose(
        parts.decoder.predict(parts.encoder.predict(images, verbose=0), verbose=0),
        parts.autoencoder.predict(images, verbose=0),
        atol=1e-6,
    )
    # The kept weights are the best epoch's, bit for bit: a run of that many epochs.
    shorter = train_dense16(selection_params(raw_params, best, patience=None), prepared_small)
    assert shorter.history["val_loss"] == val_losses[:best]
    assert same_weights(result.parts.autoencoder, shorter.parts.autoencoder)


@pytest.mark.integration
def test_without_a_patience_every_epoch_runs_and_the_last_is_kept(raw_params, prepared_small):
    """The seeds' setting; a patience longer than the run trains the same epochs but keeps
    the best of them."""
    last = train_dense16(selection_params(raw_params, 30, patience=None), prepared_small)
    facts, val_losses = last.facts, last.history["val_loss"]
    assert facts["max_epochs"] == facts["epochs_run"] == len(val_losses) == 30
    assert facts["best_epoch"] == 30 and facts["best_val_loss"] == val_losses[-1]
    assert int(np.argmin(val_losses)) + 1 < 30  # the last epoch is not the best: still kept
    assert validation_mse(last.parts.autoencoder, prepared_small) == pytest.approx(
        val_losses[-1], rel=1e-6
    )

    patient = train_dense16(selection_params(raw_params, 30, patience=30), prepared_small)
    assert patient.history == last.history  # selection never changes the training
    assert patient.facts["epochs_run"] == 30  # never stopped, yet the best epoch is kept
    assert patient.facts["best_epoch"] == int(np.argmin(val_losses)) + 1 < 30
    assert patient.facts["best_val_loss"] == min(val_losses)
    assert validation_mse(patient.parts.autoencoder, prepared_small) == pytest.approx(
        min(val_losses), rel=1e-6
    )
    assert not same_weights(patient.parts.autoencoder, last.parts.autoencoder)


@pytest.mark.integration
def test_model_selection_is_deterministic(raw_params, prepared_small):
    params = selection_params(raw_params, 30, patience=2)
    first, second = train_dense16(params, prepared_small), train_dense16(params, prepared_small)
    assert first.facts["epochs_run"] < 30  # stopped early, both times at the same epoch
    assert first.history == second.history
    timings = {"wall_seconds", "samples_per_second", "epoch_seconds"}
    assert {k: v for k, v in first.facts.items() if k not in timings} == {
        k: v for k, v in second.facts.items() if k not in timings
    }
    for a, b in zip(first.parts.autoencoder.weights, second.parts.autoencoder.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(first.progress_frames, second.progress_frames)


@pytest.mark.integration
def test_the_train_stage_saves_the_kept_model(raw_params, prepared_small, tmp_path):
    """autoencoder.keras is the best epoch's model, and train.json and history.csv agree."""
    import keras

    params = selection_params(raw_params, 30, patience=2)
    models, reports = tmp_path / "models", tmp_path / "reports"
    train(params, "dense16", prepared_small, models, reports)
    facts = json.loads((reports / "train.json").read_text())
    rows = (reports / "history.csv").read_text().splitlines()[1:]
    val_losses = [float(row.split(",")[2]) for row in rows]
    assert len(rows) == facts["epochs_run"] < facts["max_epochs"] == 30
    assert facts["best_epoch"] == int(np.argmin(val_losses)) + 1 < facts["epochs_run"]
    saved = keras.saving.load_model(models / "autoencoder.keras", safe_mode=True)
    kept = validation_mse(saved, prepared_small)
    assert kept == pytest.approx(facts["best_val_loss"], rel=1e-6)
    assert kept == pytest.approx(min(val_losses), rel=1e-5)  # history.csv has 6 digits
    assert kept != pytest.approx(val_losses[-1], rel=1e-4)
