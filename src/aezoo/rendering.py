"""Figures of one evaluated variant that read on their own: arrays in, figures out.

Only drawing happens here, without TensorFlow or scikit-learn and without files: what needs
the model or a fit (the reconstructions shown, code maps, a VAE's decodings) is computed by
the evaluate stage (``evaluation.figure_arrays``); ``aezoo.figures`` says which figure a
variant gets and which ``draw_*`` function here draws it from a :class:`VariantView`;
``aezoo.stages.render`` reads the inputs and writes the files.

Every figure is titled with the variant's name and labelled; images are drawn as one tiled
mosaic per figure (fast, and the pixels are the model's). Figures are matplotlib ``Figure``
objects rendered by the Agg canvas (no pyplot, no global state); the progress GIF is drawn
with Pillow. Seeds are fixed and PNG metadata is stripped: the same inputs give the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageDraw, ImageFont

from aezoo.config import IMAGE_SIDE, AnyVariant, RenderConfig
from aezoo.data import to_unit_float

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


# --------------------------------------------------------------- encoded images


def png_bytes(figure: Figure) -> bytes:
    """A figure as a small palette PNG (the report is committed to git).

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
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def gif_bytes(frames: list[Image.Image], frame_ms: int) -> bytes:
    """Frames as a looping GIF, ``frame_ms`` per frame."""
    buffer = io.BytesIO()
    frames[0].save(
        buffer, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0
    )
    return buffer.getvalue()


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


# ------------------------------------------------------------ the registry's views


@dataclass(frozen=True)
class VariantView:
    """Everything a variant's figures are drawn from: the test split, the evaluate stage's
    outputs, the training history and progress frames, and the render settings."""

    name: str
    spec: AnyVariant
    config: RenderConfig
    originals: np.ndarray  # clean test images as stored
    inputs: np.ndarray  # the test images as the model saw them (corrupted for a denoiser)
    labels: np.ndarray
    outputs: dict[str, np.ndarray]
    history: dict[str, np.ndarray]
    progress: dict[str, np.ndarray]

    def images(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The clean images and the model's inputs at ``indices``, floats in [0, 1]."""
        return to_unit_float(self.originals[indices]), to_unit_float(self.inputs[indices])


def draw_reconstructions(view: VariantView) -> Figure:
    chosen = view.outputs["grid_indices"]
    originals, inputs = view.images(chosen)
    return reconstructions_figure(
        view.name,
        originals,
        inputs if view.spec.denoising else None,
        view.outputs["grid_outputs"],
        view.labels[chosen],
    )


def draw_triplets(view: VariantView) -> Figure:
    chosen = view.outputs["triplet_indices"]
    originals, inputs = view.images(chosen)
    rows = len(chosen) // view.config.grid_digits
    return triplets_figure(view.name, originals, inputs, view.outputs["triplet_outputs"], rows)


def draw_progress(view: VariantView) -> list[Image.Image]:
    return progress_frames(view.name, view.progress, view.spec.denoising)


def draw_loss(view: VariantView) -> Figure:
    label = LOSS_NAMES[view.spec.loss]
    if getattr(view.spec, "activity_l1", 0):
        label += " + L1 code penalty"
    return loss_figure(view.name, view.history, label)


def draw_code_map(view: VariantView) -> Figure:
    code_name = "z_mean" if view.spec.variational else "code"
    if view.spec.denoising:
        code_name += " of the corrupted input"
    return code_map_figure(view.name, view.outputs, code_name)


def draw_samples(view: VariantView) -> Figure:
    side = view.config.vae_grid_side
    samples = view.outputs["samples"].reshape(side, side, IMAGE_SIDE, IMAGE_SIDE)
    return samples_figure(view.name, samples)


def draw_interpolation(view: VariantView) -> Figure:
    pairs = [tuple(int(digit) for digit in pair) for pair in view.outputs["interpolation_pairs"]]
    return interpolation_figure(
        view.name, view.outputs["interpolation"], pairs, view.config.interpolation_steps
    )


def draw_manifold(view: VariantView) -> Figure:
    return manifold_figure(view.name, view.outputs["manifold"], view.outputs["manifold_grid"])
