"""The ``aezoo`` command's work: read your images, run a trained variant, write the results.

The file layer of the command (``aezoo.command`` parses arguments): images are read and
checked here, models loaded from the DVC outputs (``models/<variant>``) or the MLflow
registry, and every result of one command is written into one directory at once, so a
failure leaves nothing half-written. TensorFlow is imported only when a model runs.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aezoo.config import AnyVariant, Params
from aezoo.errors import AezooError
from aezoo.io import atomic_directory

if TYPE_CHECKING:  # aezoo.digits imports SciPy and Pillow: not needed for --help
    from aezoo.digits import Digit, Ink

SIDE = 28  # MNIST's field, as aezoo.digits makes every image
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
IMAGE_FORMATS = ("PNG", "JPEG", "BMP")  # what Pillow must find inside, whatever the suffix
MAX_FILE_BYTES = 20 * 1024 * 1024  # a phone photo is ~5 MB
MAX_PIXELS = 50_000_000  # 50 megapixels: above this, a file is refused before decoding
DEFAULT_OOD_QUANTILE = 0.99
SHEET_SCALE = 3  # sheet pixels per MNIST pixel
SHEET_GROUPS = 4  # inputs (with their outputs) per row of a sheet


class InputError(AezooError):
    """Something the user gave (a file, a variant, a model) cannot be used: exit status 2."""


# ------------------------------------------------------------------------ images


def find_images(paths: Sequence[Path]) -> list[Path]:
    """The image files named, directories expanded (sorted, recursively, by suffix)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(
                item
                for item in path.rglob("*")
                if item.is_file() and item.suffix.lower() in IMAGE_SUFFIXES
            )
            if not inside:
                raise InputError(
                    f"{path}: no PNG, JPEG or BMP file in this directory "
                    f"(suffixes {', '.join(IMAGE_SUFFIXES)})"
                )
            found += inside
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or directory")
    return found


def read_gray(path: Path) -> np.ndarray:
    """An image file as grey levels in [0, 1] (2-D float32). Colour is converted to
    luminance; where an alpha channel varies, it is the ink (strokes on a transparent
    background). Refuses empty, huge, truncated and non-image files, naming the file."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path}: empty file")
    if size > MAX_FILE_BYTES:
        raise InputError(
            f"{path}: {size / 2**20:.1f} MiB is over the {MAX_FILE_BYTES // 2**20} MiB limit "
            "for one image (scale it down first)"
        )
    try:
        with Image.open(path) as opened:
            if opened.format not in IMAGE_FORMATS:
                raise InputError(f"{path}: a {opened.format} image; aezoo reads PNG, JPEG and BMP")
            width, height = opened.size
            if width * height > MAX_PIXELS:
                raise InputError(
                    f"{path}: {width}x{height} is over the {MAX_PIXELS / 1e6:g} megapixel "
                    "limit (scale it down first)"
                )
            image = ImageOps.exif_transpose(opened)
            image.load()
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image (aezoo reads PNG, JPEG and BMP)") from None
    except (OSError, SyntaxError, ValueError) as error:  # truncated or corrupt data
        raise InputError(f"{path}: unreadable image ({error})") from None
    return _grey_levels(image)


def _grey_levels(image: Any) -> np.ndarray:
    """Pillow image -> float32 grey in [0, 1]."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        alpha = np.asarray(image.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0
        if alpha.min() < alpha.max():
            return alpha
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        levels = np.asarray(image, dtype=np.float32)
        return levels / (65535.0 if levels.max() > 255 else 255.0)
    if image.mode == "F":
        return np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


@dataclass(frozen=True)
class Picture:
    """One of the user's images, preprocessed as MNIST was made."""

    path: Path
    digit: Digit


def read_digits(paths: Sequence[Path], ink: Ink = "auto") -> list[Picture]:
    """Every image of ``paths``, preprocessed; the first bad file stops it, named."""
    from aezoo.digits import NoInkError, to_mnist

    pictures = []
    for path in find_images(paths):
        try:
            pictures.append(Picture(path, to_mnist(read_gray(path), ink)))
        except NoInkError as error:
            hint = "is it blank?" if ink == "auto" else f"is it blank, or not --ink {ink}?"
            raise InputError(f"{path}: {error}; {hint}") from None
    return pictures


# ------------------------------------------------------------------------ models


@dataclass
class Variant:
    """A trained variant ready to run: arrays ``(n, 28, 28, 1)`` in, arrays out."""

    name: str
    spec: AnyVariant
    origin: str  # where the model came from, in words
    autoencoder: Callable[[np.ndarray], np.ndarray]
    encoder: Callable[[np.ndarray], Any] | None = None
    decoder: Callable[[np.ndarray], np.ndarray] | None = None

    def need(self, part: str) -> Callable:
        """The encoder or decoder, or a clear error when the model has none (a registry
        model is the autoencoder alone)."""
        found = getattr(self, part)
        if found is None:
            raise InputError(
                f"{self.name}: the model from {self.origin} has no {part}; use the DVC "
                f"outputs (models/{self.name}: make pull, or make repro) instead of --model"
            )
        return found


