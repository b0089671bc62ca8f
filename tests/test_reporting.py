"""The compare stage on hand-written evaluate outputs: the table, PCA's wins and ties with
their intervals, one offline page that links its figures; and the offline template of
``dvc plots`` (vendor/vega). In a browser: tests/test_browser.py."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from configobj import ConfigObj
from conftest import ROOT
from PIL import Image

from aezoo.config import Params, load_params, parse_params
from aezoo.errors import DataError
from aezoo.io import write_arrays
from aezoo.reporting import frame_of, linked_image, pca_table, pca_wins, variant_row
from aezoo.stages import PER_IMAGE
from aezoo.stages.compare import compare

IMAGES = 10_000  # test images, as evaluate.json says
RESAMPLES = 200  # bootstrap resamples per interval: enough for the tests, and fast
VOID_ELEMENTS = {"meta", "img", "br", "hr", "link", "input", "source", "wbr", "area", "col"}


# ----------------------------------------------------------------- the inputs


def quality(mse: float, psnr: float, ssim: float = 0.8) -> dict:
    return {"mse": mse, "bce": 4 * mse + 0.05, "psnr_db": psnr, "ssim": ssim}


def metrics_record(mse: float, pca_mse: float, **extra) -> dict:
    """A metrics.json as the evaluate stage writes it: only the test figures."""
    record = {
        "reconstruction": quality(mse, 20.0),
        "code": {"probe_accuracy": 0.9, "mean_activation": 1.5, "near_zero_fraction": 0.1},
        "baselines": {"pca": {**quality(pca_mse, 19.0), "probe_accuracy": 0.85}},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(record.get(key), dict):
            record[key].update(value)
        else:
            record[key] = value
    return record


def train_facts(
    parameters: int, wall_seconds: float, epochs_run: int = 4, best_epoch: int = 2
) -> dict:
    """A train.json as the train stage writes it: run facts. By default the run was stopped
    early (4 of at most 5 epochs) and kept its 2nd epoch, so no two epoch counts agree."""
    return {
        "parameters": parameters,
        "max_epochs": 5,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "best_val_loss": 0.0251,
        "train_samples": 55000,
        "steps_per_epoch": 215,
        "jit_compile": False,
        "wall_seconds": wall_seconds,
        "samples_per_second": 3e4,
        "epoch_seconds": [wall_seconds / epochs_run] * epochs_run,
    }


def evaluate_facts(code_size: int, **extra) -> dict:
    """An evaluate.json: counts and the settings the baselines chose."""
    return {"test_images": 10000, "code_size": code_size, "pca_components": code_size, **extra}


# Per variant of params.yaml: (metrics.json, train.json, evaluate.json).
ZOO = {
    # PCA beats this one on MSE and on the probe: the summary must say so.
    "dense16": (
        metrics_record(0.0245, 0.0210, code={"probe_accuracy": 0.80}),
        train_facts(25888, 21.5),
        evaluate_facts(16),
    ),
    "conv": (  # trained every epoch and kept the last (no patience)
        metrics_record(0.0040, 0.0065),
        train_facts(4385, 12.5, epochs_run=5, best_epoch=5),
        evaluate_facts(128),
    ),
    "conv_denoise": (
        metrics_record(
            0.0100,
            0.0,
            corrupted_input=quality(0.1155, 9.38, 0.2),
            psnr_gain_db=10.62,
            baselines={
                "pca": {**quality(0.0, 300.0, 1.0), "probe_accuracy": 0.9},
                "pca_denoise": {**quality(0.1155, 9.38, 0.2), "probe_accuracy": 0.7},
                "gaussian_filter": quality(0.03, 15.3),
                "median_filter": quality(0.035, 14.9),
            },
        ),
        train_facts(28353, 40.0),
        {
            **evaluate_facts(1568),
            "pca_components": 784,
            "gaussian_filter_sigma": 1.0,
            "median_filter_size": 3,
        },
    ),
    "vae2d": (
        metrics_record(0.038, 0.056, vae={"neg_elbo": 140.2, "iwae_nll": 136.9}),
        train_facts(536_000, 80.0),
        evaluate_facts(2, iwae_samples=100),
    ),
    # PCA equals this one up to noise, on MSE and on the probe: a tie, not a win.
    "dense32": (
        metrics_record(
            0.0200,
            0.0200,
            code={"probe_accuracy": 0.88},
            baselines={"pca": {**quality(0.0200, 19.0), "probe_accuracy": 0.88}},
        ),
        train_facts(50_992, 25.0),
        evaluate_facts(32),
    ),
}
REPORTED = ("dense16", "conv", "conv_denoise", "vae2d")  # the shared report's variants


# ------------------------------------------------ evaluate's values per test image


def positive_values(mean: float, hardness: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-image values with exactly ``mean``: the images' shared ``hardness`` times a
    method's own noise (so two methods' values are correlated, as on real test images)."""
    values = hardness * rng.uniform(0.8, 1.2, len(hardness))
    return (values * (mean / values.mean())).astype(np.float32)


