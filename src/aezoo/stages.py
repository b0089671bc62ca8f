"""The pipeline's stages as library functions: read inputs, compute, write outputs atomically.

``pipeline/*.py`` only parse arguments and call these; ``dvc.yaml`` names the same paths.
"""

from __future__ import annotations

import csv
import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aezoo import metrics
from aezoo.config import Params
from aezoo.data import Split, fetch_mnist, load_prepared, prepare_mnist, to_unit_float
from aezoo.io import atomic_path, read_json, write_json

if TYPE_CHECKING:
    from aezoo.tracking import TrackedRun
    from aezoo.training import TrainingResult


@contextmanager
def heavy_imports() -> Iterator[None]:
    """Import TensorFlow, scikit-learn or MLflow with Python's cyclic garbage collector paused.

    Importing TensorFlow creates ~400,000 long-lived objects and almost no garbage, yet sets
    off ~1,000 collections, a few of them full ones: ~1.5 s of its ~7 s of CPU (measured with
    the imports interleaved). Collection resumes for the stage's own work.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def fetch(params: Params, raw_dir: Path) -> None:
    """Fetch the four canonical MNIST files into ``raw_dir``, verified."""
    fetch_mnist(params.data, raw_dir)


def prepare(params: Params, raw_dir: Path, out_path: Path) -> None:
    """Decode, split and store MNIST as uint8 arrays."""
    summary = prepare_mnist(params.data, raw_dir, out_path)
    for key, shape in summary["shapes"].items():
        print(f"{key}: {tuple(shape)}", file=sys.stderr)
    print(f"training pixel mean: {summary['train_pixel_mean']:.4f}", file=sys.stderr)


def corrupt(params: Params, name: str, clean_path: Path, out_path: Path, stats_path: Path) -> None:
    """Write a corrupted copy of every split and the corruption's test statistics."""
    with heavy_imports():
        from aezoo.corruption import corrupt_split  # TensorFlow: imported only where needed

    spec = params.corruption(name)
    clean = load_prepared(clean_path)
    corrupted = {split: corrupt_split(data.x, spec, split) for split, data in clean.items()}
    with atomic_path(out_path) as temporary:
        np.savez(
            temporary,
            **{f"x_{split}": images for split, images in corrupted.items()},
            **{f"y_{split}": data.y for split, data in clean.items()},
        )
    target, noisy = to_unit_float(clean["test"].x), to_unit_float(corrupted["test"])
    stats = {
        "kind": spec.kind,
        "test_mse": metrics.mse(target, noisy),
        "test_psnr_db": metrics.psnr(target, noisy),
        "test_mean": float(noisy.mean()),
        "clean_test_mean": float(target.mean()),
    }
    write_json(stats_path, stats)
    print(f"{name}: test MSE {stats['test_mse']:.4f}, PSNR {stats['test_psnr_db']:.2f} dB")


def load_inputs(params: Params, input_name: str, clean: dict[str, Split], data_dir: Path):
    """The model inputs for ``input_name``: the clean splits, or the corrupt stage's copies."""
    if input_name == "clean":
        return clean
    return load_prepared(data_dir / f"{input_name}.npz")


def train(params: Params, name: str, data_dir: Path, model_dir: Path, report_dir: Path) -> None:
    """Train one variant; write its three models, history, progress frames and run facts.

    With tracking on, the variant's MLflow run gets its config, per-epoch losses and the
    model; its id goes to ``model_dir/mlflow_run.json`` for the evaluate and render stages.
    """
    with heavy_imports():
        from aezoo.training import train_variant  # TensorFlow: imported only where needed

    spec = params.variant(name)
    clean = load_prepared(data_dir / "clean.npz")
    inputs = load_inputs(params, spec.input, clean, data_dir)
    fresh_noise = params.corruption(spec.input) if spec.fresh_noise else None
    with training_run(params, name, data_dir) as run:
        print(f"training {name} ({spec.family}, input: {spec.input})", flush=True)
        result = train_variant(
            name, spec, params, clean, inputs, fresh_noise, callbacks=run.epoch_callbacks()
        )
        write_training_outputs(result, clean, model_dir, report_dir)
        run.log_trained_model(params, result.parts.autoencoder, data_dir, model_dir)
    print(
        f"{name}: {result.facts['parameters']:,} parameters, {result.facts['epochs']} epochs, "
        f"{result.facts['wall_seconds']:.0f}s, val_loss {result.facts['final_val_loss']:.5f}"
    )


