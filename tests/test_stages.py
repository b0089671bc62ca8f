"""Stage entry points on a real subset: outputs, stats, and clean failures."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, write_params

from aezoo.data import load_prepared
from aezoo.errors import DataError
from aezoo.stages import load_inputs


def run_stage(script, *args, cwd):
    return subprocess.run(
        [sys.executable, str(ROOT / "pipeline" / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.integration
def test_corrupt_stage_writes_splits_and_statistics(tmp_path, prepared_small, raw_params):
    params = write_params(tmp_path / "params.yaml", raw_params)
    data = tmp_path / "prepared"
    data.mkdir()
    (data / "clean.npz").symlink_to(prepared_small / "clean.npz")
    result = run_stage(
        "corrupt.py",
        "gauss05",
        "--params",
        str(params),
        "--data",
        str(data),
        "--reports",
        str(tmp_path / "reports"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    with np.load(data / "gauss05.npz") as archive:
        assert archive["x_train"].shape == (1024, 28, 28)
        assert archive["x_test"].dtype == np.float16
    stats = json.loads((tmp_path / "reports" / "gauss05.json").read_text())
    assert set(stats) == {"test_mse", "test_psnr_db", "test_mean", "clean_test_mean"}
    assert 0.09 < stats["test_mse"] < 0.14 and 8 < stats["test_psnr_db"] < 11

    clean = load_prepared(data / "clean.npz")
    assert load_inputs(data, "clean", clean) is clean
    noisy = load_inputs(data, "gauss05", clean)
    assert set(noisy) == {"train", "val", "test"} and noisy["test"].x.dtype == np.float16
    np.testing.assert_array_equal(noisy["test"].y, clean["test"].y)  # the same digits
    with pytest.raises(DataError, match=r"mask\.npz: no such file"):
        load_inputs(data, "mask", clean)


def test_bad_params_fail_before_any_work_with_the_key_named(tmp_path, raw_params):
    raw_params["corruptions"]["gauss05"]["std"] = -0.5
    params = write_params(tmp_path / "params.yaml", raw_params)
    result = run_stage(
        "fetch.py", "--params", str(params), "--out", str(tmp_path / "raw"), cwd=tmp_path
    )
    assert result.returncode == 1
    assert "corruptions.gauss05.std: Input should be greater than 0, got -0.5" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "raw").exists()


def test_fetch_without_source_fails_cleanly(tmp_path, raw_params, monkeypatch):
    monkeypatch.delenv("AEZOO_MNIST_MIRROR", raising=False)
    raw_params["data"]["mirror"] = str(tmp_path / "nowhere")
    params = write_params(tmp_path / "params.yaml", raw_params)
    result = run_stage(
        "fetch.py", "--params", str(params), "--out", str(tmp_path / "raw"), cwd=tmp_path
    )
    assert result.returncode == 1
    assert "error: could not fetch train-images-idx3-ubyte.gz" in result.stderr
    assert "AEZOO_MNIST_MIRROR" in result.stderr
    assert list((tmp_path / "raw").glob("*")) == []


@pytest.mark.parametrize("stage", ["prepare.py"])
def test_prepare_without_fetched_files_names_the_file(tmp_path, raw_params, stage):
    params = write_params(tmp_path / "params.yaml", raw_params)
    result = run_stage(
        stage,
        "--params",
        str(params),
        "--raw",
        str(tmp_path / "raw"),
        "--out",
        str(tmp_path / "clean.npz"),
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "train-images-idx3-ubyte.gz: no such file (run the fetch stage first)" in result.stderr
    assert not (tmp_path / "clean.npz").exists()


def test_heavy_imports_pause_the_garbage_collector_and_restore_it():
    import gc

    from aezoo.stages import heavy_imports

    assert gc.isenabled()
    with heavy_imports():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ImportError), heavy_imports():
        import aezoo.no_such_module  # noqa: F401
    assert gc.isenabled()
    gc.disable()
    try:
        with heavy_imports():
            pass
        assert not gc.isenabled()  # a caller's own choice is kept
    finally:
        gc.enable()


def test_loading_a_missing_model_names_the_file_and_the_stage(tmp_path):
    from aezoo.stages.loading import load_models

    with pytest.raises(DataError, match=r"none/encoder\.keras: no such file \(run the train"):
        load_models(tmp_path / "none", ("encoder",))


def test_a_denoisers_summary_line_shows_the_denoising_baselines_not_clean_pca() -> None:
    from aezoo.stages.evaluate import summary_line

    scores = {"mse": 0.01, "bce": 0.1, "psnr_db": 20.0, "ssim": 0.8}
    result = {
        "reconstruction": scores,
        "corrupted_input": {**scores, "psnr_db": 9.38},
        "baselines": {
            "pca": {**scores, "mse": 0.0},
            "pca_denoise": {**scores, "psnr_db": 14.48},
            "median_filter": {**scores, "psnr_db": 14.19},
        },
    }
    line = summary_line("den", True, result, 128)
    assert "noisy input 9.38" in line and "pca_denoise(128) 14.48" in line
    assert "median_filter 14.19" in line and "MSE 0.0000" not in line
    plain = summary_line("ae", False, result, 16)
    assert plain.endswith("pca(16) MSE 0.0000") and "median" not in plain
