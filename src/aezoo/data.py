"""MNIST: download and verify the canonical IDX files, decode them, split, load.

The four gz files are fetched from the canonical public mirrors (or a local mirror), checked
against their published SHA-256 and written atomically. ``prepare`` decodes them into uint8
arrays with a validation split held out of the training set; scaling to [0, 1] float32
happens at load time, batch by batch.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aezoo.config import IMAGE_SIDE, DataConfig
from aezoo.errors import DataError
from aezoo.io import atomic_path, sha256_of

MIRROR_ENV = "AEZOO_MNIST_MIRROR"


@dataclass(frozen=True)
class MnistFile:
    """One of the four canonical IDX gz files and what it must contain."""

    name: str
    sha256: str
    magic: int
    count: int


MNIST_FILES = {
    "train_images": MnistFile(
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        2051,
        60000,
    ),
    "train_labels": MnistFile(
        "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        2049,
        60000,
    ),
    "test_images": MnistFile(
        "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        2051,
        10000,
    ),
    "test_labels": MnistFile(
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        2049,
        10000,
    ),
}


# ------------------------------------------------------------------------- fetch


def resolve_sources(config: DataConfig) -> tuple[list[str], str | None]:
    """The base locations to try, in order, and the mirror if one is set.

    ``AEZOO_MNIST_MIRROR`` overrides ``data.mirror``; a mirror is then the only source.
    """
    mirror = os.environ.get(MIRROR_ENV) or config.mirror
    if mirror:
        return [mirror], mirror
    return list(config.sources), None


def _is_url(location: str) -> bool:
    return urllib.parse.urlparse(location).scheme in ("http", "https", "file")


def _copy_with_progress(response, destination: Path, label: str, total: int | None) -> None:
    done, next_report = 0, 0.0
    with open(destination, "wb") as out:
        while chunk := response.read(1 << 16):
            out.write(chunk)
            done += len(chunk)
            if total and done / total >= next_report:
                print(f"  {label}: {done / total:4.0%} of {total / 1e6:.1f} MB", file=sys.stderr)
                next_report += 0.25


def _download(url: str, destination: Path, label: str, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "aezoo"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        _copy_with_progress(response, destination, label, int(length) if length else None)


def _transient(error: Exception) -> bool:
    if isinstance(error, urllib.error.HTTPError):
        return error.code >= 500 or error.code == 429
    return isinstance(error, urllib.error.URLError | TimeoutError | ConnectionError)


def _fetch_into(base: str, spec: MnistFile, temporary: Path, config: DataConfig) -> str | None:
    """Copy or download ``spec`` from ``base`` into ``temporary``; the failure, or None."""
    if not _is_url(base):
        source = Path(base).expanduser() / spec.name
        if not source.is_file():
            return f"{source}: no such file"
        shutil.copyfile(source, temporary)
        return None
    url = urllib.parse.urljoin(base if base.endswith("/") else base + "/", spec.name)
    for attempt in range(1, config.download_retries + 1):
        try:
            print(f"{spec.name}: downloading {url}", file=sys.stderr)
            _download(url, temporary, spec.name, config.download_timeout_s)
            return None
        except Exception as error:
            temporary.unlink(missing_ok=True)
            if not _transient(error) or attempt == config.download_retries:
                return f"{url}: {error}"
            wait = 2**attempt
            print(f"  {error}; retry {attempt} in {wait}s", file=sys.stderr)
            time.sleep(wait)
    return f"{url}: no attempt made"


def fetch_file(spec: MnistFile, sources: list[str], out_dir: Path, config: DataConfig) -> Path:
    """Fetch one file from the first source that yields the right bytes; write atomically."""
    destination = out_dir / spec.name
    if destination.exists() and sha256_of(destination) == spec.sha256:
        print(f"{spec.name}: already present, checksum ok", file=sys.stderr)
        return destination
    out_dir.mkdir(parents=True, exist_ok=True)
    temporary = out_dir / f".{spec.name}.part{os.getpid()}"
    failures: list[str] = []
    try:
        for base in sources:
            failure = _fetch_into(base, spec, temporary, config)
            if failure is None:
                digest = sha256_of(temporary)
                if digest == spec.sha256:
                    os.replace(temporary, destination)
                    print(f"{spec.name}: ok (sha256 verified)", file=sys.stderr)
                    return destination
                failure = (
                    f"{base}: checksum mismatch for {spec.name} "
                    f"(expected sha256 {spec.sha256}, got {digest})"
                )
            failures.append(failure)
    finally:
        temporary.unlink(missing_ok=True)
    hint = (
        f"\nSet a local mirror of the four MNIST files (a directory or base URL) with "
        f"{MIRROR_ENV}=... or data.mirror in params.yaml."
    )
    raise DataError(f"could not fetch {spec.name}:\n  " + "\n  ".join(failures) + hint)


def fetch_mnist(config: DataConfig, out_dir: str | Path) -> list[Path]:
    """Fetch and verify all four MNIST files into ``out_dir``."""
    out_dir = Path(out_dir)
    sources, mirror = resolve_sources(config)
    if mirror:
        print(f"using the MNIST mirror {mirror}", file=sys.stderr)
    return [fetch_file(spec, sources, out_dir, config) for spec in MNIST_FILES.values()]


# ------------------------------------------------------------------------ decode


def read_idx(path: str | Path, spec: MnistFile) -> np.ndarray:
    """Decode one gz IDX file into a uint8 array, checking magic, count and shape."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") as handle:
            payload = handle.read()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (run the fetch stage first)") from None
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path}: not a complete gzip file ({exc})") from None
    header_size = 16 if spec.magic == 2051 else 8
    if len(payload) < header_size:
        raise DataError(f"{path}: too short for an IDX header ({len(payload)} bytes)")
    header = np.frombuffer(payload[:header_size], dtype=">u4")
    if int(header[0]) != spec.magic:
        raise DataError(f"{path}: bad IDX magic number {int(header[0])}, expected {spec.magic}")
    shape = tuple(int(size) for size in header[1:])
    expected = (spec.count, IMAGE_SIDE, IMAGE_SIDE) if spec.magic == 2051 else (spec.count,)
    if shape != expected:
        raise DataError(f"{path}: IDX shape {shape}, expected {expected}")
    body = np.frombuffer(payload, dtype=np.uint8, offset=header_size)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path}: {body.size} data bytes, expected {int(np.prod(shape))}")
    return body.reshape(shape)