def correct_of(accuracy: float, ranking: np.ndarray) -> np.ndarray:
    """Which images a probe gets right: the easiest ``accuracy`` share by ``ranking``, so a
    more accurate probe gets right every image a less accurate one does."""
    return ranking < round(accuracy * len(ranking))


def equal_up_to_noise(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``values`` with symmetric noise: images in pairs, one raised by what the other loses
    (the mean stays, every value stays positive)."""
    first, second = rng.permutation(len(values)).reshape(2, -1)
    change = rng.uniform(-0.5, 0.5, len(first)) * np.minimum(values[first], values[second])
    noisy = values.astype(np.float64)
    noisy[first] += change
    noisy[second] -= change
    return noisy.astype(np.float32)


def per_image_arrays(metrics: dict, seed: int) -> dict[str, np.ndarray]:
    """evaluate's per-image values, consistent with ``metrics`` (a metrics.json): each mean
    is its figure there. PCA's figure equal to the autoencoder's means a tie: its per-image
    values are the autoencoder's with symmetric noise (and the same probe answers)."""
    rng = np.random.default_rng(seed)
    hardness = rng.gamma(2.0, 0.5, IMAGES)
    ranking = rng.permutation(IMAGES)
    baselines = metrics["baselines"]
    pca = baselines.get("pca_denoise", baselines["pca"])  # PCA on the autoencoder's task
    ours = metrics["reconstruction"]["mse"]
    arrays = {
        "autoencoder_mse": positive_values(ours, hardness, rng),
        "autoencoder_probe_correct": correct_of(metrics["code"]["probe_accuracy"], ranking),
        "pca_probe_correct": correct_of(pca["probe_accuracy"], ranking),
    }
    if pca["mse"] == ours:
        arrays["pca_mse"] = equal_up_to_noise(arrays["autoencoder_mse"], rng)
    else:
        arrays["pca_mse"] = positive_values(pca["mse"], hardness, rng)
    if "corrupted_input" in metrics:
        arrays["input_mse"] = positive_values(metrics["corrupted_input"]["mse"], hardness, rng)
        for name in ("gaussian_filter", "median_filter"):
            arrays[f"{name}_mse"] = positive_values(baselines[name]["mse"], hardness, rng)
    if "vae" in metrics:
        for key in ("neg_elbo", "iwae_nll"):
            arrays[key] = positive_values(metrics["vae"][key], 1 + 0.2 * hardness, rng)
    return arrays


def write_outputs(path: Path, metrics: dict, seed: int) -> None:
    """data/test_outputs/<variant>.npz: a figure array and the per-image values."""
    arrays = {PER_IMAGE + key: values for key, values in per_image_arrays(metrics, seed).items()}
    write_arrays(path, {"originals": np.zeros((3, 28, 28), np.uint8), **arrays})


def zoo_params(base_params: dict, names) -> Params:
    """params.yaml with only the variants ``names`` (and fewer bootstrap resamples)."""
    raw = copy.deepcopy(base_params)
    raw["variants"] = {name: raw["variants"][name] for name in names}
    raw["comparison"]["bootstrap_resamples"] = RESAMPLES
    return parse_params(raw)


def write_figures(directory: Path, seed: int) -> None:
    """Small real PNG and GIF files standing in for the render stage's figures."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True)
    for name in ("reconstructions.png", "loss.png", "code_map.png"):
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(directory / name)
    frames = [Image.fromarray(rng.integers(0, 255, (30, 50), dtype=np.uint8)) for _ in range(3)]
    frames[0].save(directory / "progress.gif", save_all=True, append_images=frames[1:])


def write_zoo(root: Path, names=REPORTED) -> tuple[Path, Path, Path]:
    """reports/variants/<v>/{metrics,train,evaluate}.json + figures, reports/corruptions and
    data/test_outputs/<v>.npz (the values per test image)."""
    variants, corruptions, outputs = root / "variants", root / "corruptions", root / "outputs"
    outputs.mkdir()
    for index, name in enumerate(names):
        directory = variants / name
        directory.mkdir(parents=True)
        for file, payload in zip(("metrics", "train", "evaluate"), ZOO[name], strict=True):
            (directory / f"{file}.json").write_text(json.dumps(payload))
        write_figures(directory / "figures", index)
        write_outputs(outputs / f"{name}.npz", ZOO[name][0], seed=index)
    corruptions.mkdir()
    stats = {
        "test_mse": 0.1155,
        "test_psnr_db": 9.38,
        "test_mean": 0.276,
        "clean_test_mean": 0.1325,
    }
    (corruptions / "gauss05.json").write_text(json.dumps(stats))
    return variants, corruptions, outputs


@pytest.fixture(scope="module")
def report(tmp_path_factory, base_params) -> Path:
    root = tmp_path_factory.mktemp("reports")
    variants, corruptions, outputs = write_zoo(root)
    compare(zoo_params(base_params, REPORTED), variants, root, corruptions, outputs)
    return root


# ------------------------------------------------------------------- the tests


EXPECTED_COLUMNS = [
    *("architecture", "objective", "input", "code_size", "parameters", "epochs", "best_epoch"),
    *("train_seconds", "samples_per_second", "test_images"),
    *("test_mse", "test_bce", "test_psnr_db", "test_ssim", "probe_accuracy"),
    *("neg_elbo", "iwae_nll", "iwae_samples", "pca_components", "pca_mse", "pca_bce"),
    *("pca_psnr_db", "pca_ssim", "pca_probe_accuracy", "input_psnr_db", "psnr_gain_db"),
    *("pca_denoise_psnr_db", "gaussian_filter_psnr_db", "median_filter_psnr_db"),
    *("gaussian_filter_sigma", "median_filter_size", "reference_mse", "reference_neg_elbo"),
]


def test_metrics_csv_has_one_row_per_variant_and_every_number(report):
    frame = pd.read_csv(report / "metrics.csv").set_index("variant")
    assert list(frame.index) == ["vae2d", "dense16", "conv", "conv_denoise"]  # clean first
    assert set(EXPECTED_COLUMNS) <= set(frame.columns), set(EXPECTED_COLUMNS) - set(frame)
    assert "family" not in frame.columns
    dense = frame.loc["dense16"]
    assert (dense["architecture"], dense["objective"], dense["code_size"]) == (
        "dense",
        "autoencoder",
        16,
    )
    assert dense["test_mse"] == pytest.approx(0.0245) and dense["pca_mse"] == pytest.approx(0.021)
    assert dense["train_seconds"] == pytest.approx(21.5)  # from train.json
    assert dense["parameters"] == 25888
    assert dense["epochs"] == 4 and dense["best_epoch"] == 2  # epochs run (not 5), kept epoch
    assert tuple(frame.loc["conv", ["epochs", "best_epoch"]]) == (5, 5)
    assert "max_epochs" not in frame.columns and "best_val_loss" not in frame.columns
    assert dense["reference_mse"] == pytest.approx(0.023)  # from params.yaml
    assert np.isnan(dense["neg_elbo"]) and np.isnan(dense["psnr_gain_db"])
    assert frame.loc["conv", "code_size"] == 128  # the conv's 4x4x8 feature map
    assert frame.loc["conv", "reference_bce"] == pytest.approx(0.094)
    vae2d = frame.loc["vae2d"]
    assert (vae2d["architecture"], vae2d["objective"]) == ("dense", "variational")
    assert vae2d["iwae_nll"] == pytest.approx(136.9) and vae2d["iwae_samples"] == 100
    denoiser = frame.loc["conv_denoise"]
    assert denoiser["gaussian_filter_sigma"] == 1.0 and denoiser["median_filter_size"] == 3
    assert denoiser["pca_components"] == 784 and denoiser["input"] == "gauss05"
    assert denoiser["psnr_gain_db"] == pytest.approx(10.62)


MSE_INTERVAL = r"\[[-+]0\.\d{4}, [-+]0\.\d{4}\]"  # a paired interval, as the report writes it
POINTS_INTERVAL = r"\[[-+]\d+\.\d\d, [-+]\d+\.\d\d\]"


def section_of(summary: str, title: str) -> str:
    return summary.split(f"## {title}\n")[1].split("\n## ")[0]


def test_summary_lists_where_pca_beats_the_autoencoder(report):
    summary = (report / "summary.md").read_text()
    assert "## Where PCA beats the autoencoder" not in summary
    section = section_of(summary, "Autoencoders against PCA")
    assert "PCA with the same code size wins or ties here:" in section
    assert re.search(
        r"- \*\*dense16\*\* \(reconstruction, code 16\): PCA test MSE 0\.0210 < autoencoder "
        r"0\.0245 \(difference \+0\.0035 \[\+0\.003\d, \+0\.003\d\]\)\n",
        section,
    )
    assert re.search(
        r"- \*\*dense16\*\* \(reconstruction, code 16\), linear digit probe on the code: PCA "
        r"85\.0% > autoencoder 80\.0% \(difference, points: -5\.00 \[-5\.\d\d, -4\.\d\d\]\)\n",
        section,
    )
    assert "ties with" not in section  # every other comparison is clear of zero
    assert "**conv**" not in section and "**vae2d**" not in section
    assert "conv_denoise) are overcomplete" in section
    # the PCA table: each variant with fewer than 784 PCA components, clean ones first
    table = [line for line in section.splitlines() if line.startswith("| ")]
    assert table[0] == (
        "| variant | code | autoencoder MSE | PCA MSE† | difference [95% CI] | MSE winner "
        "| autoencoder probe | PCA probe† | difference, points [95% CI] | probe winner |"
    )
    assert [line.split(" | ")[0] for line in table[1:]] == ["| vae2d", "| dense16", "| conv"]
    assert re.fullmatch(
        rf"\| dense16 \| 16 \| 0\.0245 \| 0\.0210 \| \+0\.0035 {MSE_INTERVAL} \| PCA \| "
        rf"80\.0% \| 85\.0% \| -5\.00 {POINTS_INTERVAL} \| PCA \|",
        table[2],
    )
    assert re.fullmatch(
        rf"\| conv \| 128 \| 0\.0040 \| 0\.0065 \| -0\.0025 {MSE_INTERVAL} \| autoencoder \| "
        rf"90\.0% \| 85\.0% \| \+5\.00 {POINTS_INTERVAL} \| autoencoder \|",
        table[3],
    )
    assert "| vae2d | 2 | 0.0380 | 0.0560 | -0.0180 [" in table[1]


def test_summary_tables_give_each_figure_with_its_interval(report):
    summary = (report / "summary.md").read_text()
    # the tables: a header row, an alignment row and one row per variant
    overview = summary.split("## All variants")[1].split("\n\n")[1].splitlines()
    assert overview[0].startswith(
        "| variant | network | objective | input | code | parameters | epochs run | kept epoch "
        "| train time | test MSE | test BCE | PSNR (dB) |"
    )
    assert len(overview) == 2 + 4
    assert "| dense16 | dense | autoencoder | clean | 16 | 25,888 | 4 | 2 | 22 s |" in overview[3]
    # test MSE and PSNR with half their 95% interval: 10,000 images, about 2 standard errors
    assert re.search(
        r"\| 22 s \| 0\.0245 ± 0\.000[2-5] \| 0\.1480 \| 20\.00 ± 0\.\d\d \|", overview[3]
    )
    conv = r"\| conv \| conv \| autoencoder \| clean \| 128 \| 4,385 \| 5 \| 5 \| 12 s \| "
    # a half-width below 0.0001 gets the decimals it needs: 0.00400 ± 0.00006
    assert re.search(conv + r"0\.0040\d* ± 0\.000\d+ \|", summary)
    assert "MSE 0.023" in overview[3]  # the seed's published figure
    assert "± is half the width of a 95% percentile-bootstrap interval" in summary
    denoisers = section_of(summary, "Denoisers")
    assert (
        denoisers.lstrip()
        .splitlines()[0]
        .endswith("| autoencoder | gain (dB) | autoencoder SSIM | vs best filter (dB) | verdict |")
    )
    # the Gaussian filter (15.30 dB) is the better one; the autoencoder beats it by ~4.77 dB
    assert re.search(
        r"\| conv_denoise \| gauss05 \| 9\.38 \| 15\.30 \(sigma 1\) \| 14\.90 \(size 3\) \| 9\.38 "
        r"\| 20\.00 ± 0\.\d\d \| 10\.62 \| 0\.800 "
        r"\| \+4\.7\d \[\+4\.\d\d, \+4\.\d\d\] \| autoencoder \|",
        denoisers,
    )
    assert "Every denoiser beats the best Gaussian and median filter" in denoisers
    assert "| gauss05 | gaussian | 0.1155 | 9.38 |" in summary  # corruption statistics
    assert re.search(
        r"\| vae2d \| clean \| 2 \| 140\.20 ± \d\.\d\d \| 136\.90 \| 100 \| — \|", summary
    )
    for link in re.findall(r"\]\((figures/[^)]+)\)", summary):
        assert (report / link).is_file(), link


def test_metrics_csv_has_the_intervals(report):
    frame = pd.read_csv(report / "metrics.csv").set_index("variant")
    for name in REPORTED:
        row = frame.loc[name]
        assert row["test_mse_low"] < row["test_mse"] < row["test_mse_high"], name
        assert row["test_mse_high"] - row["test_mse_low"] < 0.05 * row["test_mse"], name
        assert row["test_psnr_db_low"] < row["test_psnr_db_high"], name
    dense = frame.loc["dense16"]  # PCA wins: both paired intervals clear of zero
    assert dense["vs_pca_mse"] == pytest.approx(0.0035, abs=1e-6)
    assert 0 < dense["vs_pca_mse_low"] < dense["vs_pca_mse"] < dense["vs_pca_mse_high"]
    assert dense["vs_pca_probe"] == pytest.approx(-0.05)
    assert dense["vs_pca_probe_low"] < dense["vs_pca_probe_high"] < 0
    assert np.isnan(dense["neg_elbo_low"]) and np.isnan(dense["vs_gaussian_filter_psnr"])
    vae = frame.loc["vae2d"]
    assert vae["neg_elbo_low"] < 140.2 < vae["neg_elbo_high"]
    denoiser = frame.loc["conv_denoise"]  # against PCA projecting the corrupted input
    assert denoiser["vs_pca_mse"] == pytest.approx(0.0100 - 0.1155, abs=1e-6)
    assert denoiser["vs_gaussian_filter_psnr"] == pytest.approx(4.77, abs=0.05)
    assert denoiser["vs_median_filter_psnr_low"] > denoiser["vs_gaussian_filter_psnr_high"]


def test_a_pca_win_clear_of_zero_is_listed_as_a_win(report):
    frame = pd.read_csv(report / "metrics.csv")
    found = pca_wins(frame)
    assert [line.split(":")[0] for line in found] == [
        "**dense16** (reconstruction, code 16)",
        "**dense16** (reconstruction, code 16), linear digit probe on the code",
    ]
    assert " < autoencoder 0.0245 " in found[0] and " > autoencoder 80.0% " in found[1]
    table = pca_table(frame).set_index("variant")
    assert table.loc["dense16", "MSE winner"] == "PCA"
    assert table.loc["dense16", "probe winner"] == "PCA"
    assert set(table.loc[["vae2d", "conv"], "MSE winner"]) == {"autoencoder"}


def test_pca_equal_up_to_noise_is_a_tie_not_a_win(tmp_path, base_params):
    variants, corruptions, outputs = write_zoo(tmp_path, ["dense32"])
    compare(zoo_params(base_params, ["dense32"]), variants, tmp_path, corruptions, outputs)
    summary = (tmp_path / "summary.md").read_text()
    section = section_of(summary, "Autoencoders against PCA")
    assert "PCA with the same code size wins or ties here:" in section
    assert re.search(
        r"- \*\*dense32\*\* \(reconstruction, code 32\): PCA test MSE 0\.0200 ties with "
        rf"autoencoder 0\.0200 \(difference [-+]0\.0000 {MSE_INTERVAL}\)",
        section,
    )
    # the same probe answers: a difference of exactly zero, a zero-width interval
    assert (
        "- **dense32** (reconstruction, code 32), linear digit probe on the code: PCA 88.0% "
        "ties with autoencoder 88.0% (difference, points: +0.00 [+0.00, +0.00])"
    ) in section
    assert " < autoencoder" not in section and " > autoencoder" not in section
    assert "| tie | 88.0% | 88.0% | +0.00 [+0.00, +0.00] | tie |" in section
    assert "Nowhere" not in section
    row = pd.read_csv(tmp_path / "metrics.csv").iloc[0]
    assert row["vs_pca_mse_low"] < 0 < row["vs_pca_mse_high"]
    assert row["vs_pca_probe_low"] == row["vs_pca_probe_high"] == 0


def test_summary_says_so_when_pca_never_wins(tmp_path, base_params):
    variants, corruptions, outputs = write_zoo(tmp_path, ["conv"])
    compare(zoo_params(base_params, ["conv"]), variants, tmp_path, corruptions, outputs)
    summary = (tmp_path / "summary.md").read_text()
    assert "Nowhere: every autoencoder beats PCA" in summary
    assert "wins or ties here" not in summary
    assert "## Variational autoencoders" not in summary and "## Denoisers" not in summary
    assert not (tmp_path / "figures" / "denoising_psnr.png").exists()  # no denoiser, no chart


def test_comparison_charts_are_real_images(report):
    charts = sorted(path.name for path in (report / "figures").iterdir())
    assert charts == ["ae_vs_pca.png", "denoising_psnr.png", "mse_vs_code_size.png"]
    for name in charts:
        with Image.open(report / "figures" / name) as image:
            image.load()
            assert image.format == "PNG" and image.width >= 600 and image.height >= 250


def test_a_row_comes_from_the_config_the_metrics_and_the_facts(base_params, tmp_path):
    params = zoo_params(base_params, ["conv_vae"])
    spec = params.variant("conv_vae")
    metrics = metrics_record(0.03, 0.05, vae={"neg_elbo": 150.0, "iwae_nll": 145.0})
    row = variant_row(
        "conv_vae",
        spec,
        metrics,
        train_facts(134_165, 100.0),
        evaluate_facts(2, iwae_samples=50),
        tmp_path / "metrics.json",
    )
    assert row["architecture"] == "strided_conv" and row["objective"] == "variational"
    assert row["parameters"] == 134_165 and row["iwae_samples"] == 50
    assert (row["epochs"], row["best_epoch"]) == (4, 2)  # train.json's epochs_run, best_epoch
    assert row["neg_elbo"] == 150.0 and row["train_seconds"] == 100.0
    assert row["gaussian_filter_sigma"] is None
    frame = frame_of([row])
    assert frame.loc[0, "code_size"] == 2 and frame.loc[0, "variant"] == "conv_vae"

    del metrics["reconstruction"]["mse"]
    with pytest.raises(DataError, match=r"metrics\.json: missing reconstruction\.mse \(run "):
        variant_row("conv_vae", spec, metrics, {}, {}, tmp_path / "metrics.json")


class PageParser(HTMLParser):
    """Collects tags, attributes and nesting errors of an HTML page."""

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID_ELEMENTS:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def parse_page(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def test_index_html_is_one_page_that_links_its_figures(report):
    text = (report / "index.html").read_text(encoding="utf-8")
    assert text.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert "http://" not in text and "https://" not in text and "data:" not in text
    page = parse_page(report / "index.html")
    assert page.errors == [] and page.stack == []
    names = [tag for tag, _ in page.tags]
    assert "script" not in names and "link" not in names and "iframe" not in names
    assert names.count("title") == 1 and names.count("h1") == 1
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    assert len(images) == 3 + 4 * 4  # the charts and every variant's four figures
    for attrs in images:  # relative paths to the files beside the page, with their sizes
        assert re.match(r"(figures|variants/[a-z0-9_]+/figures)/[a-z_]+\.(png|gif)$", attrs["src"])
        with Image.open(report / attrs["src"]) as image:
            assert (attrs["width"], attrs["height"]) == (str(image.width), str(image.height))
        assert attrs["alt"].strip()
    sources = [attrs["src"] for attrs in images]
    assert len(set(sources)) == len(sources)
    assert "variants/conv/figures/progress.gif" in sources
    for tag, attrs in page.tags:  # links stay inside the page
        assert not attrs.get("href") or attrs["href"].startswith("#"), (tag, attrs)
    ids = [attrs["id"] for _, attrs in page.tags if "id" in attrs]
    assert len(ids) == len(set(ids))
    assert "PCA test MSE 0.0210 &lt; autoencoder 0.0245 (difference +0.0035 [" in text
    assert "<h2>Autoencoders against PCA</h2>" in text
    assert "<strong>dense16</strong> (reconstruction, code 16)" in text


def test_index_html_links_figures_wherever_it_is_written(report, tmp_path):
    """Relative to the page's own directory, with odd file names escaped."""
    odd = tmp_path / "elsewhere" / "a figure #1.png"
    odd.parent.mkdir()
    shutil.copy2(report / "variants" / "conv" / "figures" / "loss.png", odd)
    page_dir = tmp_path / "site" / "report"
    assert linked_image(odd, page_dir, "x").startswith(
        '<img src="../../elsewhere/a%20figure%20%231.png" width="60" height="40"'
    )
    with pytest.raises(DataError, match=r"missing\.png: cannot read the figure"):
        linked_image(tmp_path / "missing.png", page_dir, "x")
    with pytest.raises(DataError, match=r"notes\.txt: not a figure the page shows"):
        linked_image(tmp_path / "notes.txt", page_dir, "x")


def test_missing_metrics_is_named(tmp_path, base_params):
    variants, corruptions, outputs = write_zoo(tmp_path, ["conv"])
    (variants / "dense16").mkdir()
    (variants / "dense16" / "train.json").write_text(json.dumps(ZOO["dense16"][1]))
    params = zoo_params(base_params, ["conv", "dense16"])
    with pytest.raises(DataError, match=r"dense16/metrics\.json: no such file \(run the evaluate@"):
        compare(params, variants, tmp_path / "out", corruptions, outputs)
    assert not (tmp_path / "out").exists()


def test_missing_train_facts_are_named(tmp_path, base_params):
    variants, corruptions, outputs = write_zoo(tmp_path, ["conv"])
    (variants / "conv" / "train.json").unlink()
    with pytest.raises(DataError, match=r"conv/train\.json: no such file \(run the train@conv"):
        compare(zoo_params(base_params, ["conv"]), variants, tmp_path / "out", corruptions, outputs)


def test_missing_per_image_values_are_named(tmp_path, base_params):
    variants, corruptions, outputs = write_zoo(tmp_path, ["conv"])
    (outputs / "conv.npz").unlink()
    params = zoo_params(base_params, ["conv"])
    with pytest.raises(
        DataError, match=r"outputs/conv\.npz: no such file \(run the evaluate@conv stage first\)"
    ):
        compare(params, variants, tmp_path / "out", corruptions, outputs)
    assert not (tmp_path / "out").exists()

    write_arrays(outputs / "conv.npz", {"originals": np.zeros((3, 28, 28), np.uint8)})
    with pytest.raises(
        DataError,
        match=r"conv\.npz: missing the arrays per_image\.autoencoder_mse \(run the evaluate@conv ",
    ):
        compare(params, variants, tmp_path / "out", corruptions, outputs)


def test_missing_corruption_statistics_are_named(tmp_path, base_params):
    variants, corruptions, outputs = write_zoo(tmp_path, ["conv_denoise"])
    (corruptions / "gauss05.json").unlink()
    params = zoo_params(base_params, ["conv_denoise"])
    with pytest.raises(DataError, match=r"gauss05\.json: no such file \(run the corrupt@gauss05"):
        compare(params, variants, tmp_path, corruptions, outputs)


def test_no_variants_to_compare_is_an_error(tmp_path, base_params):
    variants, corruptions, outputs = write_zoo(tmp_path, [])
    with pytest.raises(DataError, match="no variants to compare"):
        compare(zoo_params(base_params, []), variants, tmp_path / "out", corruptions, outputs)


def test_empty_variants_directory_fails_cleanly_from_the_command_line(tmp_path):
    (tmp_path / "variants").mkdir()
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "pipeline" / "compare.py"),
            "--params",
            str(ROOT / "params.yaml"),
            "--variants",
            str(tmp_path / "variants"),
            "--corruptions",
            str(tmp_path / "corruptions"),
            "--outputs",
            str(tmp_path / "outputs"),
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    first = next(iter(load_params(ROOT / "params.yaml").variants))
    assert f"variants/{first}/metrics.json: no such file (run the evaluate@{first}" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------- dvc plots' offline page

