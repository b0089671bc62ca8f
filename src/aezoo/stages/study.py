"""The studies' other stages (studies/dvc.yaml): PCA's frontier and the studies' reports.

They read the trials' ``scores.npz`` (values per test image, :mod:`aezoo.stages.trial`) and
write each study's tables and chart (:mod:`aezoo.studies`) into ``reports/studies``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aezoo.config import Params
from aezoo.data import load_prepared, to_unit_float
from aezoo.errors import ConfigError, DataError
from aezoo.io import read_arrays, read_json, write_arrays, write_bytes
from aezoo.stages import CHOICES, CLASSICAL, SCORES, heavy_imports


def per_image_mse(target: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Each image's mean squared error (float32), as the evaluate stage computes it."""
    diff = target.reshape(len(target), -1).astype(np.float64) - prediction.reshape(
        len(prediction), -1
    )
    return np.mean(diff * diff, axis=1).astype(np.float32)


def pca_frontier(params: Params, data_dir: Path, out: Path) -> None:
    """PCA fit on the training split at each of the frontier's code sizes: each test
    image's squared error, as ``out`` (``.npz``, one array ``mse_<size>`` per size)."""
    with heavy_imports():
        from sklearn.decomposition import PCA

    clean = load_prepared(data_dir / "clean.npz")
    train = to_unit_float(clean["train"].x).reshape(len(clean["train"]), -1)
    test = to_unit_float(clean["test"].x).reshape(len(clean["test"]), -1)
    sizes = sorted(set(params.studies.frontier.code_sizes))
    if max(sizes) > min(train.shape):
        raise ConfigError(
            f"studies.frontier.code_sizes: PCA cannot have {max(sizes)} components with "
            f"{len(train):,} training images of {train.shape[1]} pixels (data.train_subset)"
        )
    pca = PCA(n_components=max(sizes), svd_solver="covariance_eigh").fit(train)
    codes = pca.transform(test)
    arrays = {}
    for size in sizes:  # the top ``size`` components of the widest fit are PCA-``size``'s
        reconstruction = codes[:, :size] @ pca.components_[:size] + pca.mean_
        arrays[f"mse_{size}"] = per_image_mse(test, reconstruction)
        print(f"PCA-{size}: test MSE {arrays[f'mse_{size}'].mean():.5f}")
    write_arrays(out, arrays)


# ---------------------------------------------------------------------- reports


def _write_report(stem: Path, frame, markdown: str, chart=None) -> None:
    """A study's table (``<stem>.csv``), report (``.md``) and chart (``.png``)."""
    from aezoo.rendering import png_bytes

    write_bytes(stem.with_suffix(".csv"), frame.to_csv(index=False, float_format="%.6g").encode())
    if chart is not None:
        write_bytes(stem.with_suffix(".png"), png_bytes(chart))
    write_bytes(stem.with_suffix(".md"), markdown.encode())


def seeds_report(params: Params, trials_dir: Path, out_dir: Path) -> None:
    """``seeds.md`` and ``seeds.csv`` in ``out_dir`` from the seed trials in ``trials_dir``
    (``<variant>-<seed>/``)."""
    from aezoo import studies

    study = params.studies.seeds
    runs, figures = {}, {}
    for variant in study.variants:
        figure = studies.FIGURE_OF_LOSS[params.variant(variant).loss]
        figures[variant] = figure
        for seed in study.seeds:
            maker = f"seed_trial@{variant}-{seed}"
            runs[variant, seed] = read_arrays(
                trials_dir / f"{variant}-{seed}" / SCORES, [figure], maker
            )[figure]
    frame = studies.seeds_frame(runs, figures, params.comparison)
    _write_report(out_dir / "seeds", frame, studies.seeds_markdown(frame))
    for _, row in frame.iterrows():
        print(
            f"{row['variant']}: {row['figure']} mean {row['mean']:.4f}, spread {row['std']:.5f}, "
            f"test ± {row['test_half_width']:.5f}"
        )


