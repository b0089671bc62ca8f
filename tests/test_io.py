"""The file layer: atomic writes, and every input named when it is missing or malformed."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from aezoo import io
from aezoo.errors import DataError


def test_atomic_path_renames_on_success_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "deep" / "model.keras"
    with io.atomic_path(target) as temporary:
        assert temporary.parent == target.parent and temporary.suffix == ".keras"
        temporary.write_text("new")
    assert target.read_text() == "new"
    with pytest.raises(RuntimeError), io.atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "new"
    assert [path.name for path in target.parent.iterdir()] == ["model.keras"]


def test_atomic_directory_keeps_the_old_one_on_failure(tmp_path):
    target = tmp_path / "figures"
    with io.atomic_directory(target) as staging:
        (staging / "a.png").write_text("old")
    with pytest.raises(RuntimeError), io.atomic_directory(target) as staging:
        (staging / "b.png").write_text("new")
        raise RuntimeError("drawing failed")
    assert [path.name for path in tmp_path.iterdir()] == ["figures"]  # no staging left over
    assert [path.name for path in target.iterdir()] == ["a.png"]
    with io.atomic_directory(target) as staging:
        (staging / "c.png").write_text("newer")
    assert [path.name for path in target.iterdir()] == ["c.png"]  # stale files are gone
    assert [path.name for path in tmp_path.iterdir()] == ["figures"]


def test_json_round_trips_and_non_finite_numbers_become_null(tmp_path):
    path = tmp_path / "metrics.json"
    io.write_json(path, {"a": 1.5, "b": {"c": float("nan"), "d": [float("inf"), 2]}, "e": "x"})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": {"c": None, "d": [None, 2]}, "e": "x"}
    assert io.read_json(path) == json.loads(path.read_text())


def test_write_bytes_and_sha256(tmp_path):
    payload = bytes(range(256)) * 5000  # more than one read chunk
    path = io.write_bytes(tmp_path / "out" / "blob.bin", payload)
    assert path.read_bytes() == payload
    assert io.sha256_of(path) == hashlib.sha256(payload).hexdigest()


def test_history_has_only_the_epoch_and_the_losses_and_round_trips(tmp_path):
    path = tmp_path / "history.csv"
    io.write_history(path, {"loss": [0.5, 0.25], "val_loss": [0.6, 0.3]})
    assert path.read_text().splitlines() == ["epoch,loss,val_loss", "1,0.5,0.6", "2,0.25,0.3"]
    history = io.read_history(path)
    assert set(history) == set(io.HISTORY_COLUMNS) == {"epoch", "loss", "val_loss"}
    np.testing.assert_array_equal(history["epoch"], [1, 2])
    np.testing.assert_array_equal(history["val_loss"], [0.6, 0.3])
    with pytest.raises(ValueError):  # the columns must be as long as each other
        io.write_history(path, {"loss": [0.5, 0.25], "val_loss": [0.6]})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epoch,loss\n1,0.5\n", r"history\.csv: expected the columns epoch, loss, val_loss"),
        ("epoch,loss,val_loss\n", r"history\.csv: expected the columns"),
        ("epoch,loss,val_loss\n1,0.5,oops\n", r"history\.csv: not a number in the loss history"),
    ],
)
def test_malformed_history_is_named(tmp_path, text, message):
    path = tmp_path / "history.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        io.read_history(path)


def test_missing_history_names_the_stage_to_run(tmp_path):
    with pytest.raises(DataError, match=r"history\.csv: no such file \(run the train stage"):
        io.read_history(tmp_path / "history.csv")


def test_arrays_round_trip_and_missing_ones_are_named(tmp_path):
    path = tmp_path / "progress.npz"
    io.write_arrays(path, {"indices": np.arange(3), "frames": np.zeros((2, 3, 28, 28), np.uint8)})
    arrays = io.read_arrays(path, ["indices", "frames"], "train")
    np.testing.assert_array_equal(arrays["indices"], [0, 1, 2])
    assert arrays["frames"].shape == (2, 3, 28, 28) and arrays["frames"].dtype == np.uint8
    with pytest.raises(DataError, match=r"missing the arrays inputs, targets \(run the train"):
        io.read_arrays(path, io.PROGRESS_ARRAYS, "train")
    with pytest.raises(DataError, match=r"other\.npz: no such file \(run the evaluate stage"):
        io.read_arrays(tmp_path / "other.npz", [], "evaluate")
