"""The figure registry: who gets which figure, what each reads, and which function draws it."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from conftest import ROOT, zoo_outputs

from aezoo import rendering
from aezoo.config import load_params
from aezoo.figures import FIGURES, caption, figures_for, required_arrays

PARAMS = load_params(ROOT / "params.yaml")
EVERY_VARIANT = {"reconstructions.png", "progress.gif", "loss.png", "code_map.png"}
EXPECTED = {
    "dense16": EVERY_VARIANT,
    "dense32": EVERY_VARIANT,
    "sparse32": EVERY_VARIANT,
    "deep2d": EVERY_VARIANT,  # a 2-D code, but no generator: no manifold
    "stacked256": EVERY_VARIANT,
    "pca_dense128": EVERY_VARIANT,
    "pca_dense256": EVERY_VARIANT,
    "conv": EVERY_VARIANT,
    "conv_denoise": EVERY_VARIANT | {"triplets.png"},
    "strided_denoise128": EVERY_VARIANT | {"triplets.png"},
    "strided_denoise": EVERY_VARIANT | {"triplets.png"},
    "dense_denoise": EVERY_VARIANT | {"triplets.png"},
    "vae": EVERY_VARIANT | {"samples.png", "interpolation.png"},
    "vae2d": EVERY_VARIANT | {"samples.png", "interpolation.png", "manifold.png"},
    "conv_vae": EVERY_VARIANT | {"samples.png", "interpolation.png", "manifold.png"},
    "denoise_vae": EVERY_VARIANT | {"triplets.png", "samples.png", "interpolation.png"},
}


def test_every_variant_of_params_yaml_is_listed_here():
    assert set(EXPECTED) == set(PARAMS.variants)


@pytest.mark.parametrize("name", list(PARAMS.variants))
def test_each_variant_gets_the_figures_of_what_it_does(name):
    spec = PARAMS.variant(name)
    files = [figure.file for figure in figures_for(spec)]
    assert set(files) == EXPECTED[name]
    assert len(files) == len(set(files))
    assert ("triplets.png" in files) == spec.denoising
    assert ("samples.png" in files) == ("interpolation.png" in files) == spec.variational
    assert ("manifold.png" in files) == (spec.variational and spec.code_size == 2)
    registry_order = [figure.file for figure in FIGURES]
    assert files == [file for file in registry_order if file in files]  # the report's order


def test_figure_files_and_captions_are_unique_and_named():
    files = [figure.file for figure in FIGURES]
    assert len(files) == len(set(files))
    assert all(file.endswith((".png", ".gif")) for file in files)
    assert len({figure.caption for figure in FIGURES}) == len(FIGURES)
    assert caption("manifold.png") == "The 2-D latent manifold"
    assert caption("unknown.png") == "unknown.png"


@pytest.mark.parametrize("figure", FIGURES, ids=lambda figure: figure.file)
def test_every_figure_is_drawn_by_a_function_of_rendering_from_a_view(figure):
    draw = getattr(rendering, figure.draw, None)
    assert callable(draw), f"aezoo.rendering has no {figure.draw}"
    assert figure.draw.startswith("draw_")
    assert list(inspect.signature(draw).parameters) == ["view"]


def test_required_arrays_follow_the_code_size_and_objective():
    dense16, vae2d = PARAMS.variant("dense16"), PARAMS.variant("vae2d")
    assert required_arrays(dense16) == [
        "grid_indices",
        "grid_outputs",
        "code_map_labels",
        "code_width",
        "code_map_pca",
        "code_map_pca_explained",
        "code_map_tsne",
    ]
    arrays = required_arrays(vae2d)
    assert "code_map_points" in arrays and "code_map_tsne" not in arrays
    assert {"samples", "interpolation", "interpolation_pairs", "manifold", "manifold_grid"} <= (
        set(arrays)
    )
    assert len(arrays) == len(set(arrays))
    assert {"triplet_indices", "triplet_outputs"} <= set(
        required_arrays(PARAMS.variant("denoise_vae"))
    )


@pytest.mark.integration
def test_the_evaluate_stage_writes_every_array_the_figures_read(small_zoo):
    params, work = small_zoo
    for name, spec in params.variants.items():
        with np.load(zoo_outputs(work, name)) as archive:
            missing = set(required_arrays(spec)) - set(archive.files)
        assert not missing, f"{name}: the evaluate stage wrote no {sorted(missing)}"


@pytest.mark.integration
def test_the_render_stage_writes_exactly_the_registrys_files(rendered_zoo):
    params, work = rendered_zoo
    for name, spec in params.variants.items():
        written = {path.name for path in (work / "reports" / name / "figures").iterdir()}
        assert written == {figure.file for figure in figures_for(spec)}, name