def write_training_outputs(
    result: TrainingResult, clean: dict[str, Split], model_dir: Path, report_dir: Path
) -> None:
    """The three models, the progress frames, ``history.csv`` and ``train.json``."""
    model_dir.mkdir(parents=True, exist_ok=True)
    for part in ("autoencoder", "encoder", "decoder"):
        with atomic_path(model_dir / f"{part}.keras") as temporary:
            getattr(result.parts, part).save(temporary)
    with atomic_path(model_dir / "progress.npz") as temporary:
        np.savez(
            temporary,
            indices=result.progress_indices,
            inputs=np.clip(result.progress_inputs * 255 + 0.5, 0, 255).astype(np.uint8),
            targets=clean["test"].x[result.progress_indices],
            frames=result.progress_frames,
        )
    with atomic_path(report_dir / "history.csv") as temporary, open(temporary, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "loss", "val_loss", "epoch_seconds"])
        for epoch, seconds in enumerate(result.epoch_seconds):
            row = [result.history["loss"][epoch], result.history["val_loss"][epoch], seconds]
            writer.writerow([epoch + 1, *(f"{value:.6g}" for value in row)])
    write_json(report_dir / "train.json", result.facts)


def evaluate(
    params: Params,
    name: str,
    data_dir: Path,
    model_dir: Path,
    report_dir: Path,
    *,
    test_outputs: Path,
) -> None:
    """Measure one trained variant on the test split; write ``metrics.json``, and to
    ``test_outputs`` (an ``.npz``) what the render stage draws that needs the model.

    With tracking on, every number goes into the variant's run as ``test.<key>``.
    """
    with heavy_imports():
        from aezoo.evaluation import evaluate_variant, figure_arrays, load_models  # TensorFlow

    spec = params.variant(name)
    run = variant_run(params, name, data_dir, model_dir, report_dir)
    clean = load_prepared(data_dir / "clean.npz")
    inputs = load_inputs(params, spec.input, clean, data_dir)
    models = load_models(model_dir)
    print(f"evaluating {name} on {len(clean['test']):,} test images", flush=True)
    result = evaluate_variant(name, spec, params, models, clean, inputs)
    train_facts = report_dir / "train.json"
    if train_facts.is_file():
        facts = read_json(train_facts)
        result["parameters"] = facts["parameters"]
        result["epochs"] = facts["epochs"]
        result["train_seconds"] = facts["wall_seconds"]
    write_json(report_dir / "metrics.json", result)
    with atomic_path(test_outputs) as temporary:
        np.savez(temporary, **figure_arrays(spec, params, models, clean, inputs))
    logged = read_json(report_dir / "metrics.json")  # as written: plain floats, nulls
    run.log_test_metrics(logged)
    quality = result["reconstruction"]
    print(
        f"{name}: test MSE {quality['mse']:.4f}, BCE {quality['bce']:.4f}, "
        f"PSNR {quality['psnr_db']:.2f} dB, SSIM {quality['ssim']:.3f}; "
        f"PCA({result['baselines']['pca']['components']}) MSE "
        f"{result['baselines']['pca']['mse']:.4f}"
    )


def render(
    params: Params,
    name: str,
    data_dir: Path,
    model_dir: Path,
    report_dir: Path,
    *,
    test_outputs: Path,
) -> Path:
    """Draw one variant's figures from the evaluate stage's ``test_outputs`` and the train
    stage's outputs; with tracking on, log them into its run as ``figures/``."""
    with heavy_imports():
        from aezoo import rendering  # matplotlib and Pillow: imported only where needed

    run = variant_run(params, name, data_dir, model_dir, report_dir)
    figure_dir = rendering.render(params, name, data_dir, model_dir, report_dir, test_outputs)
    run.log_artifacts(figure_dir, "figures")
    return figure_dir


# ---------------------------------------------------------------- tracking, when on


class NoRun:
    """Stands in for an MLflow run when tracking is off: every call does nothing."""

    def __getattr__(self, _name: str) -> Callable[..., Any]:
        return lambda *args, **kwargs: [] if _name == "epoch_callbacks" else None


@contextmanager
def training_run(params: Params, name: str, data_dir: Path) -> Iterator[TrackedRun | NoRun]:
    """The variant's new MLflow run (``tracking.training_run``), or a ``NoRun`` when off.

    With tracking off MLflow is not even imported: that saves every stage ~2 s.
    """
    if not params.tracking.enabled:
        yield NoRun()
        return
    with heavy_imports():
        from aezoo import tracking

    with tracking.training_run(params, name, data_dir) as run:
        yield run


def variant_run(
    params: Params, name: str, data_dir: Path, model_dir: Path, report_dir: Path
) -> TrackedRun | NoRun:
    """The run the train stage created for ``name`` (``tracking.variant_run``), or a ``NoRun``."""
    if not params.tracking.enabled:
        return NoRun()
    with heavy_imports():
        from aezoo import tracking

    return tracking.variant_run(params, name, data_dir, model_dir, report_dir)
