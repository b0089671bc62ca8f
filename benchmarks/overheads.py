"""What the pipeline costs besides training: stage start-up, library imports, DVC."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.settings import BenchmarkError


def time_command(command: list[str], repeats: int = 1) -> tuple[float, subprocess.CompletedProcess]:
    """Median wall seconds of ``command`` over ``repeats`` runs, and the last run."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), done


def stage_scripts(dvc_yaml: Path = Path("dvc.yaml")) -> list[Path]:
    """The ``pipeline/*.py`` scripts that ``dvc.yaml``'s stage commands run, in order."""
    if not dvc_yaml.is_file():
        raise BenchmarkError(f"{dvc_yaml}: no such file (run the benchmark in the repository)")
    found = re.findall(r"python (pipeline/\w+\.py)", dvc_yaml.read_text())
    return [Path(script) for script in dict.fromkeys(found)]


def entry_point_seconds(scripts: list[Path], repeats: int = 3) -> dict:
    """Start-up time of each stage script (``python pipeline/x.py --help``) and of bare Python."""
    timings = {"python -c pass": round(time_command([sys.executable, "-c", "pass"], repeats)[0], 3)}
    for script in scripts:
        seconds, done = time_command([sys.executable, str(script), "--help"], repeats)
        if done.returncode != 0:
            raise BenchmarkError(f"{script} --help failed: {done.stderr.strip()[-300:]}")
        timings[script.name] = round(seconds, 3)
    return timings


# What each stage imports before it works (its heavy imports are deferred past argument
# parsing, so ``--help`` alone does not show them).
STAGE_LIBRARIES = {
    "aezoo.data": "fetch, prepare",
    "aezoo.corruption": "corrupt (TensorFlow)",
    "aezoo.training": "train (TensorFlow, Keras)",
    "aezoo.evaluation": "evaluate (TensorFlow, Keras, scikit-learn)",
    "aezoo.rendering": "render (matplotlib, Pillow)",
    "aezoo.reporting": "compare (pandas, matplotlib)",
    "aezoo.tracking": "track (MLflow)",
}


def library_import_seconds(libraries: dict[str, str] = STAGE_LIBRARIES, repeats: int = 3) -> dict:
    """Wall time of importing the library module each stage loads, in a fresh interpreter
    and as the stages do it (``aezoo.stages.heavy_imports``: garbage collector paused)."""
    timings = {}
    for module in libraries:
        code = f"from aezoo.stages import heavy_imports\nwith heavy_imports(): import {module}"
        seconds, done = time_command([sys.executable, "-c", code], repeats)
        if done.returncode != 0:
            raise BenchmarkError(f"import {module} failed: {done.stderr.strip()[-300:]}")
        timings[module] = round(seconds, 3)
    return timings


def dvc_noop_seconds() -> dict:
    """Time ``dvc status`` and, only when everything is up to date, a no-op ``dvc repro``."""
    status_s, status = time_command(["dvc", "status", "--json"])
    facts: dict = {"dvc_status_seconds": round(status_s, 3)}
    if status.returncode != 0:
        facts["dvc_repro"] = f"skipped: dvc status failed ({status.stderr.strip()[-200:]})"
    elif json.loads(status.stdout or "{}"):
        facts["dvc_repro"] = "skipped: the pipeline is not up to date (dvc status lists changes)"
    else:
        repro_s, repro = time_command(["dvc", "repro"])
        if repro.returncode != 0:
            raise BenchmarkError(f"dvc repro failed: {repro.stderr.strip()[-300:]}")
        facts["dvc_repro_noop_seconds"] = round(repro_s, 3)
    return facts