def frontier_report(params: Params, trials_dir: Path, pca_path: Path, out_dir: Path) -> None:
    """``frontier.md``, ``frontier.csv`` and ``frontier.png`` in ``out_dir`` from the
    frontier trials in ``trials_dir`` (``<model>-<code size>/``) and PCA's scores."""
    from aezoo import studies

    study = params.studies.frontier
    mse = {
        (model, size): read_arrays(
            trials_dir / f"{model}-{size}" / SCORES, ["mse"], f"frontier_trial@{model}-{size}"
        )["mse"]
        for model in study.models
        for size in study.code_sizes
    }
    keys = [f"mse_{size}" for size in study.code_sizes]
    pca_arrays = read_arrays(pca_path, keys, "frontier_pca")
    pca = {size: pca_arrays[f"mse_{size}"] for size in study.code_sizes}
    frame = studies.frontier_frame(mse, pca, params.comparison)
    verdicts = studies.frontier_verdicts(frame)
    models = list(study.models)
    test_images = len(next(iter(mse.values())))
    _write_report(
        out_dir / "frontier",
        frame,
        studies.frontier_markdown(frame, verdicts, models, test_images),
        studies.frontier_chart(frame, models, test_images),
    )
    for _, row in verdicts.iterrows():
        print(
            f"code {row['code_size']}: {row['best_model']} {row['best_mse']:.5f} vs PCA "
            f"{row['pca_mse']:.5f}: {row['difference']:+.5f} [{row['low']:+.5f}, "
            f"{row['high']:+.5f}] -> {row['winner']}"
        )


def _level_dir(parent: Path, prefix: str, std: float, maker: str) -> Path:
    """The directory ``<prefix><std>`` under ``parent``, however DVC spelled the level
    (``1``, ``1.0``): the stage names come from params.yaml's text, not its numbers."""
    if parent.is_dir():
        for child in sorted(parent.iterdir()):
            level = child.name.removeprefix(prefix) if child.name.startswith(prefix) else ""
            try:
                if child.is_dir() and float(level) == std:
                    return child
            except ValueError:
                continue
    raise DataError(f"{parent / f'{prefix}{std:g}'}: no such directory (run the {maker} stage)")


def denoising_report(params: Params, trials_dir: Path, out_dir: Path) -> None:
    """``denoising.md``, ``denoising.csv`` and ``denoising.png`` in ``out_dir`` from the
    autoencoder trials (``models/<model>-<std>/``) and the classical methods
    (``classical/<std>/``) in ``trials_dir``."""
    from aezoo import studies
    from aezoo.statistics import psnr_per_image

    study = params.studies.denoising
    psnr, full, chosen, best_models = {}, {}, {}, {}
    methods: list[str] = []
    for std in study.noise_levels:
        level_dir = _level_dir(trials_dir / "classical", "", std, f"denoise_classical@{std}")
        classical = read_arrays(
            level_dir / CLASSICAL, ["indices", "noisy", "bm3d"], f"denoise_classical@{std}"
        )
        rows = classical.pop("indices")
        psnr |= {(std, method): values for method, values in classical.items()}
        validation = {}
        for model in study.models:
            trial = _level_dir(trials_dir / "models", f"{model}-", std, f"denoise_trial@{model}")
            scores = read_arrays(
                trial / SCORES,
                ["mse", "val_mse"],
                f"denoise_trial@{model}-{std}",
            )
            full[std, model] = psnr_per_image(scores["mse"])
            psnr[std, model] = full[std, model][rows]
            validation[model] = float(psnr_per_image(scores["val_mse"]).mean())
        best = max(validation, key=validation.__getitem__)  # chosen on validation only
        best_models[std] = best
        psnr[std, studies.AUTOENCODER] = psnr[std, best]
        full[std, studies.AUTOENCODER] = full[std, best]
        methods = [*classical, *study.models, studies.AUTOENCODER]
        facts = read_json(level_dir / CHOICES)
        chosen[std] = {
            name: f"{value['setting']} {value['chosen']:g}"
            for name, value in facts.items()
            if isinstance(value, dict)
        }
    frame = studies.denoising_frame(psnr, params.comparison)
    verdicts = studies.denoising_verdicts(psnr, full, best_models, params.comparison)
    subset = len(next(iter(psnr.values())))
    _write_report(
        out_dir / "denoising",
        frame.merge(verdicts, on="noise_std", how="left", suffixes=("", "_vs_bm3d")),
        studies.denoising_markdown(frame, verdicts, chosen, methods),
        studies.denoising_chart(frame, methods, subset),
    )
    for _, row in verdicts.iterrows():
        print(
            f"std {row['noise_std']:g}: autoencoder ({row['model']}) - BM3D "
            f"{row['difference']:+.2f} dB [{row['low']:+.2f}, {row['high']:+.2f}] -> "
            f"{row['winner']}"
        )
