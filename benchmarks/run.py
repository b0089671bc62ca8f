"""Benchmark aezoo's trainer against plain model.fit on numpy; write reports/benchmarks.*.

Not a DVC stage: run it with `make bench` (``python -m benchmarks``) when the code or the
training settings change.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aezoo.cli import run_stage, stage_parser
from aezoo.config import Params
from benchmarks.machine import machine_facts
from benchmarks.overheads import (
    dvc_noop_seconds,
    entry_point_seconds,
    library_import_seconds,
    stage_scripts,
)
from benchmarks.report import render_table, write_report
from benchmarks.settings import QUALITY_TOLERANCE, BenchmarkError, Setting, parse_settings


def run_benchmark(
    params: Params,
    variants: list[str],
    settings: list[Setting],
    data_dir: Path,
    out_dir: Path,
    epochs: int = 5,
    train_samples: int | None = 20_000,
    time_dvc: bool = True,
    time_imports: bool = True,
) -> dict:
    """Benchmark ``variants`` under ``settings``; write and return the report."""
    from benchmarks.arms import bench_variant  # TensorFlow: only once the arguments are valid

    for name in variants:
        params.variant(name)  # a clear error for an unknown name, before any work
    report = {
        "machine": machine_facts(),
        "settings": {
            "epochs_timed": epochs,
            "warm_up_epochs": 1,
            "train_samples": train_samples,
            "aezoo_settings": [setting.label for setting in settings],
            "quality_tolerance": QUALITY_TOLERANCE,
            "flops": "Dense and conv multiply-adds x 2 per sample; training step = 3x forward",
        },
        "variants": [
            bench_variant(name, params, settings, data_dir, epochs, train_samples)
            for name in variants
        ],
        "overheads": {
            "entry_point_seconds": entry_point_seconds(stage_scripts()),
            "library_import_seconds": library_import_seconds() if time_imports else {},
            **(dvc_noop_seconds() if time_dvc else {"dvc_repro": "skipped (--skip-dvc)"}),
        },
    }
    write_report(report, out_dir)
    return report


def benchmark(params: Params, args: argparse.Namespace) -> None:
    """Run the benchmark from the parsed arguments (``parser``); print the table."""
    training = params.training
    settings = parse_settings(args.jit_compile or str(training.jit_compile))
    if args.epochs < 1:
        raise BenchmarkError(f"--epochs: {args.epochs}: must be at least 1")
    variants = args.variants.split(",") if args.variants else list(params.variants)
    report = run_benchmark(
        params,
        variants,
        settings,
        args.data,
        args.out,
        epochs=args.epochs,
        train_samples=args.train_samples or None,
        time_dvc=not args.skip_dvc,
    )
    print(render_table(report))
    print(f"wrote {args.out / 'benchmarks.md'} and {args.out / 'benchmarks.json'}")


def parser() -> argparse.ArgumentParser:
    """The benchmark's options (``make bench ARGS=...``)."""
    options = stage_parser(__doc__)
    options.prog = "python -m benchmarks"
    options.add_argument("--variants", help="comma-separated variant names (default: all)")
    options.add_argument("--epochs", type=int, default=5, help="timed epochs after 1 warm-up")
    options.add_argument(
        "--train-samples", type=int, default=20_000, help="training images used (0: all)"
    )
    options.add_argument(
        "--jit-compile",
        help="comma-separated true/false to compare (default: training.jit_compile)",
    )
    options.add_argument("--data", type=Path, default=Path("data/prepared"))
    options.add_argument("--out", type=Path, default=Path("reports"))
    options.add_argument("--skip-dvc", action="store_true", help="do not time a no-op dvc repro")
    return options


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    run_stage(
        args.params, lambda params: benchmark(params, args), tensorflow_logs=args.tensorflow_logs
    )
