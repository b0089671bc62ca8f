"""Stage corrupt: a reproducible corrupted copy of every split, and its test statistics."""

from __future__ import annotations

from pathlib import Path

from aezoo import metrics
from aezoo.config import Params
from aezoo.data import load_prepared, to_unit_float
from aezoo.io import write_arrays, write_json
from aezoo.stages import heavy_imports


def corrupt(params: Params, name: str, clean_path: Path, out_path: Path, stats_path: Path) -> None:
    """Write a corrupted copy of every split and the corruption's test statistics."""
    with heavy_imports():
        from aezoo.corruption import corrupt_split  # TensorFlow: imported only where needed

    spec = params.corruption(name)
    clean = load_prepared(clean_path)
    corrupted = {split: corrupt_split(data.x, spec, split) for split, data in clean.items()}
    write_arrays(
        out_path,
        {
            **{f"x_{split}": images for split, images in corrupted.items()},
            **{f"y_{split}": data.y for split, data in clean.items()},
        },
    )
    target, noisy = to_unit_float(clean["test"].x), to_unit_float(corrupted["test"])
    stats = {
        "test_mse": metrics.mse(target, noisy),
        "test_psnr_db": metrics.psnr(target, noisy),
        "test_mean": float(noisy.mean()),
        "clean_test_mean": float(target.mean()),
    }
    write_json(stats_path, stats)
    print(f"{name}: test MSE {stats['test_mse']:.4f}, PSNR {stats['test_psnr_db']:.2f} dB")
