"""The studies' other stages (studies/dvc.yaml): PCA's frontier and the studies' reports.

They read the trials' ``scores.npz`` (values per test image, :mod:`aezoo.stages.trial`) and
write each study's tables and chart (:mod:`aezoo.studies`) into ``reports/studies``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aezoo.config import Params
from aezoo.data import load_prepared, to_unit_float
from aezoo.errors import ConfigError
from aezoo.io import read_arrays, write_arrays, write_bytes
from aezoo.stages import heavy_imports

SCORES = "scores.npz"  # a trial's values per test image (aezoo.stages.trial writes it)


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


def _scores(path: Path, required: list[str], maker: str) -> dict[str, np.ndarray]:
    return read_arrays(path, required, maker)


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
            runs[variant, seed] = _scores(
                trials_dir / f"{variant}-{seed}" / SCORES, [figure], maker
            )[figure]
    frame = studies.seeds_frame(runs, figures, params.comparison)
    write_bytes(out_dir / "seeds.csv", frame.to_csv(index=False, float_format="%.6g").encode())
    write_bytes(out_dir / "seeds.md", studies.seeds_markdown(frame).encode())
    for _, row in frame.iterrows():
        print(
            f"{row['variant']}: {row['figure']} mean {row['mean']:.4f}, spread {row['std']:.5f}, "
            f"test ± {row['test_half_width']:.5f}"
        )


def frontier_report(params: Params, trials_dir: Path, pca_path: Path, out_dir: Path) -> None:
    """``frontier.md``, ``frontier.csv`` and ``frontier.png`` in ``out_dir`` from the
    frontier trials in ``trials_dir`` (``<model>-<code size>/``) and PCA's scores."""
    from aezoo import studies
    from aezoo.rendering import png_bytes

    study = params.studies.frontier
    mse = {
        (model, size): _scores(
            trials_dir / f"{model}-{size}" / SCORES, ["mse"], f"frontier_trial@{model}-{size}"
        )["mse"]
        for model in study.models
        for size in study.code_sizes
    }
    keys = [f"mse_{size}" for size in study.code_sizes]
    pca_arrays = _scores(pca_path, keys, "frontier_pca")
    pca = {size: pca_arrays[f"mse_{size}"] for size in study.code_sizes}
    frame = studies.frontier_frame(mse, pca, params.comparison)
    verdicts = studies.frontier_verdicts(frame)
    models = list(study.models)
    write_bytes(out_dir / "frontier.csv", frame.to_csv(index=False, float_format="%.6g").encode())
    test_images = len(next(iter(mse.values())))
    chart = studies.frontier_chart(frame, models, test_images)
    write_bytes(out_dir / "frontier.png", png_bytes(chart))
    text = studies.frontier_markdown(frame, verdicts, models, test_images)
    write_bytes(out_dir / "frontier.md", text.encode())
    for _, row in verdicts.iterrows():
        print(
            f"code {row['code_size']}: {row['best_model']} {row['best_mse']:.5f} vs PCA "
            f"{row['pca_mse']:.5f}: {row['difference']:+.5f} [{row['low']:+.5f}, "
            f"{row['high']:+.5f}] -> {row['winner']}"
        )
