"""Stage train: train one variant; write its models, progress frames, history and run facts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aezoo.config import Params
from aezoo.data import Split, load_prepared
from aezoo.io import atomic_path, write_arrays, write_history, write_json
from aezoo.stages import heavy_imports, load_inputs
from aezoo.stages.loading import MODEL_PARTS


def train(params: Params, name: str, data_dir: Path, model_dir: Path, report_dir: Path) -> None:
    """Train one variant; write its three models, ``progress.npz``, ``history.csv`` (the
    per-epoch losses, a DVC plot) and ``train.json`` (run facts: counts and timings)."""
    spec = params.variant(name)  # an unknown name fails before TensorFlow's import
    with heavy_imports():
        from aezoo.training import train_variant  # TensorFlow: imported only where needed

    clean = load_prepared(data_dir / "clean.npz")
    inputs = load_inputs(data_dir, spec.input, clean)
    fresh_noise = params.corruption(spec.input) if spec.fresh_noise else None
    print(f"training {name} ({spec.architecture} {spec.objective}, input: {spec.input})")
    result = train_variant(name, spec, params, clean, inputs, fresh_noise)
    write_training_outputs(result, clean, model_dir, report_dir)
    facts = result.facts
    print(
        f"{name}: {facts['parameters']:,} parameters, {facts['epochs_run']} epochs run, "
        f"kept epoch {facts['best_epoch']} (val_loss {facts['best_val_loss']:.5f}), "
        f"{facts['wall_seconds']:.0f}s"
    )


def write_training_outputs(
    result, clean: dict[str, Split], model_dir: Path, report_dir: Path
) -> None:
    """The three models, the progress frames, ``history.csv`` and ``train.json``."""
    model_dir.mkdir(parents=True, exist_ok=True)
    for part in MODEL_PARTS:
        with atomic_path(model_dir / f"{part}.keras") as temporary:
            getattr(result.parts, part).save(temporary)
    write_arrays(
        model_dir / "progress.npz",
        {
            "indices": result.progress_indices,
            "inputs": np.clip(result.progress_inputs * 255 + 0.5, 0, 255).astype(np.uint8),
            "targets": clean["test"].x[result.progress_indices],
            "frames": result.progress_frames,
        },
    )
    write_history(report_dir / "history.csv", result.history)
    write_json(report_dir / "train.json", result.facts)
