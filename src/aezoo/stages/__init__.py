"""The pipeline's stages: each module reads a stage's inputs, calls the pure library
(arrays in, arrays or figures out) and writes its outputs atomically.

``pipeline/<stage>.py`` only parses arguments and calls ``aezoo.stages.<stage>``; ``dvc.yaml``
names the same paths, and a stage's code deps are the modules it imports.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aezoo.data import Split, load_prepared

# evaluate's test_outputs/<variant>.npz: keys of the values per test image that its figures
# average (the compare stage's intervals resample them)
PER_IMAGE = "per_image."
# The studies' trials and the denoising study's classical methods, per directory.
SCORES = "scores.npz"  # a trial's values per test image (stages.trial)
CLASSICAL = "classical.npz"  # the classical denoisers' PSNR per test-subset image
CHOICES = "classical.json"  # their chosen settings, candidates and timings


@contextmanager
def heavy_imports() -> Iterator[None]:
    """Import TensorFlow, scikit-learn or MLflow with Python's cyclic garbage collector paused.

    Importing TensorFlow creates ~400,000 long-lived objects and almost no garbage, yet sets
    off ~1,000 collections, a few of them full ones: ~1.5 s of its ~7 s of CPU (measured with
    the imports interleaved). Collection resumes for the stage's own work.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_inputs(data_dir: Path, input_name: str, clean: dict[str, Split]) -> dict[str, Split]:
    """The model inputs for ``input_name``: the clean splits, or the corrupt stage's copies."""
    if input_name == "clean":
        return clean
    return load_prepared(data_dir / f"{input_name}.npz")
