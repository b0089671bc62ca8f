"""The arms and their interleaved training: a (aezoo's trainer), b and c (``model.fit``).

Every arm of a variant starts from the same weights and seeds and trains in turns, epoch
by epoch, so machine noise hits them all (the package's docstring says what each arm is).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np

from aezoo.config import Params
from benchmarks.flops import training_flops_per_sample
from benchmarks.machine import peak_rss_mib, peak_rss_reset
from benchmarks.settings import QUALITY_TOLERANCE, BenchmarkError, Setting


@dataclass
class ArmResult:
    """What one arm measured on one variant."""

    arm: str
    setting: str
    train_seconds: list[float] = field(default_factory=list)  # timed epochs, training only
    epoch_seconds: list[float] = field(default_factory=list)  # timed epochs, with validation
    predict_seconds: list[float] = field(default_factory=list)
    peak_rss_mib: float | None = None
    val_loss: float = math.nan
    samples_per_second: float = math.nan
    predict_samples_per_second: float = math.nan
    gflops_per_second: float = math.nan


class EpochClock(keras.callbacks.Callback):
    """Splits each epoch into its training and its validation time."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = self.test_start = time.perf_counter()

    def on_test_begin(self, logs=None):
        self.test_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.end = time.perf_counter()

    @property
    def train_seconds(self) -> float:
        return self.test_start - self.start

    @property
    def epoch_seconds(self) -> float:
        return self.end - self.start


def bench_data(params: Params, name: str, data_dir: Path, train_samples: int | None):
    """Clean targets and model inputs of a variant, the training split cut to ``train_samples``."""
    from aezoo.data import Split, load_prepared
    from aezoo.stages import load_inputs

    spec = params.variant(name)
    if spec.fresh_noise:
        raise BenchmarkError(f"variants.{name}: fresh_noise variants are not benchmarked")
    clean = load_prepared(data_dir / "clean.npz")
    inputs = load_inputs(data_dir, spec.input, clean)
    cut = slice(0, train_samples)
    clean["train"] = Split(clean["train"].x[cut], clean["train"].y[cut])
    inputs["train"] = Split(inputs["train"].x[cut], inputs["train"].y[cut])
    return clean, inputs


def same_model(name, spec, params: Params, weights) -> keras.Model:
    """The variant's autoencoder with ``weights``, built after reseeding, so every arm's
    random layers (the VAE's sampling) also draw the same numbers in the same order."""
    from aezoo.models import build
    from aezoo.training import seed_everything

    seed_everything(params.training.seed)
    model = build(name, spec).autoencoder
    model.set_weights(weights)
    return model


class AezooArm:
    """aezoo's trainer path: ``EpochTrainer`` on the stored arrays, the trainer's settings."""

    def __init__(self, name, spec, params: Params, setting: Setting, clean, inputs, weights):
        from aezoo.training import EpochTrainer, compile_for_training, evaluation_dataset

        self.result = ArmResult("aezoo", setting.label)
        self.model = same_model(name, spec, params, weights)
        self.trainer = EpochTrainer(
            self.model,
            inputs["train"].x,
            clean["train"].x,
            spec.batch_size,
            params.training.seed,
        )
        compile_for_training(self.trainer, spec, params.training.model_copy(update=asdict(setting)))
        self.epochs_run = 0
        self.val = evaluation_dataset(inputs["val"].x, clean["val"].x, spec.batch_size)
        self.test = inputs["test"].x
        self.predict_batch = params.evaluation.batch_size

    def epoch(self, clock) -> float:
        """One epoch (training + validation); returns the validation loss."""
        # One fit call an epoch, numbered on, so each epoch draws its own order.
        history = self.trainer.fit(
            self.trainer.epochs(self.epochs_run, 1),
            epochs=1,
            steps_per_epoch=1,
            validation_data=self.val,
            callbacks=[clock],
            shuffle=False,  # the trainer shuffles each epoch itself, as in train_variant
            verbose=0,
        )
        self.epochs_run += 1
        return history.history["val_loss"][-1]

    def predict(self) -> None:
        from aezoo.evaluation import as_model_input

        self.model.predict(as_model_input(self.test), batch_size=self.predict_batch, verbose=0)


def float_images(images: np.ndarray) -> np.ndarray:
    """Stored images as the seeds feed them: float32 in [0, 1], shape ``(n, 28, 28, 1)``."""
    from aezoo.data import to_unit_float

    return to_unit_float(images)[..., None]


