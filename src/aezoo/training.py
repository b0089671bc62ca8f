"""One trainer for every variant: a ``tf.data`` pipeline from the stored arrays and ``fit``.

Inputs stay uint8 (clean) or float16 (corrupted) until batching; each batch is gathered
and scaled to float32 inside the pipeline. Validation uses the held-out split, never the
test set. ``reports/benchmarks.md`` measures this trainer against a plain ``model.fit``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from aezoo.config import Params, TrainingConfig
from aezoo.corruption import CorruptionSpec, corrupt_batch
from aezoo.data import Split, to_unit_float
from aezoo.errors import TrainingError
from aezoo.models import LOSSES, AnyVariant, AutoencoderParts, build, make_optimizer

FRESH_NOISE_STREAM = 3_000_000  # counter offset of per-epoch noise (splits use 0..2M)


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


def training_dataset(
    inputs: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
    epochs: int,
    seed: int,
    fresh_noise: CorruptionSpec | None = None,
) -> tf.data.Dataset:
    """Shuffled (input, target) float32 batches for ``epochs`` epochs, as one dataset.

    The arrays stay in memory as stored; each epoch draws a permutation of the sample
    indices (seeded by ``seed`` and the epoch) and each batch gathers its rows and scales
    them, so the pipeline does no per-sample work. With ``fresh_noise`` the inputs are
    ignored and every batch of every epoch is corrupted anew from the clean targets, seeded
    by its global step (so reruns are identical).
    """
    count = len(targets)
    target_images = tf.constant(targets)
    # A plain autoencoder's inputs are its targets: one copy in memory. Fresh noise ignores them.
    use_targets = inputs is targets or fresh_noise is not None
    source_images = target_images if use_targets else tf.constant(inputs)

    def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.stateless_shuffle(
            tf.range(count, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch])
        )
        starts = tf.data.Dataset.range(0, count, batch_size)
        return starts.map(lambda start: order[start : start + batch_size])

    batch_indices = tf.data.Dataset.range(epochs).flat_map(epoch_batches)

    def to_float(step, indices):
        y = _as_images(tf.gather(target_images, indices))
        if fresh_noise is None:
            return _as_images(tf.gather(source_images, indices)), y
        counter = FRESH_NOISE_STREAM + step
        seed_pair = tf.stack([tf.constant(fresh_noise.seed, tf.int64), counter])
        return corrupt_batch(y, fresh_noise, seed_pair), y

    dataset = batch_indices.enumerate().map(to_float, num_parallel_calls=2, deterministic=True)
    return without_autotuning(dataset.prefetch(2))


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


def execution_steps(steps_per_epoch: int, configured: int) -> int:
    """Training steps run per ``tf.function`` call: the largest divisor of the epoch's step
    count that does not exceed ``configured``.

    Keras runs whole executions, so a value that does not divide the epoch makes every epoch
    longer than ``steps_per_epoch`` and the repeated dataset runs out before the last epoch.
    """
    if steps_per_epoch < 1 or configured < 1:
        raise TrainingError(
            f"training.steps_per_execution: {configured} with {steps_per_epoch} steps an epoch; "
            "both must be at least 1"
        )
    return max(
        divisor
        for divisor in range(1, min(configured, steps_per_epoch) + 1)
        if steps_per_epoch % divisor == 0
    )


def compile_for_training(
    model: keras.Model, spec: AnyVariant, training: TrainingConfig, steps_per_epoch: int
) -> int:
    """Compile ``model`` with the variant's optimiser and loss and the trainer's execution
    settings; returns the effective steps per execution (see :func:`execution_steps`)."""
    per_execution = execution_steps(steps_per_epoch, training.steps_per_execution)
    model.compile(
        optimizer=make_optimizer(spec),
        loss=LOSSES[spec.loss],
        steps_per_execution=per_execution,
        jit_compile=training.jit_compile,
    )
    return per_execution


def progress_digits(labels: np.ndarray, count: int) -> np.ndarray:
    """Indices of fixed test digits for the progress GIF: 0-9 in order, then again."""
    by_digit = [np.flatnonzero(labels == digit) for digit in range(10)]
    rounds = max(len(hits) for hits in by_digit)
    order = [hits[rank] for rank in range(rounds) for hits in by_digit if rank < len(hits)]
    return np.array(order[:count], dtype=np.int64)


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


@dataclass
class TrainingResult:
    """What a training run produced, ready to be written by the stage."""

    parts: AutoencoderParts
    history: dict[str, list[float]]
    epoch_seconds: list[float]
    progress_indices: np.ndarray
    progress_inputs: np.ndarray
    progress_frames: np.ndarray  # (epochs, digits, 28, 28) uint8
    facts: dict[str, float | int | str] = field(default_factory=dict)


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
    epochs = min(spec.epochs, params.training.max_epochs or spec.epochs)
    parts = build(name, spec)
    train_x, train_y = inputs["train"].x, clean["train"].x
    steps = math.ceil(len(train_y) / spec.batch_size)
    per_execution = compile_for_training(parts.autoencoder, spec, params.training, steps)
    parts.autoencoder.summary(print_fn=lambda line, **_: print(line, flush=True))

    train = training_dataset(train_x, train_y, spec.batch_size, epochs, seed, fresh_noise)
    val = evaluation_dataset(inputs["val"].x, clean["val"].x, spec.batch_size)

    indices = progress_digits(clean["test"].y, params.training.progress_digits)
    progress_inputs = to_unit_float(inputs["test"].x[indices])[..., None]
    log = EpochLog(epochs, len(train_y), progress_inputs)
    started = time.perf_counter()
    history = parts.autoencoder.fit(
        train,
        epochs=epochs,
        steps_per_epoch=steps,
        validation_data=val,
        callbacks=[keras.callbacks.TerminateOnNaN(), log, *(callbacks or [])],
        shuffle=False,
        verbose=0,
    ).history
    wall = time.perf_counter() - started

    losses = history.get("loss", [])
    if len(losses) < epochs or not np.all(np.isfinite(losses + history.get("val_loss", []))):
        raise TrainingError(
            f"variants.{name}: the loss became NaN or infinite at epoch {len(losses)} "
            f"(try a lower optimizer.learning_rate); no model was written"
        )
    facts = {
        "parameters": int(parts.autoencoder.count_params()),
        "epochs": epochs,
        "train_samples": len(train_y),
        "steps_per_epoch": steps,
        "steps_per_execution": per_execution,
        "jit_compile": params.training.jit_compile,
        "wall_seconds": round(wall, 3),
        "samples_per_second": round(epochs * len(train_y) / sum(log.epoch_seconds), 1),
        "final_loss": float(losses[-1]),
        "final_val_loss": float(history["val_loss"][-1]),
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
