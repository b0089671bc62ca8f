"""The ``aezoo`` command on untrained models of the real architectures (no MNIST needed):
what it writes, what it computes, and one clear line for every bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image, ImageDraw

from aezoo import app
from aezoo.command import run
from aezoo.config import load_params

VARIANTS = ("dense16", "conv_denoise", "vae2d")  # plain, denoising, a 2-D VAE
VALIDATION = np.linspace(0.01, 0.05, 101, dtype=np.float32)  # 0.99 quantile: 0.0496


def draw_digit(path: Path, dark_ink: bool = True, size=(160, 120), fmt: str | None = None):
    paper, ink = (250, 20) if dark_ink else (10, 240)
    image = Image.new("RGB", size, (paper,) * 3)
    ImageDraw.Draw(image).line([(30, 20), (90, 20), (50, 100)], fill=(ink,) * 3, width=9)
    image.save(path, format=fmt)
    return path


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """A zoo directory as the command finds it after `make pull`: params.yaml, the models
    (built, untrained, saved as the train stage saves them) and the evaluate stage's
    validation errors (known values)."""
    import keras

    from aezoo.models import build

    work = tmp_path_factory.mktemp("zoo")
    (work / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    params = load_params(work / "params.yaml")
    for name in VARIANTS:
        keras.utils.set_random_seed(0)
        parts = build(name, params.variant(name))
        folder = work / "models" / name
        folder.mkdir(parents=True)
        for part in ("autoencoder", "encoder", "decoder"):
            getattr(parts, part).save(folder / f"{part}.keras")
        arrays = {"validation_mse": VALIDATION}
        if params.variant(name).denoising:
            arrays["validation_mse_clean_input"] = VALIDATION / 10
        (work / "test_outputs").mkdir(exist_ok=True)
        np.savez(work / "test_outputs" / f"{name}.npz", **arrays)
    images = work / "mine"
    images.mkdir()
    draw_digit(images / "a.png")
    draw_digit(images / "b.jpg", dark_ink=False, size=(300, 500))
    draw_digit(images / "c.bmp", size=(64, 64))
    return work


def aezoo(zoo: Path, *args: str) -> dict:
    return run(
        [
            args[0],
            "--params",
            str(zoo / "params.yaml"),
            "--models",
            str(zoo / "models"),
            "--outputs",
            str(zoo / "test_outputs"),
            *args[1:],
        ]
    )


def load_part(zoo: Path, name: str, part: str):
    import keras

    import aezoo.models  # noqa: F401 - registers the custom layers

    return keras.saving.load_model(zoo / "models" / name / f"{part}.keras", safe_mode=True)


def test_reconstruct_writes_the_sheet_outputs_and_flags(zoo, tmp_path, capsys):
    out = tmp_path / "out"
    report = aezoo(zoo, "reconstruct", "dense16", str(zoo / "mine"), "--out", str(out), "--json")
    assert sorted(path.name for path in out.iterdir()) == [
        "inputs.npy",
        "outputs.npy",
        "results.json",
        "sheet.png",
    ]
    inputs, outputs = np.load(out / "inputs.npy"), np.load(out / "outputs.npy")
    assert inputs.shape == outputs.shape == (3, 28, 28)
    expected = load_part(zoo, "dense16", "autoencoder").predict(inputs[..., None], verbose=0)
    np.testing.assert_allclose(outputs, expected.reshape(3, 28, 28), atol=1e-6)
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "results.json").read_text()) | {"files": printed["files"]}
    threshold = report["ood_threshold"]
    assert threshold["mse"] == pytest.approx(float(np.quantile(VALIDATION, 0.99)))
    assert "validation_mse" in threshold["reference"] and "clean" in threshold["reference"]
    errors = np.mean((outputs - inputs) ** 2, axis=(1, 2))
    for image, error in zip(report["images"], errors, strict=True):
        assert image["mse"] == pytest.approx(float(error), rel=1e-5)
        assert image["out_of_distribution"] == (error > threshold["mse"])
    inks = [image["ink"] for image in report["images"]]
    assert inks == ["dark on light (inverted)", "light on dark", "dark on light (inverted)"]
    with Image.open(out / "sheet.png") as sheet:
        assert sheet.mode == "L" and sheet.width > sheet.height


def test_denoise_adds_the_training_noise_and_uses_its_threshold(zoo, tmp_path):
    out = tmp_path / "out"
    report = aezoo(zoo, "denoise", "conv_denoise", str(zoo / "mine" / "a.png"), "--out", str(out))
    seen = np.load(out / "inputs.npy")
    clean = aezoo(
        zoo,
        "reconstruct",
        "conv_denoise",
        str(zoo / "mine" / "a.png"),
        "--out",
        str(tmp_path / "clean"),
    )
    assert not np.allclose(seen, np.load(tmp_path / "clean" / "inputs.npy"), atol=0.05)
    assert report["ood_threshold"]["mse"] == pytest.approx(float(np.quantile(VALIDATION, 0.99)))
    # reconstruct on a denoiser compares with its clean-input validation errors
    assert "validation_mse_clean_input" in clean["ood_threshold"]["reference"]
    again = aezoo(
        zoo,
        "denoise",
        "conv_denoise",
        str(zoo / "mine" / "a.png"),
        "--out",
        str(tmp_path / "again"),
    )
    assert again["images"] == report["images"]  # the same seed, the same noise


def test_encode_generate_and_interpolate(zoo, tmp_path):
    report = aezoo(zoo, "encode", "vae2d", str(zoo / "mine"), "--out", str(tmp_path / "codes"))
    lines = (tmp_path / "codes" / "codes.csv").read_text().splitlines()
    assert lines[0] == "image,z0,z1" and len(lines) == 4
    inputs = np.load(tmp_path / "codes" / "inputs.npy")[..., None]
    mean = load_part(zoo, "vae2d", "encoder").predict(inputs, verbose=0)[0]
    np.testing.assert_allclose([image["code"] for image in report["images"]], mean, atol=1e-5)

    aezoo(zoo, "generate", "vae2d", "-n", "5", "--side", "4", "--out", str(tmp_path / "gen"))
    assert np.load(tmp_path / "gen" / "samples.npy").shape == (5, 28, 28)
    assert np.load(tmp_path / "gen" / "manifold.npy").shape == (4, 4, 28, 28)

    a, b = zoo / "mine" / "a.png", zoo / "mine" / "b.jpg"
    aezoo(
        zoo,
        "interpolate",
        "dense16",
        str(a),
        str(b),
        "--steps",
        "4",
        "--out",
        str(tmp_path / "line"),
    )
    line = np.load(tmp_path / "line" / "interpolation.npy")
    assert line.shape == (4, 28, 28)
    aezoo(zoo, "reconstruct", "dense16", str(a), str(b), "--out", str(tmp_path / "ends"))
    ends = np.load(tmp_path / "ends" / "outputs.npy")
    np.testing.assert_allclose(line[[0, -1]], ends, atol=1e-5)  # the ends decode A's and B's codes


def test_list_shows_every_variant_and_where_its_model_is(zoo, capsys):
    report = aezoo(zoo, "list")
    rows = {row["variant"]: row for row in report["variants"]}
    assert set(rows) == set(load_params(zoo / "params.yaml").variants)
    assert rows["dense16"]["model"] == str(zoo / "models" / "dense16")
    assert "make pull" in rows["conv"]["model"]
    assert "conv_denoise" in capsys.readouterr().out


def bad_inputs(zoo: Path, tmp: Path) -> dict[str, tuple[list[str], str]]:
    """Each bad input: the command line and what its one-line error must name."""
    (tmp / "notes.png").write_text("not an image at all")
    (tmp / "empty.png").write_bytes(b"")
    with open(tmp / "huge.png", "wb") as handle:
        handle.truncate(app.MAX_FILE_BYTES + 1)
    whole = (zoo / "mine" / "a.png").read_bytes()
    (tmp / "cut.png").write_bytes(whole[: len(whole) // 2])
    Image.new("L", (40, 40), 255).save(tmp / "blank.png")
    Image.new("L", (40, 40), 255).save(tmp / "anim.gif")
    (tmp / "nothing").mkdir()
    digit = str(zoo / "mine" / "a.png")
    return {
        "not an image": (
            ["reconstruct", "dense16", str(tmp / "notes.png")],
            "notes.png: not an image",
        ),
        "empty": (["reconstruct", "dense16", str(tmp / "empty.png")], "empty.png: empty file"),
        "huge file": (
            ["reconstruct", "dense16", str(tmp / "huge.png")],
            "huge.png: 20.0 MiB is over",
        ),
        "truncated": (
            ["reconstruct", "dense16", str(tmp / "cut.png")],
            "cut.png: unreadable image",
        ),
        "blank": (["reconstruct", "dense16", str(tmp / "blank.png")], "blank.png: no ink"),
        "gif": (["reconstruct", "dense16", str(tmp / "anim.gif")], "anim.gif: a GIF image"),
        "missing": (["reconstruct", "dense16", str(tmp / "gone.png")], "gone.png: no such file"),
        "empty dir": (["reconstruct", "dense16", str(tmp / "nothing")], "nothing: no PNG"),
        "unknown variant": (["reconstruct", "dense17", digit], "variants.dense17: no such variant"),
        "no model": (["reconstruct", "conv", digit], "conv: no trained conv here"),
        "not a VAE": (["generate", "dense16"], "generate needs a variational variant; dense16"),
        "not a denoiser": (["denoise", "dense16", digit], "denoise needs a denoising variant"),
        "wrong polarity forced": (
            ["interpolate", "dense16", digit, digit, "--ink", "light"],
            "a.png: no ink",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "not an image",
        "empty",
        "huge file",
        "truncated",
        "blank",
        "gif",
        "missing",
        "empty dir",
        "unknown variant",
        "no model",
        "not a VAE",
        "not a denoiser",
        "wrong polarity forced",
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(zoo, tmp_path, capsys, case):
    command, named = bad_inputs(zoo, tmp_path)[case]
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier.txt").write_text("a previous run's output")
    with pytest.raises(SystemExit) as stopped:
        aezoo(zoo, *command, "--out", str(out))
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("aezoo: error: ") and "\n" not in error and named in error, error
    assert [path.name for path in out.iterdir()] == ["earlier.txt"]  # untouched


def test_the_pixel_limit_is_checked_before_decoding(zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(app, "MAX_PIXELS", 100)
    with pytest.raises(SystemExit):
        aezoo(zoo, "reconstruct", "dense16", str(zoo / "mine" / "a.png"))
    assert "a.png: 160x120 is over the 0.0001 megapixel limit" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["reconstruct", "dense17", "x.png"], ["generate", "dense16"], ["nosuch"]],
)
def test_help_and_argument_errors_import_no_tensorflow(argv):
    """Answered before TensorFlow loads (its import alone takes seconds)."""
    probe = (
        "import sys\n"
        "from aezoo.command import run\n"
        "try:\n"
        f"    run({argv!r})\n"
        "except SystemExit as stop:\n"
        "    print('exit', stop.code)\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip().splitlines()[-1] == "False False", result.stdout + result.stderr
    assert "Traceback" not in result.stderr
