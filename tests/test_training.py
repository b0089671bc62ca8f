"""The trainer on a small real subset: it learns, it is deterministic, it stops on NaN."""

import json
import subprocess
import sys

import numpy as np
import pytest

from aezoo.config import parse_params
from aezoo.data import load_prepared
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
    assert result.facts["epochs"] == 1 and result.facts["parameters"] > 0


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
        train(params, "dense16", prepared_small, tmp_path / "models", tmp_path / "reports")
    assert not (tmp_path / "models").exists() and not (tmp_path / "reports").exists()


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
        "epochs",
        "train_samples",
        "steps_per_epoch",
        "jit_compile",
        "wall_seconds",
        "samples_per_second",
        "epoch_seconds",
    }
    assert facts["epochs"] == params.epochs("dense16") == 2
    assert facts["parameters"] == 25888 and facts["train_samples"] == 1024
    assert facts["steps_per_epoch"] == 1024 // 64 and facts["jit_compile"] is False
    assert len(facts["epoch_seconds"]) == 2 and all(s > 0 for s in facts["epoch_seconds"])
    assert sum(facts["epoch_seconds"]) <= facts["wall_seconds"] + 0.01
    history = (reports / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,loss,val_loss" and len(history) == 1 + 2
    with np.load(models / "progress.npz") as progress:
        assert progress["frames"].shape == (2, params.training.progress_digits, 28, 28)
        assert progress["inputs"].dtype == progress["targets"].dtype == np.uint8
        test = load_prepared(prepared_small / "clean.npz")["test"]
        np.testing.assert_array_equal(progress["targets"], test.x[progress["indices"]])
