"""Study stage trial (studies/dvc.yaml): one network trained by the zoo's trainer, scored.

A *trial* trains one network with the zoo's trainer and settings (``training``, the data
splits, validation-only selection) and scores it on every test image: a variant of the zoo
with another seed (the seed study), or a model of the frontier study at one code size. It
writes its models, history and run facts, and ``scores.npz``: the values per test image
that the study's report turns into means and bootstrap intervals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aezoo.config import AnyVariant, GaussianNoise, Params, TrainingConfig
from aezoo.data import load_prepared, to_unit_float
from aezoo.io import write_arrays, write_json
from aezoo.stages import SCORES, heavy_imports, load_inputs

TRIAL = "trial.json"  # a trial's facts: what was trained, its means and run facts


def trial_params(params: Params, name: str, spec: AnyVariant, seed: int) -> Params:
    """``params`` with ``spec`` as its only variant, ``name``, trained with ``seed``."""
    training = TrainingConfig.model_validate({**params.training.model_dump(), "seed": seed})
    return params.model_copy(update={"variants": {name: spec}, "training": training})


def run_trial(
    params: Params,
    name: str,
    spec: AnyVariant,
    seed: int,
    data_dir: Path,
    out_dir: Path,
    *,
    bounds: bool,
    noise: GaussianNoise | None = None,
) -> None:
    """Train ``spec`` as variant ``name`` with ``seed``; write to ``out_dir`` its models
    (``model/``), ``history.csv``, ``train.json``, ``scores.npz`` (per test image: ``mse``,
    ``bce``; with ``bounds`` for a VAE, ``neg_elbo`` and ``iwae_nll``; with ``noise``,
    ``val_mse`` per validation image) and
    ``trial.json`` (the means beside the run facts). With ``noise``, the model denoises
    that noise: fresh every epoch (``fresh_noise``) or a fixed copy, as the zoo's denoisers."""
    with heavy_imports():
        from aezoo.corruption import noisy_splits
        from aezoo.evaluation import (
            LoadedModels,
            as_model_input,
            per_image_bce,
            per_image_mse,
            vae_bounds_per_image,
        )
        from aezoo.stages.train import write_training_outputs
        from aezoo.training import train_variant

    settings = trial_params(params, name, spec, seed)
    clean = load_prepared(data_dir / "clean.npz")
    if noise is None:
        inputs = load_inputs(data_dir, spec.input, clean)
        fresh_noise = params.corruption(spec.input) if spec.fresh_noise else None
    else:
        inputs = noisy_splits(clean, noise)
        fresh_noise = noise if spec.fresh_noise else None
    print(f"trial {name}: {spec.architecture} {spec.objective}, code {spec.code_size}, seed {seed}")
    result = train_variant(name, spec, settings, clean, inputs, fresh_noise)
    write_training_outputs(result, clean, out_dir / "model", out_dir)

    batch = params.evaluation.batch_size
    test_inputs = inputs["test"].x
    target = to_unit_float(clean["test"].x)
    output = result.parts.autoencoder.predict(
        as_model_input(test_inputs), batch_size=batch, verbose=0
    )
    scores = {"mse": per_image_mse(target, output), "bce": per_image_bce(target, output)}
    if noise is not None:  # a denoiser: its validation error too, to choose among trials
        val_output = result.parts.autoencoder.predict(
            as_model_input(inputs["val"].x), batch_size=batch, verbose=0
        )
        scores["val_mse"] = per_image_mse(to_unit_float(clean["val"].x), val_output)
    if bounds and spec.variational:
        models = LoadedModels(result.parts.autoencoder, result.parts.encoder, result.parts.decoder)
        samples = params.evaluation.iwae_samples
        scores |= vae_bounds_per_image(models, test_inputs, clean["test"].x, samples, batch * 10)
    write_arrays(out_dir / SCORES, scores)
    means = {key: float(np.mean(values)) for key, values in scores.items()}
    facts = {key: result.facts[key] for key in ("parameters", "epochs_run", "best_epoch")}
    write_json(
        out_dir / TRIAL,
        {
            "name": name,
            "seed": seed,
            "code_size": spec.code_size,
            **({"noise_std": noise.std} if noise is not None else {}),
            "test_images": len(target),
            **{
                key if key.startswith("val_") else f"test_{key}": value
                for key, value in means.items()
            },
            **facts,
            "wall_seconds": result.facts["wall_seconds"],
        },
    )
    shown = ", ".join(f"{key} {value:.4f}" for key, value in means.items())
    print(f"{name} (seed {seed}): test {shown}")
