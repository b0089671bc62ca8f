"""Study stage denoise_classical (studies/dvc.yaml): the classical denoisers at one noise level.

Each method's setting is chosen on a fixed validation subset; the chosen setting is then
scored on the fixed test subset that the study's autoencoders are compared on.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from aezoo.config import Params
from aezoo.data import load_prepared, to_unit_float
from aezoo.errors import ConfigError
from aezoo.io import write_arrays, write_json
from aezoo.stages import CHOICES, CLASSICAL, heavy_imports


def default_workers() -> int:
    """Processes for the per-image methods: the CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def classical_denoising(
    params: Params, std: float, data_dir: Path, out_dir: Path, workers: int
) -> None:
    """Write ``classical.npz`` (per method, each test-subset image's PSNR: ``<method>``, and
    the noisy input's: ``noisy``; the subset's ``indices``) and ``classical.json`` (each
    method's chosen setting, every candidate's validation PSNR, seconds per image)."""
    study = params.studies.denoising
    noise = study.noise(std)  # an unknown level fails before any work
    from aezoo import denoising  # SciPy: imported once the arguments are known to be good

    denoising.require_packages()
    clean = load_prepared(data_dir / "clean.npz")
    largest_pca = max(study.pca_components)
    if largest_pca > min(len(clean["train"]), denoising.PIXELS):
        raise ConfigError(
            f"studies.denoising.pca_components: PCA cannot have {largest_pca} components with "
            f"{len(clean['train']):,} training images (data.train_subset)"
        )
    with heavy_imports():
        from aezoo.corruption import noisy_splits  # TensorFlow: imported only where needed

    noisy = noisy_splits({"val": clean["val"], "test": clean["test"]}, noise)
    val_rows = denoising.fixed_subset(len(clean["val"]), study.validation_images, study.seed)
    test_rows = denoising.fixed_subset(len(clean["test"]), study.test_images, study.seed)
    val_clean = to_unit_float(clean["val"].x[val_rows])
    val_noisy = noisy["val"].x[val_rows].astype(np.float32)
    test_clean = to_unit_float(clean["test"].x[test_rows])
    test_noisy = noisy["test"].x[test_rows].astype(np.float32)

    methods = [
        (denoising.gaussian_filter(), study.gaussian_sigmas),
        (denoising.median_filter(), study.median_sizes),
        (
            denoising.pca_projection(to_unit_float(clean["train"].x), largest_pca),
            study.pca_components,
        ),
        (
            denoising.nl_means(study.nl_means.patch_size, study.nl_means.patch_distance, workers),
            study.nl_means.h_factors,
        ),
        (denoising.bm3d(workers), study.bm3d_sigma_factors),
    ]
    scores = {
        "indices": test_rows,
        "noisy": denoising.per_image_psnr(test_clean, np.clip(test_noisy, 0, 1)),
    }
    choices = {"noise_std": std, "test_images": len(test_rows), "validation_images": len(val_rows)}
    for method, candidates in methods:
        started = time.perf_counter()
        best, tried = denoising.choose_setting(method, candidates, val_noisy, val_clean, std)
        chose = time.perf_counter()
        output = denoising.clipped(method, test_noisy, best, std)
        scores[method.name] = denoising.per_image_psnr(test_clean, output)
        seconds = time.perf_counter() - chose
        choices[method.name] = {
            "setting": method.setting_name,
            "chosen": best,
            "validation_psnr_db": {str(setting): value for setting, value in tried.items()},
            "test_psnr_db": float(scores[method.name].mean()),
            "choice_seconds": round(chose - started, 1),
            "test_ms_per_image": round(1000 * seconds / len(test_rows), 2),
        }
        print(
            f"std {std}: {method.name} ({method.setting_name} {best}) test PSNR "
            f"{scores[method.name].mean():.2f} dB; {seconds:.0f} s for {len(test_rows):,} images"
        )
    write_arrays(out_dir / CLASSICAL, scores)
    write_json(out_dir / CHOICES, choices)
