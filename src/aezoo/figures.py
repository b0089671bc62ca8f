"""The one registry of a variant's figures: what each shows, for which variants, what it
needs from the evaluate stage and which function draws it.

The render stage draws exactly these, the report page and MLflow show them with these
captions, and the tests read them. A figure applies to a variant by what the variant does
(``denoising``, ``variational``, its code size), never by its name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aezoo.config import AnyVariant

CODE_MAP_PROJECTIONS = ("code_map_pca", "code_map_pca_explained", "code_map_tsne")


@dataclass(frozen=True)
class FigureSpec:
    """One figure: its file name, caption, who gets it, what it reads, how it is drawn."""

    file: str
    caption: str
    shown_for: Callable[[AnyVariant], bool]
    needs: Callable[[AnyVariant], tuple[str, ...]]  # arrays of the evaluate stage's outputs
    draw: str  # the function of aezoo.rendering that draws it from a VariantView


def _always(spec: AnyVariant) -> bool:
    return True


def _code_map_arrays(spec: AnyVariant) -> tuple[str, ...]:
    points = ("code_map_points",) if spec.code_size == 2 else CODE_MAP_PROJECTIONS
    return ("code_map_labels", "code_width", *points)


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec(
        "reconstructions.png",
        "Fixed test digits and their reconstructions",
        _always,
        lambda spec: ("grid_indices", "grid_outputs"),
        "draw_reconstructions",
    ),
    FigureSpec(
        "triplets.png",
        "100 test digits: original, corrupted input and reconstruction",
        lambda spec: spec.denoising,
        lambda spec: ("triplet_indices", "triplet_outputs"),
        "draw_triplets",
    ),
    FigureSpec(
        "progress.gif",
        "The same digits reconstructed after each training epoch",
        _always,
        lambda spec: (),
        "draw_progress",
    ),
    FigureSpec(
        "loss.png",
        "Training and validation loss per epoch",
        _always,
        lambda spec: (),
        "draw_loss",
    ),
    FigureSpec(
        "code_map.png",
        "Test images in code space, coloured by digit",
        _always,
        _code_map_arrays,
        "draw_code_map",
    ),
    FigureSpec(
        "samples.png",
        "Decoded samples from the prior N(0, I)",
        lambda spec: spec.variational,
        lambda spec: ("samples",),
        "draw_samples",
    ),
    FigureSpec(
        "interpolation.png",
        "Linear interpolation in z_mean between test digits",
        lambda spec: spec.variational,
        lambda spec: ("interpolation", "interpolation_pairs"),
        "draw_interpolation",
    ),
    FigureSpec(
        "manifold.png",
        "The 2-D latent manifold",
        lambda spec: spec.variational and spec.code_size == 2,
        lambda spec: ("manifold", "manifold_grid"),
        "draw_manifold",
    ),
)


def figures_for(spec: AnyVariant) -> list[FigureSpec]:
    """The figures a variant gets, in the order the report shows them."""
    return [figure for figure in FIGURES if figure.shown_for(spec)]


def required_arrays(spec: AnyVariant) -> list[str]:
    """The arrays of the evaluate stage's test outputs that a variant's figures read."""
    return list(dict.fromkeys(key for figure in figures_for(spec) for key in figure.needs(spec)))


def caption(file: str) -> str:
    """The caption of a figure file; the file name itself for one not in the registry."""
    return next((figure.caption for figure in FIGURES if figure.file == file), file)
