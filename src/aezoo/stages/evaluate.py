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
    ``test_outputs`` (an ``.npz``), what the render stage draws that needs the model and
    the values per test image behind the figures (keys ``per_image.*``: the compare stage's
    intervals)."""
    with heavy_imports():
        from aezoo.evaluation import LoadedModels, evaluate_variant, figure_arrays

    spec = params.variant(name)
    clean = load_prepared(data_dir / "clean.npz")
    inputs = load_inputs(data_dir, spec.input, clean)
    models = LoadedModels(**load_models(model_dir))
    print(f"evaluating {name} on {len(clean['test']):,} test images", flush=True)
    result, facts, per_image = evaluate_variant(spec, params, models, clean, inputs)
    arrays = figure_arrays(spec, params, models, clean, inputs)
    write_arrays(
        test_outputs, arrays | {PER_IMAGE + key: values for key, values in per_image.items()}
    )
    write_json(report_dir / "evaluate.json", facts)
    write_json(report_dir / "metrics.json", result)
    quality = result["reconstruction"]
    baseline = "pca_denoise" if spec.denoising else "pca"
    print(
        f"{name}: test MSE {quality['mse']:.4f}, BCE {quality['bce']:.4f}, "
        f"PSNR {quality['psnr_db']:.2f} dB, SSIM {quality['ssim']:.3f}; "
        f"{baseline}({facts['pca_components']}) MSE {result['baselines'][baseline]['mse']:.4f}"
    )
