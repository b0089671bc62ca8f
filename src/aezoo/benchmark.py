"""Benchmark: aezoo's trainer against the seeds' plain ``model.fit``, side by side.

For each variant one process builds the same model for every arm (same initial weights, same
random seeds) and trains the arms in turns, epoch by epoch, so machine noise hits them all:

* arm **a**, aezoo: ``EpochTrainer`` (arrays in memory as stored, one compiled step per
  epoch that gathers its batches in the graph) and ``compile_for_training`` (``FusedAdam``,
  the chosen ``jit_compile``), exactly as ``train_variant`` uses them; inference as the
  evaluate stage does it;
* arm **b**, the seeds and the speed baseline: ``model.fit(x, y, batch_size=..., epochs=1,
  shuffle=True)`` on float32 numpy arrays with Keras's own optimiser (``verbose=0``, so no
  progress bar handicaps it) and ``model.predict(x)``;
* arm **c**, the quality reference: b's ``model.fit``, on the same batches in the same order
  as a (see :class:`PlainFitArm`), so a's and c's validation losses differ only by what the
  trainers do, not by the luck of the shuffle.

Process-wide settings (threads, oneDNN: aezoo turns it on, see ``aezoo/__init__.py``) are
the same for every arm, so the ratio a/b measures the trainer alone.

Several aezoo settings can be compared in one run; each is an arm of its own. The report also
states FLOPs per training step (counted per layer), achieved GFLOP/s against the CPU's peak,
the time of a no-op ``dvc repro`` and the start-up time of every ``pipeline/*.py`` entry point.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from aezoo.config import Params
from aezoo.errors import AezooError
from aezoo.io import atomic_path, write_json

FMA_UNITS_PER_CORE = 2  # two 256-bit FMA pipes per core: AMD Zen 2+, Intel Haswell+
# a's val loss may exceed c's by 2%: on the same batches the two still differ by round-off,
# which Adam amplifies (it scales tiny gradients up to full steps); measured up to ~1% (vae).
QUALITY_TOLERANCE = 0.02
MIB = 1024 * 1024


class BenchmarkError(AezooError, RuntimeError):
    """A benchmark setting or input is unusable; the message names it."""


@dataclass(frozen=True)
class Setting:
    """One configuration of aezoo's trainer under test."""

    jit_compile: bool

    @property
    def label(self) -> str:
        return f"jit={'on' if self.jit_compile else 'off'}"


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


# --------------------------------------------------------------------- the machine


def cpu_facts(cpuinfo: str | None = None, cores: int | None = None) -> dict:
    """CPU model, cores, clock and fp32 peak GFLOP/s from ``/proc/cpuinfo``.

    peak = cores x GHz x fp32 lanes (16 with avx512f, 8 with avx2, 4 otherwise)
    x 2 (a fused multiply-add is two FLOPs, when ``fma`` is present) x FMA units per core.
    """
    if cpuinfo is None:
        cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    fields: dict[str, str] = {}
    megahertz = []
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        fields.setdefault(key, value)
        if key == "cpu MHz":
            megahertz.append(float(value))
    flags = set(fields.get("flags", "").split())
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    fma = 2 if "fma" in flags else 1
    ghz = max(megahertz) / 1000 if megahertz else math.nan
    return {
        "model": fields.get("model name", platform.processor() or "unknown"),
        "cores": cores,
        "ghz": round(ghz, 3),
        "fp32_lanes": lanes,
        "fma": fma == 2,
        "fma_units_per_core": FMA_UNITS_PER_CORE,
        "peak_gflops": round(cores * ghz * lanes * fma * FMA_UNITS_PER_CORE, 1),
        "peak_formula": "cores x GHz x fp32 lanes x 2 (FMA) x FMA units per core",
    }


def machine_facts() -> dict:
    """The machine and software the numbers were taken on."""
    gpus = [
        tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
        for gpu in tf.config.list_physical_devices("GPU")
    ]
    return {
        "cpu": cpu_facts(),
        "gpu": gpus or None,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "TensorFlow's default"),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def peak_rss_reset() -> bool:
    """Reset this process's RSS high-water mark (Linux ``clear_refs``); False if impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float | None:
    """This process's RSS high-water mark (``VmHWM``) in MiB, or None off Linux."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


# ------------------------------------------------------------------------ FLOPs