class PlainFitArm:
    """The seeds' way: float32 numpy arrays in memory, ``model.fit(x, y, batch_size, epochs)``.

    Like the seeds' ``fit(x_train, x_train)``, a plain autoencoder holds one float32 copy of
    its images. Two flavours run side by side:

    * ``same_order=False``, the speed baseline b: the seeds' ``fit(..., shuffle=True)``.
    * ``same_order=True``, the quality reference c: each epoch fits on the arrays put in
      aezoo's :func:`~aezoo.training.epoch_order` for that epoch, with ``shuffle=False``, so
      it trains on the same batches in the same order as aezoo's trainer and the two
      validation losses differ only by what the trainers do. Its speed is reported but is no
      baseline: its arrays are put in order before the epoch's clock starts.
    """

    def __init__(self, name, spec, params: Params, clean, inputs, weights, same_order=False):
        from aezoo.models import LOSSES, make_optimizer

        self.same_order = same_order
        self.result = ArmResult("model.fit", "c: aezoo's order" if same_order else "b: shuffled")
        self.model = same_model(name, spec, params, weights)
        self.model.compile(optimizer=make_optimizer(spec, fused=False), loss=LOSSES[spec.loss])
        self.batch_size, self.seed = spec.batch_size, params.training.seed
        self.stored = (inputs["train"].x, clean["train"].x)  # as stored: uint8 or float16
        self.epochs_run = 0

        self.x, self.y = self._arrays() if not same_order else (None, None)
        self.val = (float_images(inputs["val"].x), float_images(clean["val"].x))
        self.test = float_images(inputs["test"].x)

    def _arrays(self, order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """float32 (x, y) of the training split, in ``order`` if given."""
        stored_x, stored_y = self.stored
        pick = slice(None) if order is None else order
        x = float_images(stored_x[pick])
        return x, x if stored_x is stored_y else float_images(stored_y[pick])

    def epoch(self, clock) -> float:
        """One epoch (training + validation); returns the validation loss."""
        if self.same_order:
            from aezoo.training import epoch_order

            order = epoch_order(len(self.stored[1]), self.seed, self.epochs_run).numpy()
            self.x = self.y = None  # one float32 copy at a time
            self.x, self.y = self._arrays(order)
        history = self.model.fit(
            self.x,
            self.y,
            batch_size=self.batch_size,
            epochs=1,
            shuffle=not self.same_order,
            validation_data=self.val,
            callbacks=[clock],
            verbose=0,
        )
        self.epochs_run += 1
        return history.history["val_loss"][-1]

    def predict(self) -> None:
        self.model.predict(self.test, verbose=0)


def measure_epoch(arm, timed: bool) -> tuple[float, float, float]:
    """Run one epoch of ``arm``; record it when ``timed``. Returns (train s, epoch s, val loss)."""
    clock = EpochClock()
    peak_rss_reset()
    val_loss = arm.epoch(clock)
    peak = peak_rss_mib()
    if timed:
        arm.result.train_seconds.append(clock.train_seconds)
        arm.result.epoch_seconds.append(clock.epoch_seconds)
        if peak is not None:
            arm.result.peak_rss_mib = max(arm.result.peak_rss_mib or 0.0, round(peak, 1))
    arm.result.val_loss = float(val_loss)
    return clock.train_seconds, clock.epoch_seconds, val_loss


def bench_variant(
    name: str,
    params: Params,
    settings: list[Setting],
    data_dir: Path,
    epochs: int,
    train_samples: int | None,
) -> dict:
    """Train every aezoo setting and the plain fit on one variant, in turns; their results."""
    from aezoo.models import build
    from aezoo.training import seed_everything

    spec = params.variant(name)
    clean, inputs = bench_data(params, name, data_dir, train_samples)
    seed_everything(params.training.seed)
    model = build(name, spec).autoencoder
    weights = model.get_weights()
    flops = training_flops_per_sample(model)
    arms = [AezooArm(name, spec, params, s, clean, inputs, weights) for s in settings]
    baseline = PlainFitArm(name, spec, params, clean, inputs, weights)
    reference = PlainFitArm(name, spec, params, clean, inputs, weights, same_order=True)
    arms += [baseline, reference]
    samples = len(clean["train"])

    for epoch in range(1 + epochs):
        for arm in arms:
            train_s, epoch_s, val_loss = measure_epoch(arm, timed=epoch > 0)
            tag = "warm-up" if epoch == 0 else f"{epoch}/{epochs}"
            print(
                f"{name:<16} {arm.result.arm:<9} {arm.result.setting:<16} epoch {tag:<7} "
                f"train {train_s:6.2f}s ({samples / train_s:8,.0f} samples/s)  "
                f"epoch {epoch_s:6.2f}s  val_loss {val_loss:.5f}",
                flush=True,
            )
    for arm in arms:
        arm.predict()  # warm-up: traces the predict function
    for _ in range(epochs):
        for arm in arms:
            start = time.perf_counter()
            arm.predict()
            arm.result.predict_seconds.append(time.perf_counter() - start)

    rows = []
    for arm in arms:
        result = arm.result
        result.samples_per_second = samples / statistics.median(result.train_seconds)
        result.predict_samples_per_second = len(clean["test"]) / statistics.median(
            result.predict_seconds
        )
        result.gflops_per_second = flops * result.samples_per_second / 1e9
        rows.append(asdict(result))
    b, c = baseline.result, reference.result
    for row in rows[: len(settings)]:
        row["ratio"] = row["samples_per_second"] / b.samples_per_second
        row["predict_ratio"] = row["predict_samples_per_second"] / b.predict_samples_per_second
        row["val_loss_change"] = row["val_loss"] / c.val_loss - 1
        row["quality_ok"] = row["val_loss"] <= c.val_loss * (1 + QUALITY_TOLERANCE)
    keras.backend.clear_session()
    return {
        "variant": name,
        "architecture": spec.architecture,
        "objective": spec.objective,
        "batch_size": spec.batch_size,
        "train_samples": samples,
        "steps_per_epoch": math.ceil(samples / spec.batch_size),
        "train_flops_per_sample": flops,
        "arms": rows,
    }
