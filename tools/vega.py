"""Vega-Lite charts as PNG images: Vega's own CLI draws them, rsvg-convert rasterises.

``dvc plots diff --json`` fills a plot's template into a Vega-Lite spec; drawing that spec
with Vega gives the chart DVC shows, not a redrawing of it. ``vl2svg`` comes from the
vega-lite package in package.json (``make env`` runs ``npm ci``) and needs no node-canvas,
whose prebuilt binaries are not on the npm registry; ``rsvg-convert`` (Debian's
librsvg2-bin) turns the SVG into a PNG, the format every comment renderer shows.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aezoo.errors import PipelineError
from aezoo.io import atomic_path
from tools.commands import run_command

NODE_BIN = Path(__file__).resolve().parents[1] / "node_modules" / ".bin"
INSTALL_HINTS = {
    "vl2svg": "run `make env` (npm ci installs vega-lite from package-lock.json)",
    "rsvg-convert": "install Debian's librsvg2-bin (`apt-get install librsvg2-bin`)",
}


def executable(name: str) -> str:
    """The project's own copy of ``name`` (node_modules/.bin), else the one on PATH."""
    local = NODE_BIN / name
    if local.is_file():
        return str(local)
    if found := shutil.which(name):
        return found
    raise PipelineError(f"{name} not found: {INSTALL_HINTS[name]}")


def vega_lite_png(spec: Mapping[str, Any], out: Path, zoom: float = 1.5) -> Path:
    """Draw the Vega-Lite ``spec`` (data inline) as a PNG at ``out``, ``zoom`` times its size."""
    with tempfile.TemporaryDirectory(prefix="aezoo-vega-") as scratch:
        spec_file, svg = Path(scratch) / "chart.vl.json", Path(scratch) / "chart.svg"
        spec_file.write_text(json.dumps(spec))
        run_command([executable("vl2svg"), str(spec_file), str(svg)], Path(scratch))
        with atomic_path(out) as temporary:
            rasterise = [executable("rsvg-convert"), "--zoom", str(zoom), "--output"]
            run_command([*rasterise, str(temporary), str(svg)], Path(scratch))
    return out
