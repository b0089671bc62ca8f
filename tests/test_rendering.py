"""The render stage on tiny real models: every figure written, readable, and reproducible."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SMALL_ZOO_EPOCHS, write_params
from conftest import zoo_outputs as outputs
from matplotlib.figure import Figure
from PIL import Image

from aezoo import rendering
from aezoo.config import IMAGE_SIDE
from aezoo.errors import DataError
from aezoo.figures import figures_for
from aezoo.stages.render import render

EPOCHS = SMALL_ZOO_EPOCHS


@pytest.fixture(scope="module")
def zoo(rendered_zoo):
    """conftest's small zoo (trained and evaluated), rendered."""
    return rendered_zoo


def render_variant(params, name: str, work: Path, report: Path, arrays: Path | None = None):
    """The render stage on a small-zoo variant, into ``report``."""
    models = work / "models" / name
    return render(
        params, name, work / "data", models, report, test_outputs=arrays or outputs(work, name)
    )


def figures_of(work: Path, name: str) -> Path:
    return work / "reports" / name / "figures"


def expected_figures(params, name: str) -> list[str]:
    return [figure.file for figure in figures_for(params.variant(name))]


@pytest.mark.integration
@pytest.mark.parametrize("name", EPOCHS)
def test_every_figure_is_written_and_decodes(zoo, name):
    params, work = zoo
    expected = expected_figures(params, name)
    assert sorted(path.name for path in figures_of(work, name).iterdir()) == sorted(expected)
    for file in expected:
        with Image.open(figures_of(work, name) / file) as image:
            image.load()
            assert image.format == ("GIF" if file.endswith(".gif") else "PNG")
            assert image.width >= 300 and image.height >= 100, file
        assert (figures_of(work, name) / file).stat().st_size < 400_000, file  # git-friendly


@pytest.mark.integration
@pytest.mark.parametrize("name", ["vae2d", "conv_vae"])
def test_vae_figures_include_samples_interpolation_and_manifold(zoo, name):
    params, work = zoo
    assert {"samples.png", "interpolation.png", "manifold.png"} <= {
        path.name for path in figures_of(work, name).iterdir()
    }
    assert "samples.png" not in expected_figures(params, "dense16")
    assert "manifold.png" not in expected_figures(params, "vae")  # a 128-D code
    with Image.open(figures_of(work, name) / "manifold.png") as image:
        assert image.width >= params.render.manifold_side * IMAGE_SIDE


@pytest.mark.integration
def test_denoiser_grid_has_a_row_of_corrupted_inputs(zoo):
    _, work = zoo
    with Image.open(figures_of(work, "dense16") / "reconstructions.png") as plain:
        plain_size = plain.size
    with Image.open(figures_of(work, "conv_denoise") / "reconstructions.png") as denoiser:
        denoiser_size = denoiser.size
    assert plain_size[0] == denoiser_size[0] >= 12 * IMAGE_SIDE  # grid_digits columns
    assert denoiser_size[1] > plain_size[1]  # three rows against two
    with Image.open(figures_of(work, "conv_denoise") / "triplets.png") as triplets:
        assert triplets.size[1] > denoiser_size[1]  # 10 rows against 3 (smaller cells)
    assert not (figures_of(work, "dense16") / "triplets.png").exists()


def test_triplet_grid_keeps_each_digit_with_its_input_and_reconstruction():
    images = [np.arange(20 * 28 * 28, dtype=np.float32).reshape(20, 28, 28) + k for k in (0, 1, 2)]
    grid = rendering.triplet_grid(*images, rows=2)
    assert grid.shape == (2, 30, 28, 28)
    for index in range(20):
        row, column = divmod(index, 10)
        for part in range(3):
            np.testing.assert_array_equal(grid[row, 3 * column + part], images[part][index])


@pytest.mark.integration
@pytest.mark.parametrize("name", EPOCHS)
def test_progress_gif_has_one_captioned_frame_per_epoch(zoo, name):
    params, work = zoo
    with np.load(work / "models" / name / "progress.npz") as archive:
        last_epoch = archive["frames"][-1]
    digits = params.training.progress_digits
    rows = 3 if params.variant(name).denoising else 2
    with Image.open(figures_of(work, name) / "progress.gif") as gif:
        assert gif.n_frames == EPOCHS[name]
        assert gif.info["duration"] == params.render.gif_frame_ms and gif.info["loop"] == 0
        scale = rendering.GIF_SCALE
        strip = (digits * (IMAGE_SIDE + rendering.GIF_GAP) - rendering.GIF_GAP) * scale
        assert gif.size == (
            rendering.GIF_LABEL_WIDTH + strip,
            rendering.GIF_HEADER + rows * IMAGE_SIDE * scale,
        )
        first = np.asarray(gif.convert("L"), dtype=np.int16)
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("L"), dtype=np.int16)
    # the bottom row shows the last epoch's reconstructions (16 grey levels, scaled up)
    top = rendering.GIF_HEADER + (rows - 1) * IMAGE_SIDE * scale
    shown = last[top::scale, rendering.GIF_LABEL_WIDTH :: scale][:IMAGE_SIDE, :IMAGE_SIDE]
    assert np.abs(shown - last_epoch[0]).max() <= 255 // (rendering.GIF_SHADES - 1)
    # every frame is captioned with its epoch, so each differs in the header
    assert first[: rendering.GIF_HEADER].min() < 100  # dark text on white
    if EPOCHS[name] > 1:
        assert (first[: rendering.GIF_HEADER] != last[: rendering.GIF_HEADER]).any()


