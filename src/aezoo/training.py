"""One trainer for every variant: Keras's ``fit``, one epoch per compiled step.

Inputs stay uint8 (clean) or float16 (corrupted) until batching; each batch is gathered
and scaled to float32 inside the compiled epoch (:class:`EpochTrainer`). Validation uses the
held-out split, never the test set. ``reports/benchmarks.md`` measures this trainer against
a plain ``model.fit``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from aezoo.config import AnyVariant, Params, TrainingConfig
from aezoo.corruption import CorruptionSpec, corrupt_batch
from aezoo.data import Split, progress_digits, to_unit_float
from aezoo.errors import TrainingError
from aezoo.models import LOSSES, AutoencoderParts, build, make_optimizer, start_as_pca

FRESH_NOISE_STREAM = 3_000_000  # counter offset of per-epoch noise (splits use 0..2M)


def principal_components(images: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean image and the top ``count`` principal axes (rows) of ``images``, flattened:
    the same fit as the evaluate stage's PCA baseline."""
    from sklearn.decomposition import PCA

    flat = to_unit_float(images).reshape(len(images), -1)
    pca = PCA(n_components=count, svd_solver="covariance_eigh").fit(flat)
    return pca.mean_.astype(np.float32), pca.components_.astype(np.float32)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and make TF ops deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _as_images(batch: tf.Tensor) -> tf.Tensor:
    """A stored batch (uint8 0..255 or float16 0..1) as float32 ``(n, 28, 28, 1)``."""
    scale = 1.0 / 255.0 if batch.dtype == tf.uint8 else 1.0
    return tf.expand_dims(tf.cast(batch, tf.float32) * scale, -1)


