"""The render stage: figures of one evaluated variant that read on their own.

It only draws, without TensorFlow or scikit-learn: what needs the model or a fit (the
reconstructions shown, code maps, a VAE's decodings) is computed by the evaluate stage
(``evaluation.figure_arrays``) and read from its test outputs file.

Every figure is titled with the variant's name and labelled; images are drawn as one tiled
mosaic per figure (fast, and the pixels are the model's). Figures are matplotlib ``Figure``
objects rendered by the Agg canvas (no pyplot, no global state); the progress GIF is drawn
with Pillow. Seeds are fixed and PNG metadata is stripped: the same inputs give the same bytes.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageDraw, ImageFont

from aezoo.config import IMAGE_SIDE, Params
from aezoo.data import load_prepared, to_unit_float
from aezoo.errors import DataError
from aezoo.io import atomic_path

if TYPE_CHECKING:
    from aezoo.models import AnyVariant

DPI = 100
PNG_COLOURS = 256  # figures are stored as palette PNGs: a third of the size, same look
CHAR_INCHES = 0.09  # width of a title character at 11 pt, generously
PAD = 2  # pixels of gap between tiled digits
GAP_SHADE = 0.35  # grey of those gaps, so black digit backgrounds stay apart

LOSS_NAMES = {
    "mse": "mean squared error",
    "bce": "binary cross-entropy",
    "elbo": "negative ELBO (nats per image)",
}

# The progress GIF's layout, in pixels.
GIF_SCALE = 2  # each 28x28 digit is drawn 56x56
GIF_LABEL_WIDTH = 84
GIF_HEADER = 26
GIF_GAP = 1  # white pixels between digits (before scaling)
GIF_SHADES = 16  # grey levels kept: GIFs a sixth of the size, digits look the same


# ------------------------------------------------------------------ file helpers


@contextmanager
def atomic_directory(destination: str | Path) -> Iterator[Path]:
    """Yield an empty staging directory that replaces ``destination`` whole on success.

    Files are written into the staging directory; a failure leaves the previous
    ``destination`` untouched and no stale figure from an earlier run survives a success.
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


