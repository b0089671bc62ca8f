"""Stage compare: every variant side by side: metrics.csv, summary.md, charts, index.html."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aezoo.config import Params
from aezoo.errors import DataError
from aezoo.io import atomic_directory, read_arrays, write_bytes
from aezoo.stages import PER_IMAGE, heavy_imports


def read_report(path: Path, maker: str) -> dict[str, Any]:
    """A stage's JSON report; a missing or malformed one is named, with what to run."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (run the {maker} stage)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); run the {maker} stage again") from None


def per_image_values(outputs: Path, name: str) -> dict[str, Any]:
    """The values per test image that evaluate@``name`` wrote beside its figure arrays."""
    arrays = read_arrays(outputs, [PER_IMAGE + "autoencoder_mse"], f"evaluate@{name}")
    return {
        key[len(PER_IMAGE) :]: value for key, value in arrays.items() if key.startswith(PER_IMAGE)
    }


def compare(
    params: Params, variants_dir: Path, out_dir: Path, corruptions_dir: Path, outputs_dir: Path
) -> None:
    """Write metrics.csv, summary.md, figures/ and index.html into ``out_dir`` for every
    variant of ``params.yaml``; ``outputs_dir`` holds evaluate's ``<variant>.npz`` with the
    values per test image that the intervals resample."""
    with heavy_imports():
        from aezoo import reporting
        from aezoo.rendering import png_bytes

    if not params.variants:
        raise DataError("params.yaml: no variants to compare")
    rows = []
    for name, spec in params.variants.items():
        directory = variants_dir / name
        row = reporting.variant_row(
            name,
            spec,
            read_report(directory / "metrics.json", f"evaluate@{name}"),
            read_report(directory / "train.json", f"train@{name}"),
            read_report(directory / "evaluate.json", f"evaluate@{name}"),
            directory / "metrics.json",
        )
        values = outputs_dir / f"{name}.npz"
        try:
            intervals = reporting.interval_columns(
                per_image_values(values, name), params.comparison
            )
        except ValueError as exc:  # non-finite values, or arrays of different images
            raise DataError(f"{values}: {exc} (run evaluate@{name} again)") from None
        rows.append(row | intervals)
    frame = reporting.frame_of(rows)
    used = sorted(set(frame.loc[frame["input"] != "clean", "input"]))
    stats = {
        corruption: read_report(corruptions_dir / f"{corruption}.json", f"corrupt@{corruption}")
        for corruption in sorted({*params.corruptions, *used})
        if corruption in used or (corruptions_dir / f"{corruption}.json").is_file()
    }
    kinds = {name: corruption.kind for name, corruption in params.corruptions.items()}
    corruptions = reporting.corruptions_frame(stats, kinds, frame)

    write_bytes(out_dir / "metrics.csv", frame.to_csv(index=False, float_format="%.6g").encode())
    chart_dir = out_dir / "figures"
    charts = reporting.charts(frame)
    with atomic_directory(chart_dir) as staging:
        for file, figure in charts.items():
            write_bytes(staging / file, png_bytes(figure))
    variants_link = Path(os.path.relpath(variants_dir.resolve(), out_dir.resolve())).as_posix()
    summary = reporting.summary_markdown(frame, corruptions, list(charts), variants_link)
    write_bytes(out_dir / "summary.md", summary.encode())
    page = reporting.index_html(
        frame, corruptions, chart_dir, list(charts), variants_dir, page_dir=out_dir
    )
    write_bytes(out_dir / "index.html", page.encode("utf-8"))
    print(
        f"compared {len(frame)} variants: {out_dir / 'metrics.csv'}, {out_dir / 'summary.md'}, "
        f"{out_dir / 'index.html'} ({len(page.encode()) / 1e3:,.0f} kB), {len(charts)} charts"
    )