def forward_flops_per_sample(model) -> int:
    """Multiply-adds x 2 of one sample's forward pass through Dense and (transposed) convs.

    Nested models are walked; pooling, up-sampling, activations and losses are left out.
    """
    layers = keras.layers
    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers"):
            total += forward_flops_per_sample(layer)
        elif isinstance(layer, layers.Dense):
            fan_in, units = layer.kernel.shape
            positions = math.prod(layer.output.shape[1:-1])
            total += 2 * fan_in * units * positions
        elif isinstance(layer, layers.Conv2DTranspose):
            kernel_h, kernel_w, filters, channels = layer.kernel.shape
            positions = math.prod(layer.input.shape[1:-1])
            total += 2 * kernel_h * kernel_w * channels * filters * positions
        elif isinstance(layer, layers.Conv2D):
            kernel_h, kernel_w, channels, filters = layer.kernel.shape
            positions = math.prod(layer.output.shape[1:-1])
            total += 2 * kernel_h * kernel_w * channels * filters * positions
    return int(total)


def training_flops_per_sample(model) -> int:
    """FLOPs of one sample in a training step: forward + backward taken as 3x the forward."""
    return 3 * forward_flops_per_sample(model)


# ------------------------------------------------------------------------ arms


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


def _bench_data(params: Params, name: str, data_dir: Path, train_samples: int | None):
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


def _same_model(name, spec, params: Params, weights) -> keras.Model:
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
        self.model = _same_model(name, spec, params, weights)
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