VENDOR = ROOT / "vendor" / "vega"


def test_dvc_plots_use_the_vendored_template():
    """``plots.html_template`` (resolved from ``.dvc/``, as DVC does) is the vendored page."""
    config = ConfigObj(str(ROOT / ".dvc" / "config"))
    template = Path(config["plots"]["html_template"])
    assert not template.is_absolute()
    assert (ROOT / ".dvc" / template).resolve() == VENDOR / "plots.html"


def test_the_plots_template_inlines_the_npm_builds_of_its_manifest():
    """Each library exactly as npm ships it (the manifest's SHA-256), its licence beside it,
    nothing loaded from elsewhere, and only the placeholders DVC fills for us: with DVC's
    ``{scripts}`` the page would load Vega from a CDN again."""
    page = (VENDOR / "plots.html").read_text(encoding="utf-8")
    manifest = json.loads((VENDOR / "manifest.json").read_text())
    inlined = dict(re.findall(r'<script data-package="([^"]+)">\n(.*?)\n</script>', page, re.S))
    assert set(inlined) == {f"{name}@{entry['version']}" for name, entry in manifest.items()}
    for name, entry in manifest.items():
        code = inlined[f"{name}@{entry['version']}"].encode("utf-8")
        assert hashlib.sha256(code).hexdigest() == entry["sha256"], name
        assert "Redistribution and use" in (VENDOR / f"LICENSE-{name}").read_text()
    markup = re.sub(r"<script data-package=.*?</script>", "", page, flags=re.S)
    assert "<script" not in markup and not re.search(r"<[^>]+(src|href)=", markup)
    assert "{plot_divs}" in markup and "{refresh_tag}" in markup and "{scripts}" not in markup
