"""Loading a trained variant's saved Keras models, for the stages that use them."""

from __future__ import annotations

from pathlib import Path

from aezoo.errors import DataError
from aezoo.stages import heavy_imports

MODEL_PARTS = ("autoencoder", "encoder", "decoder")


def load_models(model_dir: Path, parts: tuple[str, ...] = MODEL_PARTS) -> dict:
    """A trained variant's Keras models by part, loaded safely (``safe_mode=True``: no
    pickled code runs). A missing file is named."""
    with heavy_imports():
        import keras

        import aezoo.models  # noqa: F401 - registers the custom layer, loss and optimiser

    loaded = {}
    for part in parts:
        path = model_dir / f"{part}.keras"
        if not path.is_file():
            raise DataError(f"{path}: no such file (run the train stage first)")
        loaded[part] = keras.saving.load_model(path, safe_mode=True)
    return loaded