def load_variant(params: Params, name: str, models_dir: Path, model_uri: str | None) -> Variant:
    """Variant ``name`` of ``params``, from ``models_dir/<name>`` or, with ``model_uri``
    (``models:/aezoo-<name>@champion``), from the MLflow registry."""
    try:
        spec = params.variant(name)
    except AezooError as error:
        raise InputError(str(error)) from None
    if model_uri is not None:
        return _registry_variant(name, spec, model_uri)
    model_dir = models_dir / name
    missing = [
        part
        for part in ("autoencoder", "encoder", "decoder")
        if not (model_dir / f"{part}.keras").is_file()
    ]
    if missing:
        raise InputError(
            f"{model_dir}: no trained {name} here (missing {', '.join(missing)}.keras); "
            "get it with `make pull` (or `dvc pull train@" + name + "`), or train it with "
            "`make repro`"
        )
    from aezoo.stages.loading import load_models

    try:
        parts = load_models(model_dir)
    except Exception as error:  # a corrupt or foreign .keras file
        raise InputError(
            f"{model_dir}: cannot load the model ({type(error).__name__}: {error}); restore it "
            f"with `dvc checkout train@{name}`"
        ) from None
    return Variant(
        name,
        spec,
        f"{model_dir} (DVC output)",
        autoencoder=_images_of(parts["autoencoder"]),
        encoder=_codes_of(parts["encoder"]),
        decoder=_images_of(parts["decoder"]),
    )


def _registry_variant(name: str, spec: AnyVariant, uri: str) -> Variant:
    import mlflow

    try:
        model = mlflow.pyfunc.load_model(uri)
    except Exception as error:  # MlflowException and the store's own errors
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(
            f"{uri}: cannot load it from the MLflow registry ({first}); is MLFLOW_TRACKING_URI "
            "the store the zoo was tracked in (default: sqlite:///mlflow.db)?"
        ) from None

    def autoencoder(images: np.ndarray) -> np.ndarray:
        output = model.predict(images.astype(np.float32))
        return np.asarray(output, dtype=np.float32).reshape(len(images), SIDE, SIDE)

    return Variant(name, spec, f"{uri} (MLflow registry)", autoencoder=autoencoder)


def _images_of(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    def run(inputs: np.ndarray) -> np.ndarray:
        output = model.predict(inputs.astype(np.float32), verbose=0, batch_size=256)
        return np.asarray(output, dtype=np.float32).reshape(len(inputs), SIDE, SIDE)

    return run


def _codes_of(encoder: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The encoder's codes in the decoder's shape (a VAE's: the posterior mean)."""

    def run(images: np.ndarray) -> np.ndarray:
        codes = encoder.predict(images.astype(np.float32), verbose=0, batch_size=256)
        if isinstance(codes, list | tuple):  # a VAE: (mean, log variance, sample)
            codes = codes[0]
        return np.asarray(codes, dtype=np.float32)

    return run


# ------------------------------------------------------------ the out-of-distribution flag


@dataclass(frozen=True)
class Threshold:
    """An error above ``mse`` flags an image as unlike the training data."""

    mse: float
    quantile: float
    reference: str  # in words: which validation errors it is the quantile of

    def as_json(self) -> dict[str, Any]:
        return {"mse": self.mse, "quantile": self.quantile, "reference": self.reference}


def ood_threshold(
    outputs_dir: Path, name: str, clean_input: bool, quantile: float
) -> Threshold | None:
    """The ``quantile`` of the variant's validation errors, which its evaluate stage
    wrote to ``<outputs_dir>/<name>.npz``; None when that file is not here."""
    path = outputs_dir / f"{name}.npz"
    if not path.is_file():
        return None
    with np.load(path) as archive:
        key = "validation_mse_clean_input"
        if not clean_input or key not in archive.files:
            key = "validation_mse"
        if key not in archive.files:
            return None
        errors = archive[key]
    fed = "clean" if clean_input else "corrupted"
    return Threshold(
        mse=float(np.quantile(errors, quantile)),
        quantile=quantile,
        reference=f"{len(errors):,} validation images fed {fed} ({path}: {key}, from the "
        "evaluate stage)",
    )


# ------------------------------------------------------------------------ outputs


def sheet(rows: Sequence[Sequence[np.ndarray]], scale: int = SHEET_SCALE) -> np.ndarray:
    """Rows of 28x28 images in [0, 1] as one uint8 picture, ``scale`` times enlarged; short
    rows are filled with gutter-grey tiles (the report's own tiling, aezoo.rendering.tile)."""
    from aezoo.rendering import GAP_SHADE, tile

    columns = max(len(row) for row in rows)
    blank = np.full((SIDE, SIDE), GAP_SHADE, dtype=np.float32)
    stack = np.array([[*row, *[blank] * (columns - len(row))] for row in rows], np.float32)
    canvas = np.clip(tile(stack), 0.0, 1.0)
    enlarged = np.kron(canvas, np.ones((scale, scale), dtype=np.float32))
    return np.round(enlarged * 255).astype(np.uint8)


def wrap(groups: Sequence[Sequence[np.ndarray]], per_row: int = SHEET_GROUPS) -> list[list]:
    """Groups of images (an input beside its output) side by side, ``per_row`` to a row,
    read left to right and top to bottom; a gutter-grey tile keeps groups apart."""
    from aezoo.rendering import GAP_SHADE

    spacer = np.full((SIDE, SIDE), GAP_SHADE, dtype=np.float32)
    rows = []
    for start in range(0, len(groups), per_row):
        row: list[np.ndarray] = []
        for group in groups[start : start + per_row]:
            row += [*group, spacer]
        rows.append(row[:-1])
    return rows


def png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def codes_csv(paths: Sequence[Path], codes: np.ndarray) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", *(f"z{index}" for index in range(codes.shape[1]))])
    for path, row in zip(paths, codes, strict=True):
        writer.writerow([str(path), *(f"{value:.6g}" for value in row)])
    return buffer.getvalue().encode()


def write_outputs(directory: Path, files: dict[str, bytes]) -> list[Path]:
    """All of one command's files, into ``directory`` at once (replacing it whole)."""
    with atomic_directory(directory) as staging:
        for name, payload in files.items():
            (staging / name).write_bytes(payload)
    return [directory / name for name in files]


def json_bytes(payload: dict[str, Any]) -> bytes:
    return (json.dumps(payload, indent=2) + "\n").encode()