def without_autotuning(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` with tf.data's autotuner off.

    On 2 cores the autotuner made one training epoch in three or so wait ~1.2 s with both
    cores idle (stacked256: 2.56 s instead of 1.32 s); with fixed buffers the epochs take the
    same time each. The pipelines here do one cheap gather per batch, so nothing is lost.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def epoch_order(count: int, seed: int, epoch: int | tf.Tensor) -> tf.Tensor:
    """A permutation of ``range(count)`` drawn from ``(seed, epoch)``: every sample once an
    epoch, a new order each epoch, the same orders on every rerun."""
    epoch = tf.cast(epoch, tf.int64)
    return tf.random.experimental.stateless_shuffle(
        tf.range(count, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch])
    )


class EpochTrainer(keras.Model):
    """Trains ``autoencoder`` one whole epoch per ``fit`` step, the batches made in the graph.

    ``fit`` runs the epochs, validation and callbacks as usual, on a dataset of epoch numbers
    (:meth:`epochs`). Each :meth:`train_step` draws the epoch's :func:`epoch_order`, then in
    one ``tf.while_loop`` gathers every batch from the arrays held in memory as stored, scales
    it to float32 (corrupting it afresh with ``fresh_noise``, seeded by the global step) and
    runs Keras's own train step on it. No tf.data iterator hands the batches over one by one:
    on 2 cores, taking that hand-off out made stacked256's and the VAE's epochs 12-14% faster.
    """

    def __init__(
        self,
        autoencoder: keras.Model,
        inputs: np.ndarray,
        targets: np.ndarray,
        batch_size: int,
        seed: int,
        fresh_noise: CorruptionSpec | None = None,
    ):
        super().__init__(name=f"{autoencoder.name}_trainer")
        self.autoencoder = autoencoder
        self.batch_size, self.seed, self.fresh_noise = batch_size, seed, fresh_noise
        self.count = len(targets)
        self.steps_per_epoch = math.ceil(self.count / batch_size)
        self.targets = tf.constant(targets)
        # A plain autoencoder's inputs are its targets: one copy in memory. Fresh noise
        # ignores the inputs.
        use_targets = inputs is targets or fresh_noise is not None
        self.inputs = self.targets if use_targets else tf.constant(inputs)

    def call(self, images, training=None):
        return self.autoencoder(images, training=training)

    def epochs(self, first: int, count: int) -> tf.data.Dataset:
        """The dataset to ``fit`` with ``steps_per_epoch=1``: epoch numbers ``first``, ..."""
        return tf.data.Dataset.range(first, first + count)

    def batch(self, indices: tf.Tensor, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The float32 (input, target) images of the samples at ``indices``; ``step`` (the
        global step) seeds fresh noise."""
        targets = _as_images(tf.gather(self.targets, indices))
        if self.fresh_noise is not None:
            noise_seed = tf.constant(self.fresh_noise.seed, tf.int64)
            seed = tf.stack([noise_seed, FRESH_NOISE_STREAM + step])
            return corrupt_batch(targets, self.fresh_noise, seed), targets
        if self.inputs is self.targets:  # a plain autoencoder: one gather serves both
            return targets, targets
        return _as_images(tf.gather(self.inputs, indices)), targets

    def train_step(self, epoch):
        order = epoch_order(self.count, self.seed, epoch)
        first_step = epoch * self.steps_per_epoch
        full_batches, rest = divmod(self.count, self.batch_size)
        # Whole batches as rows, so every batch has a static shape (and XLA can compile it).
        rows = tf.reshape(order[: full_batches * self.batch_size], (full_batches, self.batch_size))
        keras_train_step = super().train_step

        def train_on(indices, step):
            return keras_train_step(self.batch(indices, first_step + step))["loss"]

        def one_batch(step, _):  # the loss rides along so the step is part of the loop's output
            return step + 1, train_on(rows[step], step)

        step, _ = tf.while_loop(
            lambda step, _: step < full_batches,
            one_batch,
            (tf.constant(0, tf.int64), tf.constant(0.0)),
        )
        if rest:
            train_on(order[full_batches * self.batch_size :], step)
        return self.get_metrics_result()


def evaluation_dataset(inputs: np.ndarray, targets: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """Unshuffled (input, target) float32 batches."""
    inputs_t = tf.constant(inputs)
    targets_t = inputs_t if inputs is targets else tf.constant(targets)
    count = len(targets)
    starts = tf.data.Dataset.range(0, count, batch_size)

    def to_float(start):
        end = tf.minimum(start + batch_size, count)
        return _as_images(inputs_t[start:end]), _as_images(targets_t[start:end])

    return without_autotuning(starts.map(to_float).prefetch(2))


def compile_for_training(trainer: EpochTrainer, spec: AnyVariant, training: TrainingConfig) -> None:
    """Compile ``trainer`` with the variant's optimiser and loss and the XLA setting."""
    trainer.compile(
        optimizer=make_optimizer(spec),
        loss=LOSSES[spec.loss],
        jit_compile=training.jit_compile,
    )


class EpochLog(keras.callbacks.Callback):
    """Times epochs, records the progress digits' reconstructions, prints one line an epoch."""

    def __init__(self, epochs: int, samples: int, progress_inputs: np.ndarray):
        super().__init__()
        self.epochs, self.samples = epochs, samples
        self.progress_inputs = progress_inputs
        self.epoch_seconds: list[float] = []
        self.frames: list[np.ndarray] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        self.epoch_seconds.append(seconds)
        logs = logs or {}
        frame = self.model.predict_on_batch(self.progress_inputs)
        self.frames.append(np.clip(np.asarray(frame)[..., 0] * 255 + 0.5, 0, 255).astype(np.uint8))
        print(
            f"epoch {epoch + 1:>3}/{self.epochs}  loss {logs.get('loss', float('nan')):.5f}  "
            f"val_loss {logs.get('val_loss', float('nan')):.5f}  {seconds:6.1f}s  "
            f"({self.samples / seconds:,.0f} samples/s)",
            flush=True,
        )


def best_epoch_selection(patience: int | None) -> list[keras.callbacks.Callback]:
    """Model selection on the validation split: keep the weights of the epoch with the
    lowest validation loss and stop after ``patience`` epochs without a new lowest. None
    trains every epoch and keeps the last (the seed tutorials' setting)."""
    if patience is None:
        return []
    return [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", mode="min", patience=patience, restore_best_weights=True
        )
    ]


@dataclass
class TrainingResult:
    """What a training run produced, ready to be written by the stage."""

    parts: AutoencoderParts
    history: dict[str, list[float]]
    epoch_seconds: list[float]
    progress_indices: np.ndarray
    progress_inputs: np.ndarray
    progress_frames: np.ndarray  # (epochs, digits, 28, 28) uint8
    facts: dict[str, Any] = field(default_factory=dict)  # counts and timings, not metrics


def train_variant(
    name: str,
    spec: AnyVariant,
    params: Params,
    clean: dict[str, Split],
    inputs: dict[str, Split],
    fresh_noise: CorruptionSpec | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> TrainingResult:
    """Build, compile and train one variant; raises :class:`TrainingError` on a NaN loss.

    ``clean`` holds the targets; ``inputs`` the model's inputs (the same arrays for a plain
    autoencoder, the corrupt stage's copies for a denoiser). ``callbacks`` are added to
    fit's own (experiment tracking hooks in here without touching the numbers).
    """
    seed = params.training.seed
    seed_everything(seed)
    epochs = params.epochs(name)
    parts = build(name, spec)
    train_y = clean["train"].x
    if getattr(spec, "pca_start", False):
        mean, components = principal_components(train_y, spec.code_size)
        start_as_pca(parts, mean, components)
    trainer = EpochTrainer(
        parts.autoencoder, inputs["train"].x, train_y, spec.batch_size, seed, fresh_noise
    )
    compile_for_training(trainer, spec, params.training)
    parts.autoencoder.summary(print_fn=lambda line, **_: print(line, flush=True))
    val = evaluation_dataset(inputs["val"].x, clean["val"].x, spec.batch_size)

    indices = progress_digits(clean["test"].y, params.training.progress_digits)
    progress_inputs = to_unit_float(inputs["test"].x[indices])[..., None]
    log = EpochLog(epochs, len(train_y), progress_inputs)
    selection = best_epoch_selection(params.training.patience)
    started = time.perf_counter()
    history = trainer.fit(
        trainer.epochs(0, epochs),
        epochs=epochs,
        steps_per_epoch=1,  # one step trains a whole epoch
        validation_data=val,
        callbacks=[keras.callbacks.TerminateOnNaN(), *selection, log, *(callbacks or [])],
        shuffle=False,  # the trainer shuffles each epoch itself
        verbose=0,
    ).history
    wall = time.perf_counter() - started

    losses, val_losses = history.get("loss", []), history.get("val_loss", [])
    stopped_early = bool(selection) and selection[0].stopped_epoch > 0
    if (len(losses) < epochs and not stopped_early) or not np.all(np.isfinite(losses + val_losses)):
        raise TrainingError(
            f"variants.{name}: the loss became NaN or infinite at epoch {len(losses)} "
            f"(try a lower optimizer.learning_rate); no model was written"
        )
    # The kept weights: the best validation epoch's with a patience, else the last epoch's.
    best_epoch = int(np.argmin(val_losses)) + 1 if selection else len(losses)
    print(
        f"kept the weights of epoch {best_epoch} of {len(losses)} "
        f"(val_loss {val_losses[best_epoch - 1]:.5f})",
        flush=True,
    )
    facts = {
        "parameters": int(parts.autoencoder.count_params()),
        "max_epochs": epochs,
        "epochs_run": len(losses),
        "best_epoch": best_epoch,
        "best_val_loss": float(val_losses[best_epoch - 1]),
        "train_samples": len(train_y),
        "steps_per_epoch": trainer.steps_per_epoch,
        "jit_compile": params.training.jit_compile,
        "wall_seconds": round(wall, 3),
        "samples_per_second": round(len(losses) * len(train_y) / sum(log.epoch_seconds), 1),
        "epoch_seconds": [round(seconds, 3) for seconds in log.epoch_seconds],
    }
    return TrainingResult(
        parts=parts,
        history={key: [float(v) for v in values] for key, values in history.items()},
        epoch_seconds=log.epoch_seconds,
        progress_indices=indices,
        progress_inputs=progress_inputs[..., 0],
        progress_frames=np.stack(log.frames),
        facts=facts,
    )
