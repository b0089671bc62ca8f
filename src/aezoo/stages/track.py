"""Stage track: mirror one variant's outputs into an MLflow run (``aezoo.tracking``)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from aezoo.config import Params
from aezoo.data import load_prepared, to_unit_float
from aezoo.figures import figures_for
from aezoo.io import read_history, read_json, sha256_of
from aezoo.stages import heavy_imports
from aezoo.stages.loading import load_models

EXAMPLE_IMAGES = 4  # test images in the logged model's signature example


def track(params: Params, name: str, data_dir: Path, model_dir: Path, report_dir: Path) -> None:
    """Log variant ``name``'s config, history, test metrics, figures and model in one run;
    with ``tracking.enabled: false`` do nothing."""
    spec = params.variant(name)
    if not params.tracking.enabled:
        print(f"tracking is off (tracking.enabled: false): {name} is not logged")
        return
    with heavy_imports():
        from aezoo import tracking

    facts = read_json(report_dir / "train.json")
    evaluated = read_json(report_dir / "evaluate.json")
    metrics = read_json(report_dir / "metrics.json")
    history = read_history(report_dir / "history.csv")
    model_path = model_dir / "autoencoder.keras"
    input_file = data_dir / ("clean.npz" if spec.input == "clean" else f"{spec.input}.npz")
    values = {
        **tracking.flatten(spec.model_dump(mode="json"), "variant"),
        **tracking.flatten(params.training.model_dump(mode="json"), "training"),
        **tracking.flatten(
            params.data.model_dump(mode="json", exclude={"mirror", "sources"}), "data"
        ),
        "data.input": spec.input,
        "data.clean_sha256": sha256_of(data_dir / "clean.npz"),
        "data.input_sha256": sha256_of(input_file),
        "epochs": params.epochs(name),  # the most it may train; selection may stop sooner
        "epochs_run": facts["epochs_run"],
        "best_epoch": facts["best_epoch"],
        "code_size": spec.code_size,
        "parameters": facts["parameters"],
        **tracking.flatten(evaluated, "evaluate"),
    }
    if spec.denoising:
        corruption = params.corruption(spec.input).model_dump(mode="json")
        values |= tracking.flatten(corruption, "data.corruption")
    full_run = params.is_full_run(name)
    tags = {
        "variant": name,
        "architecture": spec.architecture,
        "objective": spec.objective,
        "input": spec.input,
        "full_run": str(full_run).lower(),
        "model_sha256": sha256_of(model_path),
        "train_seconds": str(facts["wall_seconds"]),
        "samples_per_second": str(facts["samples_per_second"]),
    }
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]

    figure_dir = report_dir / "figures"
    figures = [figure.file for figure in figures_for(spec)]
    mirrored = [model_path, *(report_dir / f for f in ("metrics.json", "history.csv"))]
    mirrored += [figure_dir / file for file in figures]
    register = params.tracking.register_models and full_run
    digest = hashlib.sha256(json.dumps([values, tags, register], sort_keys=True).encode())
    for path in mirrored:
        digest.update(sha256_of(path).encode())

    example = to_unit_float(load_prepared(input_file)["test"].x[:EXAMPLE_IMAGES])[..., None]
    record = tracking.VariantRecord(
        name=name,
        params=values,
        tags=tags,
        history={
            "loss": list(history["loss"]),
            "val_loss": list(history["val_loss"]),
            "epoch_seconds": list(facts["epoch_seconds"]),
        },
        test_metrics=metrics,
        figure_dir=figure_dir,
        load_model=lambda: load_models(model_dir, ("autoencoder",))["autoencoder"],
        example=example,
        register=register,
        champion=register and "dvc_exp_name" not in tags,
        mirror_sha256=digest.hexdigest(),
        figures=figures,
    )
    tracking.log_variant(params.tracking, record)
