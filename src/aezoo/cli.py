"""Shared plumbing of the stage entry points in ``pipeline/``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from aezoo.config import Params, load_params
from aezoo.errors import AezooError


def stage_parser(description: str | None) -> argparse.ArgumentParser:
    """An argument parser with the ``--params`` option every stage takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="params file (params.yaml)"
    )
    return parser


def run_stage(params_path: Path, work: Callable[[Params], None]) -> None:
    """Validate the params, then run ``work``; errors a user can fix exit 1 with their cause."""
    try:
        work(load_params(params_path))
    except AezooError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