def save_figure(figure: Figure, path: Path) -> Path:
    """Save a figure as a small palette PNG (the report is committed to git), atomically.

    Agg draws the figure; Pillow keeps 256 colours and writes no metadata, so the same
    figure gives the same bytes.
    """
    canvas = FigureCanvasAgg(figure)
    figure.set_dpi(DPI)
    canvas.draw()
    pixels = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")
    palette = pixels.quantize(
        PNG_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    with atomic_path(path) as temporary:
        palette.save(temporary, format="PNG", optimize=True)
    return path


def read_history(path: Path) -> dict[str, np.ndarray]:
    """The train stage's ``history.csv`` as columns; a missing or malformed file is named."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (run the train stage first)") from None
    required = ("epoch", "loss", "val_loss")
    if not rows or any(column not in rows[0] for column in required):
        raise DataError(f"{path}: expected the columns {', '.join(required)} and one row an epoch")
    try:
        return {column: np.array([float(row[column]) for row in rows]) for column in required}
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a number in the loss history ({exc})") from None


def read_progress(path: Path) -> dict[str, np.ndarray]:
    """The train stage's ``progress.npz`` (inputs, targets, one frame per epoch)."""
    required = ("indices", "inputs", "targets", "frames")
    try:
        with np.load(path) as archive:
            missing = [key for key in required if key not in archive]
            if missing:
                raise DataError(f"{path}: missing the arrays {', '.join(missing)}")
            return {key: archive[key] for key in required}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (run the train stage first)") from None


def read_test_outputs(path: Path, required: Sequence[str]) -> dict[str, np.ndarray]:
    """The evaluate stage's test outputs (``.npz``); a missing file or array is named."""
    try:
        with np.load(path) as archive:
            missing = [key for key in required if key not in archive]
            if missing:
                raise DataError(f"{path}: missing the arrays {', '.join(missing)}")
            return {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (run the evaluate stage first)") from None


def required_outputs(spec: AnyVariant) -> list[str]:
    """The arrays of the evaluate stage's test outputs that a variant's figures need."""
    keys = ["grid_indices", "grid_outputs", "code_map_labels", "code_width"]
    keys += ["code_map_points"] if spec.code_size == 2 else CODE_MAP_PROJECTIONS
    if spec.denoising:
        keys += ["triplet_indices", "triplet_outputs"]
    if spec.family == "vae":
        keys += ["samples", "interpolation", "interpolation_pairs"]
        if spec.code_size == 2:
            keys += ["manifold", "manifold_grid"]
    return keys


# ---------------------------------------------------------------- image grids


def tile(images: np.ndarray, pad: int = PAD, shade: float = GAP_SHADE) -> np.ndarray:
    """Tile a ``(rows, columns, h, w)`` stack of images into one 2-D array with gaps."""
    rows, columns, height, width = images.shape
    canvas = np.full(
        (rows * (height + pad) - pad, columns * (width + pad) - pad), shade, dtype=np.float32
    )
    for row in range(rows):
        for column in range(columns):
            top, left = row * (height + pad), column * (width + pad)
            canvas[top : top + height, left : left + width] = images[row, column]
    return canvas


def grid_figure(
    images: np.ndarray,
    title: str,
    row_labels: Sequence[str] | None = None,
    column_labels: Sequence[str] | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
) -> Figure:
    """One figure showing a ``(rows, columns, 28, 28)`` grid of images in [0, 1].

    Values outside [0, 1] (linear decoders, unclipped noise) are shown clipped.
    """
    rows, columns = images.shape[:2]
    cell = min(0.6, 9.0 / columns)  # inches per digit
    margin_left = 1.3 if row_labels else 0.4
    text_width = max(len(title), len(xlabel or "")) * CHAR_INCHES + 0.6  # never clip the title
    width = max(columns * cell + margin_left + 0.3, text_width)
    height = rows * cell + 1.0 + 0.3 * bool(xlabel)
    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.add_subplot()
    axes.imshow(tile(images), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    step = IMAGE_SIDE + PAD
    axes.set_yticks([row * step + IMAGE_SIDE / 2 for row in range(rows)], row_labels or [""] * rows)
    axes.set_xticks(
        [column * step + IMAGE_SIDE / 2 for column in range(columns)],
        column_labels or [""] * columns,
    )
    axes.tick_params(length=0)
    for spine in axes.spines.values():
        spine.set_visible(False)
    if xlabel:
        axes.set_xlabel(xlabel)
    if ylabel:
        axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=11)
    return figure


# ------------------------------------------------------------------- the figures


def reconstructions_figure(
    name: str, originals: np.ndarray, inputs: np.ndarray | None, outputs: np.ndarray, labels
) -> Figure:
    """Originals, the corrupted inputs (denoisers only) and the reconstructions, one row each."""
    rows, row_labels = [originals], ["original"]
    if inputs is not None:
        rows.append(inputs)
        row_labels.append("corrupted input")
    rows.append(outputs)
    row_labels.append("reconstruction")
    what = "denoised" if inputs is not None else "reconstructed"
    return grid_figure(
        np.stack(rows),
        f"{name}: test digits {what}",
        row_labels=row_labels,
        column_labels=[str(int(label)) for label in labels],
        xlabel="test digit (first of each class)",
    )


def triplet_grid(
    originals: np.ndarray, inputs: np.ndarray, outputs: np.ndarray, rows: int
) -> np.ndarray:
    """``(rows, 3 * n / rows, 28, 28)``: image i's triplet sits in row i // (n / rows)."""
    triplets = np.stack([originals, inputs, outputs], axis=1)  # (n, 3, 28, 28)
    return triplets.reshape(rows, -1, IMAGE_SIDE, IMAGE_SIDE)


def triplets_figure(
    name: str, originals: np.ndarray, inputs: np.ndarray, outputs: np.ndarray, rows: int
) -> Figure:
    """Seed 000's denoising grid: ``rows`` rows of (original, corrupted, denoised) triplets."""
    return grid_figure(
        triplet_grid(originals, inputs, outputs, rows),
        f"{name}: {len(originals)} test digits denoised",
        xlabel="each triplet: original | corrupted input | reconstruction",
    )


def loss_figure(name: str, history: dict[str, np.ndarray], loss_label: str) -> Figure:
    """Training and validation loss per epoch (log scale when they span a wide range)."""
    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    axes = figure.add_subplot()
    epochs = history["epoch"]
    axes.plot(epochs, history["loss"], "o-", markersize=3, label="training")
    axes.plot(epochs, history["val_loss"], "s-", markersize=3, label="validation")
    values = np.concatenate([history["loss"], history["val_loss"]])
    if values.min() > 0 and values.max() / values.min() > 10:
        axes.set_yscale("log")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.set_ylabel(f"loss: {loss_label}")
    axes.set_title(f"{name}: loss per epoch")
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    return figure


def _scatter(axes, points: np.ndarray, labels: np.ndarray, title: str):
    dots = axes.scatter(
        points[:, 0], points[:, 1], c=labels, cmap="tab10", vmin=-0.5, vmax=9.5, s=6, linewidths=0
    )
    axes.set_title(title, fontsize=10)
    return dots


CODE_MAP_PROJECTIONS = ["code_map_pca", "code_map_pca_explained", "code_map_tsne"]


def code_map_figure(name: str, outputs: dict[str, np.ndarray], code_name: str) -> Figure:
    """Test codes in 2-D, coloured by digit: as they are for a 2-D code, else PCA and t-SNE.

    The points come from the evaluate stage (``evaluation.code_map_points``).
    """
    labels = outputs["code_map_labels"]
    width = int(outputs["code_width"])
    if "code_map_points" in outputs:
        figure = Figure(figsize=(6.0, 5.0), layout="constrained")
        axes = figure.add_subplot()
        dots = _scatter(axes, outputs["code_map_points"], labels, f"the 2-D {code_name}, as it is")
        axes.set_xlabel(f"{code_name}[0]")
        axes.set_ylabel(f"{code_name}[1]")
        panels = [axes]
    else:
        figure = Figure(figsize=(11.0, 5.0), layout="constrained")
        pca_axes, tsne_axes = figure.subplots(1, 2)
        explained = float(outputs["code_map_pca_explained"])
        _scatter(
            pca_axes,
            outputs["code_map_pca"],
            labels,
            f"PCA of the {width}-D {code_name} ({explained:.0%} of its variance)",
        )
        pca_axes.set_xlabel("principal component 1")
        pca_axes.set_ylabel("principal component 2")
        dots = _scatter(
            tsne_axes, outputs["code_map_tsne"], labels, f"t-SNE of the {width}-D {code_name}"
        )
        tsne_axes.set_xlabel("t-SNE 1")
        tsne_axes.set_ylabel("t-SNE 2")
        panels = [pca_axes, tsne_axes]
    colorbar = figure.colorbar(dots, ax=panels, ticks=range(10))
    colorbar.set_label("digit label")
    figure.suptitle(f"{name}: {len(labels):,} test images in code space, coloured by digit")
    return figure


def samples_figure(name: str, images: np.ndarray) -> Figure:
    """A square grid of decoder outputs for codes drawn from the prior N(0, I)."""
    return grid_figure(images, f"{name}: decoded samples z ~ N(0, I)")


def interpolation_figure(name: str, images: np.ndarray, pairs, steps: int) -> Figure:
    """Decoded straight lines in z_mean between pairs of test digits, one pair a row."""
    fractions = np.linspace(0.0, 1.0, steps)
    return grid_figure(
        images,
        f"{name}: linear interpolation in z_mean between test digits",
        row_labels=[f"{start} \u2192 {end}" for start, end in pairs],
        column_labels=[f"{t:.2g}" for t in fractions],
        xlabel="fraction of the way from the first digit's z_mean to the second's",
    )


def manifold_figure(name: str, images: np.ndarray, grid: np.ndarray) -> Figure:
    """The 2-D latent manifold: decoded points on a grid of Gaussian quantiles."""
    ticks = [f"{value:.1f}" if index % 2 == 0 else "" for index, value in enumerate(grid)]
    figure = grid_figure(
        images,
        f"{name}: the 2-D latent manifold, decoded over the Gaussian quantiles",
        row_labels=ticks[::-1],
        column_labels=ticks,
        xlabel="z[0]",
        ylabel="z[1]",
    )
    return figure


# ---------------------------------------------------------------- progress GIF


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def progress_frames(
    name: str, progress: dict[str, np.ndarray], denoising: bool
) -> list[Image.Image]:
    """One grayscale frame an epoch: the targets, the inputs (denoisers) and that epoch's output.

    Each frame carries the variant's name and "epoch k/N" so a still of it reads on its own.
    """
    frames = progress["frames"]
    epochs, digits = frames.shape[:2]
    fixed = [("original", progress["targets"])]
    if denoising:
        fixed.append(("input", progress["inputs"]))
    cell = IMAGE_SIDE * GIF_SCALE
    strip_width = (digits * (IMAGE_SIDE + GIF_GAP) - GIF_GAP) * GIF_SCALE
    width = GIF_LABEL_WIDTH + strip_width
    height = GIF_HEADER + (len(fixed) + 1) * cell
    font, small = _font(15), _font(13)
    step = 255 // (GIF_SHADES - 1)

    def strip(images: np.ndarray) -> Image.Image:
        row = tile(images[None] / 255.0, pad=GIF_GAP, shade=1.0)
        shades = np.round(row * (GIF_SHADES - 1)).astype(np.uint8) * step
        return Image.fromarray(shades, "L").resize((strip_width, cell), Image.Resampling.NEAREST)

    base = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(base)
    for index, (label, images) in enumerate(fixed):
        top = GIF_HEADER + index * cell
        base.paste(strip(images), (GIF_LABEL_WIDTH, top))
        draw.text((6, top + cell // 2), label, fill=0, font=small, anchor="lm")
    output_top = GIF_HEADER + len(fixed) * cell
    draw.text((6, output_top + cell // 2), "output", fill=0, font=small, anchor="lm")

    images = []
    for epoch in range(epochs):
        frame = base.copy()
        frame.paste(strip(frames[epoch]), (GIF_LABEL_WIDTH, output_top))
        caption = f"{name}: epoch {epoch + 1}/{epochs}"
        ImageDraw.Draw(frame).text((6, GIF_HEADER // 2), caption, fill=0, font=font, anchor="lm")
        images.append(frame)
    return images


def save_gif(frames: list[Image.Image], path: Path, frame_ms: int) -> Path:
    """Write frames as a looping GIF, ``frame_ms`` per frame, atomically."""
    with atomic_path(path) as temporary:
        frames[0].save(
            temporary,
            format="GIF",
            save_all=True,
            append_images=frames[1:],
            duration=frame_ms,
            loop=0,
        )
    return path


# -------------------------------------------------------------------- the stage


def expected_figures(params: Params, name: str) -> list[str]:
    """The file names the render stage writes for a variant."""
    spec = params.variant(name)
    names = ["reconstructions.png", "progress.gif", "loss.png", "code_map.png"]
    if spec.denoising:
        names.append("triplets.png")
    if spec.family == "vae":
        names += ["samples.png", "interpolation.png"]
        if spec.code_size == 2:
            names.append("manifold.png")
    return names


def render(
    params: Params,
    name: str,
    data_dir: Path,
    model_dir: Path,
    report_dir: Path,
    test_outputs: Path,
) -> Path:
    """Draw every figure of one evaluated variant into ``report_dir/figures``; return that path.

    Only drawing happens here: the model's outputs and the code maps come from the evaluate
    stage's ``test_outputs`` file, the progress frames and losses from the train stage. The
    directory is replaced whole, so it holds exactly this run's figures.
    """
    from aezoo.stages import load_inputs

    spec = params.variant(name)
    config = params.render
    history = read_history(report_dir / "history.csv")
    progress = read_progress(model_dir / "progress.npz")
    outputs = read_test_outputs(test_outputs, required_outputs(spec))
    clean = load_prepared(data_dir / "clean.npz")
    test, test_inputs = clean["test"], load_inputs(params, spec.input, clean, data_dir)["test"].x

    figure_dir = report_dir / "figures"
    with atomic_directory(figure_dir) as staging:
        chosen = outputs["grid_indices"]
        figure = reconstructions_figure(
            name,
            to_unit_float(test.x[chosen]),
            to_unit_float(test_inputs[chosen]) if spec.denoising else None,
            outputs["grid_outputs"],
            test.y[chosen],
        )
        save_figure(figure, staging / "reconstructions.png")
        if spec.denoising:
            chosen = outputs["triplet_indices"]
            figure = triplets_figure(
                name,
                to_unit_float(test.x[chosen]),
                to_unit_float(test_inputs[chosen]),
                outputs["triplet_outputs"],
                rows=len(chosen) // config.grid_digits,
            )
            save_figure(figure, staging / "triplets.png")
        frames = progress_frames(name, progress, spec.denoising)
        save_gif(frames, staging / "progress.gif", config.gif_frame_ms)
        loss_label = LOSS_NAMES[spec.loss]
        if getattr(spec, "activity_l1", 0):
            loss_label += " + L1 code penalty"
        save_figure(loss_figure(name, history, loss_label), staging / "loss.png")

        code_name = "z_mean" if spec.family == "vae" else "code"
        if spec.denoising:
            code_name += " of the corrupted input"
        save_figure(code_map_figure(name, outputs, code_name), staging / "code_map.png")

        if spec.family == "vae":
            side = config.vae_grid_side
            samples = outputs["samples"].reshape(side, side, IMAGE_SIDE, IMAGE_SIDE)
            save_figure(samples_figure(name, samples), staging / "samples.png")
            pairs = [tuple(int(digit) for digit in pair) for pair in outputs["interpolation_pairs"]]
            figure = interpolation_figure(
                name, outputs["interpolation"], pairs, config.interpolation_steps
            )
            save_figure(figure, staging / "interpolation.png")
            if spec.code_size == 2:
                figure = manifold_figure(name, outputs["manifold"], outputs["manifold_grid"])
                save_figure(figure, staging / "manifold.png")
    written = sorted(path.name for path in figure_dir.iterdir())
    print(f"{name}: {len(written)} figures in {figure_dir}: {', '.join(written)}")
    return figure_dir
