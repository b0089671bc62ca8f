"""Stage evaluate: one trained variant measured on the test split, with baselines beside it."""

from __future__ import annotations

from pathlib import Path

from aezoo.config import Params
from aezoo.data import load_prepared
from aezoo.io import write_arrays, write_json
from aezoo.stages import PER_IMAGE, heavy_imports, load_inputs
from aezoo.stages.loading import load_models


def evaluate(
    params: Params,
    name: str,
    data_dir: Path,
    model_dir: Path,
    report_dir: Path,
    *,
    test_outputs: Path,
) -> None:
    """Write ``metrics.json`` (the test figures that judge the model, a DVC metric),
    ``evaluate.json`` (facts: counts, the baselines' chosen settings) and, to
    ``test_outputs`` (an ``.npz``), what the render stage draws that needs the model, the
    values per test image behind the figures (keys ``per_image.*``: the compare stage's
    intervals) and the validation images' errors (``validation_mse*``: the reference of
    ``aezoo``'s out-of-distribution flag)."""
    spec = params.variant(name)  # an unknown variant fails before TensorFlow is imported
    with heavy_imports():
        from aezoo.evaluation import (
            LoadedModels,
            evaluate_variant,
            figure_arrays,
            validation_errors,
        )

    clean = load_prepared(data_dir / "clean.npz")
    inputs = load_inputs(data_dir, spec.input, clean)
    models = LoadedModels(**load_models(model_dir))
    print(f"evaluating {name} on {len(clean['test']):,} test images", flush=True)
    result, facts, per_image = evaluate_variant(spec, params, models, clean, inputs)
    arrays = figure_arrays(spec, params, models, clean, inputs)
    arrays |= validation_errors(spec, models, clean, inputs)
    write_arrays(
        test_outputs, arrays | {PER_IMAGE + key: values for key, values in per_image.items()}
    )
    write_json(report_dir / "evaluate.json", facts)
    write_json(report_dir / "metrics.json", result)
    print(summary_line(name, spec.denoising, result, facts["pca_components"]))


def summary_line(name: str, denoising: bool, result: dict, pca_components: int) -> str:
    """The evaluate stage's one-line verdict: the model's test figures beside its baselines
    (a denoiser's: the noisy input and the classical denoisers, by PSNR)."""
    quality, baselines = result["reconstruction"], result["baselines"]
    line = (
        f"{name}: test MSE {quality['mse']:.4f}, BCE {quality['bce']:.4f}, "
        f"PSNR {quality['psnr_db']:.2f} dB, SSIM {quality['ssim']:.3f}; "
    )
    if not denoising:
        return line + f"pca({pca_components}) MSE {baselines['pca']['mse']:.4f}"
    others = ", ".join(
        f"{method}{f'({pca_components})' if method.startswith('pca') else ''} "
        f"{scores['psnr_db']:.2f}"
        for method, scores in baselines.items()
        if method != "pca"  # the clean-image PCA does not denoise
    )
    return line + f"PSNR of the noisy input {result['corrupted_input']['psnr_db']:.2f}, {others} dB"