# ----------------------------------------------------------------------- prepare


def prepare_mnist(config: DataConfig, raw_dir: str | Path, out_path: str | Path) -> dict:
    """Verify and decode the raw files; hold out the last ``validation_size`` training images.

    Writes one uint8 ``.npz`` with x/y for train, val and test; returns its summary.
    """
    raw_dir = Path(raw_dir)
    arrays = {}
    for key, spec in MNIST_FILES.items():
        path = raw_dir / spec.name
        if path.exists() and sha256_of(path) != spec.sha256:
            raise DataError(f"{path}: checksum mismatch (expected sha256 {spec.sha256})")
        arrays[key] = read_idx(path, spec)
    cut = 60000 - config.validation_size
    splits = {
        "train": (arrays["train_images"][:cut], arrays["train_labels"][:cut], config.train_subset),
        "val": (arrays["train_images"][cut:], arrays["train_labels"][cut:], config.val_subset),
        "test": (arrays["test_images"], arrays["test_labels"], config.test_subset),
    }
    contents = {}
    for split, (images, labels, subset) in splits.items():
        contents[f"x_{split}"] = images[:subset]
        contents[f"y_{split}"] = labels[:subset]
    with atomic_path(out_path) as temporary:
        np.savez(temporary, **contents)
    return {
        "shapes": {key: list(value.shape) for key, value in contents.items()},
        "train_pixel_mean": float(contents["x_train"].mean() / 255.0),
    }


@dataclass(frozen=True)
class Split:
    """One split: images as stored (uint8 or float16) and their digit labels."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def load_prepared(path: str | Path) -> dict[str, Split]:
    """Load the prepare stage's arrays as ``{"train": Split, "val": ..., "test": ...}``."""
    try:
        with np.load(path) as archive:
            return {
                split: Split(archive[f"x_{split}"], archive[f"y_{split}"])
                for split in ("train", "val", "test")
            }
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (run the prepare stage first)") from None


def to_unit_float(images: np.ndarray) -> np.ndarray:
    """Images as float32 in [0, 1] (uint8 is divided by 255; floats are cast)."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32)


def progress_digits(labels: np.ndarray, count: int) -> np.ndarray:
    """Indices of fixed test digits to show: the first 0-9 in order, then the next, ...

    The progress GIF, the reconstruction grids and the interpolations all pick with it.
    """
    by_digit = [np.flatnonzero(labels == digit) for digit in range(10)]
    rounds = max(len(hits) for hits in by_digit)
    order = [hits[rank] for rank in range(rounds) for hits in by_digit if rank < len(hits)]
    return np.array(order[:count], dtype=np.int64)