@pytest.mark.integration
def test_render_is_deterministic(zoo, tmp_path):
    params, work = zoo
    again = tmp_path / "dense16"
    again.mkdir()
    shutil.copy(work / "reports" / "dense16" / "history.csv", again / "history.csv")
    assert render_variant(params, "dense16", work, again) == again / "figures"
    for path in figures_of(work, "dense16").iterdir():
        assert (again / "figures" / path.name).read_bytes() == path.read_bytes(), path.name


@pytest.mark.integration
def test_missing_progress_is_named_and_keeps_old_figures(zoo, tmp_path):
    params, work = zoo
    models = tmp_path / "models"
    shutil.copytree(work / "models" / "dense16", models)
    (models / "progress.npz").unlink()
    report = tmp_path / "report"
    shutil.copytree(work / "reports" / "dense16", report)
    before = sorted(path.name for path in (report / "figures").iterdir())
    with pytest.raises(DataError, match=r"progress\.npz: no such file \(run the train"):
        render(
            params, "dense16", work / "data", models, report, test_outputs=outputs(work, "dense16")
        )
    assert sorted(path.name for path in (report / "figures").iterdir()) == before


@pytest.mark.integration
def test_missing_test_outputs_are_named_with_the_stage_to_run(zoo, tmp_path):
    params, work = zoo
    report = tmp_path / "report"
    shutil.copytree(work / "reports" / "conv_denoise", report)
    arrays_file = tmp_path / "conv_denoise.npz"
    with pytest.raises(DataError, match=r"conv_denoise\.npz: no such file \(run the evaluate"):
        render_variant(params, "conv_denoise", work, report, arrays_file)
    with np.load(outputs(work, "conv_denoise")) as archive:
        arrays = {key: archive[key] for key in archive.files if key != "triplet_outputs"}
    np.savez(arrays_file, **arrays)
    with pytest.raises(DataError, match="missing the arrays triplet_outputs"):
        render_variant(params, "conv_denoise", work, report, arrays_file)


@pytest.mark.integration
def test_render_imports_neither_tensorflow_nor_scikit_learn(zoo, tmp_path):
    """The render stage only draws: its process stays light (no TensorFlow start-up)."""
    params, work = zoo
    report = tmp_path / "vae2d"
    shutil.copytree(work / "reports" / "vae2d", report)
    config = write_params(tmp_path / "params.yaml", params.model_dump(mode="json"))
    code = (
        "import sys; from pathlib import Path; from aezoo.stages.render import render; "
        "from aezoo.config import load_params; "
        f"render(load_params(Path({str(config)!r})), 'vae2d', Path({str(work / 'data')!r}), "
        f"Path({str(work / 'models' / 'vae2d')!r}), Path({str(report)!r}), "
        f"test_outputs=Path({str(outputs(work, 'vae2d'))!r})); "
        "heavy = sorted({'tensorflow', 'keras', 'sklearn', 'mlflow'} & set(sys.modules)); "
        "print('heavy:', heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "heavy: []" in result.stdout
    assert sorted(path.name for path in (report / "figures").iterdir()) == sorted(
        expected_figures(params, "vae2d")
    )


@pytest.mark.integration
def test_missing_history_fails_cleanly_from_the_command_line(zoo, tmp_path):
    params, work = zoo
    config = write_params(tmp_path / "params.yaml", params.model_dump(mode="json"))
    (tmp_path / "reports" / "dense16").mkdir(parents=True)
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "pipeline" / "render.py"),
            "dense16",
            "--params",
            str(config),
            "--data",
            str(work / "data"),
            "--models",
            str(work / "models"),
            "--reports",
            str(tmp_path / "reports"),
            "--outputs",
            str(work / "test_outputs"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "error:" in result.stderr and "dense16/history.csv: no such file" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "reports" / "dense16" / "figures").exists()


def test_png_bytes_are_a_small_palette_png_without_metadata_and_the_same_every_time():
    def figure() -> Figure:
        drawn = Figure(figsize=(3, 2))
        drawn.add_subplot().plot([0, 1, 2], [1, 0, 2])
        return drawn

    first, second = rendering.png_bytes(figure()), rendering.png_bytes(figure())
    assert first == second
    with Image.open(io.BytesIO(first)) as image:
        assert image.format == "PNG" and image.mode == "P"
        assert image.size == (3 * rendering.DPI, 2 * rendering.DPI)
        assert not {"Software", "dpi", "Creation Time"} & set(image.info)


def test_gif_bytes_loop_every_frame_at_the_given_pace():
    frames = [Image.new("L", (20, 10), shade) for shade in (0, 128, 255)]
    with Image.open(io.BytesIO(rendering.gif_bytes(frames, 150))) as gif:
        assert gif.format == "GIF" and gif.n_frames == 3
        assert gif.info["duration"] == 150 and gif.info["loop"] == 0
        gif.seek(2)
        assert np.asarray(gif.convert("L")).min() == 255
