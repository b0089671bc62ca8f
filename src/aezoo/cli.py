"""Shared plumbing of the stage entry points in ``pipeline/``."""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from aezoo.config import Params, load_params
from aezoo.errors import AezooError

VariantStage = Callable[..., object]  # (params, name, data_dir, model_dir, report_dir, ...)


def stage_parser(description: str | None) -> argparse.ArgumentParser:
    """An argument parser with the ``--params`` option every stage takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="params file (params.yaml)"
    )
    return parser


def run_stage(params_path: Path, work: Callable[[Params], None]) -> NoReturn:
    """Validate the params, then run ``work``; errors a user can fix exit 1 with their cause.

    On success it prints the stage's wall time and peak memory (resident set) to stderr and
    ends the process at once (``exit_without_teardown``): call it only from an entry point.
    """
    started = time.monotonic()
    try:
        work(load_params(params_path))
    except AezooError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    print(
        f"done in {time.monotonic() - started:.1f}s, peak memory {peak_memory_mib():,.0f} MiB",
        file=sys.stderr,
    )
    exit_without_teardown()


def exit_without_teardown() -> NoReturn:
    """End a finished stage now, skipping the interpreter's teardown.

    Unloading TensorFlow, Keras and MLflow takes 1.5-2 s per process, and a pipeline run
    starts ~40 of them. By now every output is written (atomically) and closed, and the
    MLflow run ended, so flushing the standard streams and logging is all that is left.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(0)


def peak_memory_mib() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant_stage(
    description: str | None,
    stage: VariantStage,
    argv: list[str] | None = None,
    *,
    test_outputs: bool = False,
) -> None:
    """Parse a per-variant stage's arguments and run ``stage`` on that variant.

    ``stage(params, name, data_dir, model_dir, report_dir)`` gets the variant's own model and
    report directories (``<models>/<name>``, ``<reports>/<name>``); with ``test_outputs``
    also ``test_outputs=<outputs>/<name>.npz``, the arrays evaluate writes and render draws.
    """
    parser = stage_parser(description)
    parser.add_argument("name", help="a key of variants: in params.yaml")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--reports", type=Path, default=Path("reports/variants"))
    if test_outputs:
        parser.add_argument(
            "--outputs",
            type=Path,
            default=Path("data/test_outputs"),
            help="directory of <name>.npz: the model's outputs that the figures show",
        )
    args = parser.parse_args(argv)
    extra = {"test_outputs": args.outputs / f"{args.name}.npz"} if test_outputs else {}
    run_stage(
        args.params,
        lambda params: stage(
            params,
            args.name,
            args.data,
            args.models / args.name,
            args.reports / args.name,
            **extra,
        ),
    )
