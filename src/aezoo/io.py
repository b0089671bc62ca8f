"""The file layer: every file the stages read or write, in one place.

Outputs are written atomically (a temporary file, then a rename), so an interrupted stage
leaves no half-written file under its final name. A missing or malformed input is a
:class:`DataError` naming the file and the stage that makes it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from aezoo.errors import DataError

HISTORY_COLUMNS = ("epoch", "loss", "val_loss")
PROGRESS_ARRAYS = ("indices", "inputs", "targets", "frames")


@contextmanager
def atomic_path(destination: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; rename it into place only on success.

    An exception (or a kill) leaves no partial file under the final name, and the temporary
    file is removed when Python gets the chance.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    # Keep the suffix: numpy and Keras pick the format from it.
    temporary = destination.with_name(f".{destination.stem}.tmp{os.getpid()}{destination.suffix}")
    try:
        yield temporary
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(item) for item in value]
    return value


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON atomically; non-finite floats become null."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(_finite_or_none(payload), indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path) -> dict[str, Any]:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(Path(path).read_text())


@contextmanager
def atomic_directory(destination: str | Path) -> Iterator[Path]:
    """Yield an empty staging directory that replaces ``destination`` whole on success.

    Files are written into the staging directory; a failure leaves the previous
    ``destination`` untouched and no stale file from an earlier run survives a success.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.with_name(f".{destination.name}.tmp{os.getpid()}")
    retired = destination.with_name(f".{destination.name}.old{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        if destination.exists():
            os.replace(destination, retired)
        os.replace(staging, destination)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_bytes(path: str | Path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(payload)
    return Path(path)


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _missing(path: Path, maker: str) -> DataError:
    return DataError(f"{path}: no such file (run the {maker} stage first)")


# ------------------------------------------------------------ the training history


def write_history(path: str | Path, history: Mapping[str, Sequence[float]]) -> None:
    """``history.csv``: one row an epoch with the training and validation loss."""
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HISTORY_COLUMNS)
        for epoch, (loss, val_loss) in enumerate(
            zip(history["loss"], history["val_loss"], strict=True)
        ):
            writer.writerow([epoch + 1, f"{loss:.6g}", f"{val_loss:.6g}"])


def read_history(path: str | Path) -> dict[str, np.ndarray]:
    """The train stage's ``history.csv`` as columns; a missing or malformed file is named."""
    path = Path(path)
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise _missing(path, "train") from None
    if not rows or any(column not in rows[0] for column in HISTORY_COLUMNS):
        columns = ", ".join(HISTORY_COLUMNS)
        raise DataError(f"{path}: expected the columns {columns} and one row an epoch")
    try:
        return {
            column: np.array([float(row[column]) for row in rows]) for column in HISTORY_COLUMNS
        }
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a number in the loss history ({exc})") from None


# ------------------------------------------------------------------ array archives


def write_arrays(path: str | Path, arrays: Mapping[str, Any]) -> None:
    """An uncompressed ``.npz`` of named arrays, written atomically."""
    with atomic_path(path) as temporary:
        np.savez(temporary, **arrays)


def read_arrays(path: str | Path, required: Sequence[str], maker: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` written by the ``maker`` stage; a missing file or array is
    named."""
    path = Path(path)
    try:
        with np.load(path) as archive:
            missing = [key for key in required if key not in archive]
            if missing:
                raise DataError(
                    f"{path}: missing the arrays {', '.join(missing)} (run the {maker} stage again)"
                )
            return {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise _missing(path, maker) from None