def _float_images(images: np.ndarray) -> np.ndarray:
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
        self.model = _same_model(name, spec, params, weights)
        self.model.compile(optimizer=make_optimizer(spec, fused=False), loss=LOSSES[spec.loss])
        self.batch_size, self.seed = spec.batch_size, params.training.seed
        self.stored = (inputs["train"].x, clean["train"].x)  # as stored: uint8 or float16
        self.epochs_run = 0

        self.x, self.y = self._arrays() if not same_order else (None, None)
        self.val = (_float_images(inputs["val"].x), _float_images(clean["val"].x))
        self.test = _float_images(inputs["test"].x)

    def _arrays(self, order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """float32 (x, y) of the training split, in ``order`` if given."""
        stored_x, stored_y = self.stored
        pick = slice(None) if order is None else order
        x = _float_images(stored_x[pick])
        return x, x if stored_x is stored_y else _float_images(stored_y[pick])

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


def _measure_epoch(arm, timed: bool) -> tuple[float, float, float]:
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
    clean, inputs = _bench_data(params, name, data_dir, train_samples)
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
            train_s, epoch_s, val_loss = _measure_epoch(arm, timed=epoch > 0)
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


# ------------------------------------------------------------- pipeline overheads


def time_command(command: list[str], repeats: int = 1) -> tuple[float, subprocess.CompletedProcess]:
    """Median wall seconds of ``command`` over ``repeats`` runs, and the last run."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), done


def stage_scripts(dvc_yaml: Path = Path("dvc.yaml")) -> list[Path]:
    """The ``pipeline/*.py`` scripts that ``dvc.yaml``'s stage commands run, in order."""
    if not dvc_yaml.is_file():
        raise BenchmarkError(f"{dvc_yaml}: no such file (run the benchmark in the repository)")
    found = re.findall(r"python (pipeline/\w+\.py)", dvc_yaml.read_text())
    return [Path(script) for script in dict.fromkeys(found)]


def entry_point_seconds(scripts: list[Path], repeats: int = 3) -> dict:
    """Start-up time of each stage script (``python pipeline/x.py --help``) and of bare Python."""
    timings = {"python -c pass": round(time_command([sys.executable, "-c", "pass"], repeats)[0], 3)}
    for script in scripts:
        seconds, done = time_command([sys.executable, str(script), "--help"], repeats)
        if done.returncode != 0:
            raise BenchmarkError(f"{script} --help failed: {done.stderr.strip()[-300:]}")
        timings[script.name] = round(seconds, 3)
    return timings


# What each stage imports before it works (its heavy imports are deferred past argument
# parsing, so ``--help`` alone does not show them).
STAGE_LIBRARIES = {
    "aezoo.data": "fetch, prepare",
    "aezoo.corruption": "corrupt (TensorFlow)",
    "aezoo.training": "train (TensorFlow, Keras)",
    "aezoo.evaluation": "evaluate (TensorFlow, Keras, scikit-learn)",
    "aezoo.rendering": "render (matplotlib, Pillow)",
    "aezoo.reporting": "compare (pandas, matplotlib)",
    "aezoo.tracking": "track (MLflow)",
}


def library_import_seconds(libraries: dict[str, str] = STAGE_LIBRARIES, repeats: int = 3) -> dict:
    """Wall time of importing the library module each stage loads, in a fresh interpreter
    and as the stages do it (``aezoo.stages.heavy_imports``: garbage collector paused)."""
    timings = {}
    for module in libraries:
        code = f"from aezoo.stages import heavy_imports\nwith heavy_imports(): import {module}"
        seconds, done = time_command([sys.executable, "-c", code], repeats)
        if done.returncode != 0:
            raise BenchmarkError(f"import {module} failed: {done.stderr.strip()[-300:]}")
        timings[module] = round(seconds, 3)
    return timings


def dvc_noop_seconds() -> dict:
    """Time ``dvc status`` and, only when everything is up to date, a no-op ``dvc repro``."""
    status_s, status = time_command(["dvc", "status", "--json"])
    facts: dict = {"dvc_status_seconds": round(status_s, 3)}
    if status.returncode != 0:
        facts["dvc_repro"] = f"skipped: dvc status failed ({status.stderr.strip()[-200:]})"
    elif json.loads(status.stdout or "{}"):
        facts["dvc_repro"] = "skipped: the pipeline is not up to date (dvc status lists changes)"
    else:
        repro_s, repro = time_command(["dvc", "repro"])
        if repro.returncode != 0:
            raise BenchmarkError(f"dvc repro failed: {repro.stderr.strip()[-300:]}")
        facts["dvc_repro_noop_seconds"] = round(repro_s, 3)
    return facts


# ------------------------------------------------------------------------ report


def run_benchmark(
    params: Params,
    variants: list[str],
    settings: list[Setting],
    data_dir: Path,
    out_dir: Path,
    epochs: int = 5,
    train_samples: int | None = 20_000,
    time_dvc: bool = True,
    time_imports: bool = True,
) -> dict:
    """Benchmark ``variants`` under ``settings``; write and return the report."""
    for name in variants:
        params.variant(name)  # a clear error for an unknown name, before any work
    report = {
        "machine": machine_facts(),
        "settings": {
            "epochs_timed": epochs,
            "warm_up_epochs": 1,
            "train_samples": train_samples,
            "aezoo_settings": [setting.label for setting in settings],
            "quality_tolerance": QUALITY_TOLERANCE,
            "flops": "Dense and conv multiply-adds x 2 per sample; training step = 3x forward",
        },
        "variants": [
            bench_variant(name, params, settings, data_dir, epochs, train_samples)
            for name in variants
        ],
        "overheads": {
            "entry_point_seconds": entry_point_seconds(stage_scripts()),
            "library_import_seconds": library_import_seconds() if time_imports else {},
            **(dvc_noop_seconds() if time_dvc else {"dvc_repro": "skipped (--skip-dvc)"}),
        },
    }
    write_report(report, out_dir)
    return report


def parse_settings(jit_compile: str) -> list[Setting]:
    """One setting per comma-separated jit value."""
    switches = {"true": True, "on": True, "1": True, "false": False, "off": False, "0": False}
    jits = []
    for value in jit_compile.split(","):
        if value.strip().lower() not in switches:
            raise BenchmarkError(f"--jit-compile: {value!r} is not one of true/false")
        jits.append(switches[value.strip().lower()])
    return [Setting(jit) for jit in jits]


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _epoch_range(samples: int, seconds: list[float]) -> str:
    """Training samples/s of the slowest and the fastest timed epoch."""
    return f"{samples / max(seconds):,.0f}-{samples / min(seconds):,.0f}"


def table_rows(report: dict) -> list[list[str]]:
    """The benchmark table, one row per variant and arm."""
    rows = []
    peak = report["machine"]["cpu"]["peak_gflops"]
    for variant in report["variants"]:
        for arm in variant["arms"]:
            rows.append(
                [
                    variant["variant"],
                    arm["arm"],
                    arm["setting"],
                    _fmt(arm["samples_per_second"]),
                    _epoch_range(variant["train_samples"], arm["train_seconds"]),
                    _fmt(statistics.median(arm["epoch_seconds"]), 2),
                    _fmt(arm["predict_samples_per_second"]),
                    _fmt(arm["peak_rss_mib"]),
                    f"{arm['val_loss']:.5f}",
                    _fmt(arm["gflops_per_second"], 2) + f" ({arm['gflops_per_second'] / peak:.1%})",
                    _fmt(arm.get("ratio"), 2) + ("x" if "ratio" in arm else ""),
                    _quality(arm),
                ]
            )
    return rows


def _quality(arm: dict) -> str:
    """``ok (+0.06%)``: a's verdict and its val loss against c's; blank for b and c."""
    if "quality_ok" not in arm:
        return ""
    change = round(arm["val_loss_change"], 4) + 0.0  # + 0.0: no "-0.00%"
    return f"{'ok' if arm['quality_ok'] else 'WORSE'} ({change:+.2%})"


HEADER = [
    "variant",
    "arm",
    "setting",
    "train samples/s",
    "slowest-fastest epoch",
    "epoch s",
    "predict samples/s",
    "peak RSS MiB",
    "val loss",
    "GFLOP/s (of peak)",
    "a/b",
    "quality",
]


def render_markdown(report: dict) -> str:
    """``reports/benchmarks.md``: machine, settings, the table and the pipeline overheads."""
    machine, cpu, settings = report["machine"], report["machine"]["cpu"], report["settings"]
    images = _fmt(settings["train_samples"]) if settings["train_samples"] else "all"
    lines = [
        "# Benchmark: aezoo's trainer (a) against plain `model.fit` on numpy (b)",
        "",
        f"- Date: {machine['date']}",
        f"- Machine: {cpu['model']}, {cpu['cores']} cores at {cpu['ghz']} GHz; "
        f"GPU: {', '.join(machine['gpu']) if machine['gpu'] else 'none'}",
        f"- Software: Python {machine['python']}, TensorFlow {machine['tensorflow']}, "
        f"Keras {machine['keras']}; TF_ENABLE_ONEDNN_OPTS={machine.get('onednn', '?')} "
        "in both arms",
        f"- CPU fp32 peak: {cpu['peak_gflops']} GFLOP/s = {cpu['peak_formula']} "
        f"= {cpu['cores']} x {cpu['ghz']} x {cpu['fp32_lanes']} x {2 if cpu['fma'] else 1} "
        f"x {cpu['fma_units_per_core']}, at the clock /proc/cpuinfo states (a core that boosts "
        "above it can exceed this figure)",
        f"- Settings: {images} training images, 1 warm-up epoch + "
        f"{settings['epochs_timed']} timed epochs per arm, arms alternating epoch by epoch; "
        f"aezoo settings {', '.join(settings['aezoo_settings'])}",
        f"- FLOPs: {settings['flops']}",
        "- Train samples/s: median over the timed epochs, training part only (and the "
        "slowest and fastest of them); epoch s "
        "includes validation on the held-out split; predict on the test split "
        "(a: the evaluate stage's batch size, b and c: `model.predict(x)`)",
        "- Arms: a is aezoo's trainer; b is `model.fit(x, y, shuffle=True)` as the seeds run "
        "it, the baseline of a/b; c is the same `model.fit` on a's batches in a's order "
        "(`shuffle=False` on arrays put in that order before the epoch's clock starts)",
        f"- Quality: ok when a's final val loss is at most c's "
        f"+ {settings['quality_tolerance']:.0%}; in brackets, a's against c's (same initial "
        "weights and seeds, same batches: what is left is round-off, which Adam amplifies)",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" for _ in HEADER) + "|",
        *("| " + " | ".join(row) + " |" for row in table_rows(report)),
        "",
        "## Pipeline overheads",
        "",
        "| command | seconds |",
        "|---|---|",
    ]
    overheads = report["overheads"]
    for script, seconds in overheads["entry_point_seconds"].items():
        command = script if script.startswith("python -c") else f"python pipeline/{script} --help"
        lines.append(f"| `{command}` | {seconds:.2f} |")
    for module, seconds in overheads.get("library_import_seconds", {}).items():
        stages = STAGE_LIBRARIES.get(module, "")
        lines.append(f"| `import {module}` (in `heavy_imports()`): {stages} | {seconds:.2f} |")
    if "dvc_status_seconds" in overheads:
        lines.append(f"| `dvc status` | {overheads['dvc_status_seconds']:.2f} |")
    if "dvc_repro_noop_seconds" in overheads:
        lines.append(f"| `dvc repro` (no-op) | {overheads['dvc_repro_noop_seconds']:.2f} |")
    else:
        lines.append(f"| `dvc repro` (no-op) | {overheads['dvc_repro']} |")
    return "\n".join(lines) + "\n"


def render_table(report: dict) -> str:
    """The benchmark table as aligned plain text, for the terminal."""
    rows = [HEADER, *table_rows(report)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
    )


def write_report(report: dict, out_dir: Path) -> None:
    """Write ``benchmarks.json`` and ``benchmarks.md`` into ``out_dir`` atomically."""
    write_json(out_dir / "benchmarks.json", report)
    with atomic_path(out_dir / "benchmarks.md") as temporary:
        temporary.write_text(render_markdown(report))


def main(params: Params, args) -> None:
    """Run the benchmark from ``pipeline/bench.py``'s parsed arguments; print the table."""
    training = params.training
    settings = parse_settings(args.jit_compile or str(training.jit_compile))
    if args.epochs < 1:
        raise BenchmarkError(f"--epochs: {args.epochs}: must be at least 1")
    variants = args.variants.split(",") if args.variants else list(params.variants)
    report = run_benchmark(
        params,
        variants,
        settings,
        args.data,
        args.out,
        epochs=args.epochs,
        train_samples=args.train_samples or None,
        time_dvc=not args.skip_dvc,
    )
    print(render_table(report))
    print(f"wrote {args.out / 'benchmarks.md'} and {args.out / 'benchmarks.json'}")
