"""Stage render: draw one variant's figures (``aezoo.figures``) into its report directory."""

from __future__ import annotations

from pathlib import Path

from aezoo.config import Params
from aezoo.data import load_prepared
from aezoo.figures import figures_for, required_arrays
from aezoo.io import PROGRESS_ARRAYS, atomic_directory, read_arrays, read_history, write_bytes
from aezoo.stages import heavy_imports, load_inputs


def render(
    params: Params,
    name: str,
    data_dir: Path,
    model_dir: Path,
    report_dir: Path,
    *,
    test_outputs: Path,
) -> Path:
    """Draw every figure of one evaluated variant into ``report_dir/figures``; return it.

    The model's outputs and the code maps come from the evaluate stage's ``test_outputs``,
    the progress frames and losses from the train stage. The directory is replaced whole,
    so it holds exactly this run's figures.
    """
    spec = params.variant(name)
    with heavy_imports():
        from aezoo import rendering  # matplotlib and Pillow: imported only where needed

    clean = load_prepared(data_dir / "clean.npz")
    view = rendering.VariantView(
        name=name,
        spec=spec,
        config=params.render,
        originals=clean["test"].x,
        inputs=load_inputs(data_dir, spec.input, clean)["test"].x,
        labels=clean["test"].y,
        outputs=read_arrays(test_outputs, required_arrays(spec), "evaluate"),
        history=read_history(report_dir / "history.csv"),
        progress=read_arrays(model_dir / "progress.npz", PROGRESS_ARRAYS, "train"),
    )
    figure_dir = report_dir / "figures"
    with atomic_directory(figure_dir) as staging:
        for figure in figures_for(spec):
            drawn = getattr(rendering, figure.draw)(view)
            if figure.file.endswith(".gif"):
                payload = rendering.gif_bytes(drawn, params.render.gif_frame_ms)
            else:
                payload = rendering.png_bytes(drawn)
            write_bytes(staging / figure.file, payload)
    written = sorted(path.name for path in figure_dir.iterdir())
    print(f"{name}: {len(written)} figures in {figure_dir}: {', '.join(written)}")
    return figure_dir
