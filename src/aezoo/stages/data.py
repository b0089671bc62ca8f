"""Stages fetch and prepare: verified MNIST files, decoded into train, validation and test."""

from __future__ import annotations

import sys
from pathlib import Path

from aezoo.config import Params
from aezoo.data import fetch_mnist, prepare_mnist


def fetch(params: Params, raw_dir: Path) -> None:
    """Fetch the four canonical MNIST files into ``raw_dir``, verified."""
    fetch_mnist(params.data, raw_dir)


def prepare(params: Params, raw_dir: Path, out_path: Path) -> None:
    """Decode, split and store MNIST as uint8 arrays."""
    summary = prepare_mnist(params.data, raw_dir, out_path)
    for key, shape in summary["shapes"].items():
        print(f"{key}: {tuple(shape)}", file=sys.stderr)
    print(f"training pixel mean: {summary['train_pixel_mean']:.4f}", file=sys.stderr)
