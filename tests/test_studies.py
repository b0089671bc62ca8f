"""The studies' tables and chart, from synthetic per-image scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from aezoo.config import ComparisonConfig
from aezoo.studies import (
    AUTOENCODER,
    METHOD_NAMES,
    denoising_chart,
    denoising_frame,
    denoising_markdown,
    denoising_verdicts,
    frontier_chart,
    frontier_frame,
    frontier_markdown,
    frontier_verdicts,
    seeds_frame,
    seeds_markdown,
)

CONFIG = ComparisonConfig(bootstrap_resamples=500, confidence_level=0.95, seed=0)
IMAGES = 2000
MODELS = ("dense", "deep")


def errors(mean: float, seed: int, shared: np.ndarray | None = None) -> np.ndarray:
    """Positive per-image errors with exactly ``mean``; ``shared`` difficulty if given."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 0.5, IMAGES) if shared is None else shared
    values = base * rng.uniform(0.9, 1.1, IMAGES)
    return values * (mean / values.mean())


def symmetric_noise(scale: float, seed: int) -> np.ndarray:
    half = np.random.default_rng(seed).normal(0, scale, IMAGES // 2)
    return np.random.default_rng(seed + 1).permutation(np.concatenate([half, -half]))


def frontier_inputs() -> tuple[dict, dict]:
    """At code 2 PCA wins, at 16 the deep autoencoder beats it, at 64 the dense one ties."""
    hard = np.random.default_rng(100).gamma(2.0, 0.5, IMAGES)  # every method's hard images
    mse = {
        ("dense", 2): errors(0.055, 1, hard),
        ("deep", 2): errors(0.050, 2, hard),
        ("dense", 16): errors(0.020, 3, hard),
        ("deep", 16): errors(0.015, 4, hard),
        ("dense", 64): errors(0.008, 5, hard),
        ("deep", 64): errors(0.010, 6, hard),
    }
    pca = {
        2: errors(0.045, 7, hard),
        16: errors(0.025, 8, hard),
        64: mse["dense", 64] + symmetric_noise(0.0005, 9),
    }
    return mse, pca


@pytest.fixture(scope="module")
def frontier():
    mse, pca = frontier_inputs()
    frame = frontier_frame(mse, pca, CONFIG)
    return mse, pca, frame, frontier_verdicts(frame)


# ------------------------------------------------------------------- frontier


def test_frontier_frame_has_every_model_and_pca_at_every_size(frontier):
    mse, pca, frame, _ = frontier
    assert len(frame) == len(mse) + len(pca)
    assert list(frame["code_size"]) == [2, 2, 2, 16, 16, 16, 64, 64, 64]
    assert list(frame["model"][:3]) == ["PCA", "deep", "dense"]  # by size, then name
    for _, row in frame.iterrows():
        values = (
            pca[row["code_size"]] if row["model"] == "PCA" else mse[row["model"], row["code_size"]]
        )
        assert row["mse"] == pytest.approx(values.mean())
        assert row["mse_low"] < row["mse"] < row["mse_high"]


def test_frontier_marks_the_best_autoencoder_at_each_size(frontier):
    mse, pca, frame, _ = frontier
    best = frame[frame["best_at_size"]].set_index("code_size")["model"]
    assert best.to_dict() == {2: "deep", 16: "deep", 64: "dense"}
    assert not frame.loc[frame["model"] == "PCA", "best_at_size"].any()
    assert frame.loc[~frame["best_at_size"], "vs_pca"].isna().all()
    row = frame[frame["best_at_size"] & (frame["code_size"] == 16)].iloc[0]
    assert row["vs_pca"] == pytest.approx(mse["deep", 16].mean() - pca[16].mean())
    assert row["vs_pca"] == pytest.approx(-0.010)
    assert row["vs_pca_low"] < row["vs_pca"] < row["vs_pca_high"] < 0


def test_frontier_verdicts_name_the_winner_at_each_size(frontier):
    _, _, _, verdicts = frontier
    verdicts = verdicts.set_index("code_size")
    assert list(verdicts.index) == [2, 16, 64]
    assert verdicts["winner"].to_dict() == {2: "PCA", 16: "autoencoder", 64: "tie"}
    assert verdicts["best_model"].to_dict() == {2: "deep", 16: "deep", 64: "dense"}
    assert verdicts.loc[16, "best_mse"] == pytest.approx(0.015)
    assert verdicts.loc[16, "pca_mse"] == pytest.approx(0.025)
    assert verdicts.loc[16, "relative"] == pytest.approx(-0.010 / 0.025)
    assert verdicts.loc[2, "difference"] == pytest.approx(0.005)
    assert verdicts.loc[2, "low"] > 0
    assert verdicts.loc[64, "low"] < 0 < verdicts.loc[64, "high"]
    assert verdicts.loc[64, "difference"] == pytest.approx(0.0, abs=1e-12)


def test_frontier_markdown_lists_where_pca_wins_or_ties(frontier):
    _, _, frame, verdicts = frontier
    text = frontier_markdown(frame, verdicts, MODELS, 2000)
    assert text.startswith("# Code-size frontier: test MSE against code size\n")
    assert "![test MSE against code size](frontier.png)" in text
    assert "| code | dense | deep | PCA |" in text
    found = [line for line in text.splitlines() if line.startswith("PCA wins or ties")]
    assert found == ["PCA wins or ties at code sizes 2 (PCA), 64 (tie)."]
    assert "beats PCA at every code size" not in text
    row_16 = next(line for line in text.splitlines() if line.startswith("| 16 | 0.0"))
    cells = row_16.strip("|").split("|")
    assert cells[2].strip().startswith("**0.01500 ± ") and cells[2].strip().endswith("**")
    assert not cells[1].strip().startswith("**") and cells[3].strip().startswith("0.02500 ± ")
    verdict_16 = next(line for line in text.splitlines() if line.startswith("| 16 | deep |"))
    assert "| 0.01500 | 0.02500 | -0.01000 [" in verdict_16
    assert verdict_16.endswith("| -40.0% | autoencoder |")


def test_frontier_markdown_says_when_the_autoencoder_always_wins():
    mse, pca = frontier_inputs()
    mse = {key: values for key, values in mse.items() if key[1] == 16}
    frame = frontier_frame(mse, {16: pca[16]}, CONFIG)
    text = frontier_markdown(frame, frontier_verdicts(frame), MODELS, 2000)
    assert "The best autoencoder beats PCA at every code size, outside the 95% interval." in text
    assert "PCA wins or ties" not in text


def test_a_model_missing_at_a_size_shows_a_dash():
    mse, pca = frontier_inputs()
    del mse["dense", 2]
    frame = frontier_frame(mse, pca, CONFIG)
    text = frontier_markdown(frame, frontier_verdicts(frame), MODELS, 2000)
    row_2 = next(line for line in text.splitlines() if line.startswith("| 2 | "))
    assert row_2.split("|")[2].strip() == "—"


def test_frontier_is_deterministic():
    mse, pca = frontier_inputs()
    pd.testing.assert_frame_equal(
        frontier_frame(mse, pca, CONFIG), frontier_frame(mse, pca, CONFIG)
    )


def test_frontier_chart_draws_each_model_and_pca(frontier):
    _, _, frame, _ = frontier
    figure = frontier_chart(frame, MODELS, 2000)
    assert isinstance(figure, Figure)
    (axes,) = figure.axes
    lines = axes.get_lines()
    assert [line.get_label() for line in lines] == ["dense", "deep", "PCA"]
    assert list(lines[1].get_xdata()) == [2, 16, 64]
    assert list(lines[1].get_ydata()) == pytest.approx([0.050, 0.015, 0.010])
    assert lines[2].get_linestyle() == "--"
    assert [label.get_text() for label in axes.get_xticklabels()] == ["2", "16", "64"]
    assert list(axes.get_xticks()) == [2, 16, 64]
    assert axes.get_xscale() == "log" and axes.get_yscale() == "log"


# ---------------------------------------------------------------------- seeds


def seed_runs() -> tuple[dict, dict]:
    runs = {
        ("dense16", 3): errors(0.0250, 13),
        ("dense16", 1): errors(0.0240, 11),
        ("dense16", 2): errors(0.0245, 12),
        ("vae", 1): errors(140.0, 21),
        ("vae", 2): errors(141.5, 22),
    }
    return runs, {"dense16": "mse", "vae": "neg_elbo"}


def test_seeds_frame_has_the_spread_across_seeds():
    runs, figures = seed_runs()
    frame = seeds_frame(runs, figures, CONFIG).set_index("variant")
    assert list(frame.index) == ["dense16", "vae"]
    dense = frame.loc["dense16"]
    assert dense["seeds"] == [1, 2, 3] and dense["figure"] == "mse"
    means = np.array([runs["dense16", seed].mean() for seed in (1, 2, 3)])
    assert dense["values"] == pytest.approx(means.tolist())
    assert dense["mean"] == pytest.approx(means.mean())
    assert dense["std"] == pytest.approx(np.std(means, ddof=1))
    assert dense["range"] == pytest.approx(0.0010)
    standard_errors = [runs["dense16", s].std(ddof=1) / np.sqrt(IMAGES) for s in (1, 2, 3)]
    assert dense["test_half_width"] == pytest.approx(1.96 * np.mean(standard_errors), rel=0.2)
    vae = frame.loc["vae"]
    assert vae["std"] == pytest.approx(np.std([140.0, 141.5], ddof=1))
    assert vae["mean"] == pytest.approx(140.75)


def test_one_seed_has_no_spread():
    frame = seeds_frame({("dense16", 1): errors(0.025, 1)}, {"dense16": "mse"}, CONFIG)
    assert np.isnan(frame.loc[0, "std"]) and frame.loc[0, "range"] == 0


def test_seeds_markdown_has_one_row_per_variant():
    runs, figures = seed_runs()
    text = seeds_markdown(seeds_frame(runs, figures, CONFIG))
    assert text.startswith("# Seed study: ")
    lines = text.splitlines()
    header = lines.index("| variant | figure | per seed | mean | spread (std) | range | test ± |")
    rows = [line for line in lines[header + 2 :] if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows] == ["dense16", "vae"]
    assert rows[0].startswith("| dense16 | test MSE | 1: 0.0240, 2: 0.0245, 3: 0.0250 | 0.0245 | ")
    assert rows[1].startswith("| vae | test -ELBO (nats) | 1: 140.00, 2: 141.50 | 140.75 | 1.061 |")


# ------------------------------------------------------------------ denoising

SUBSET, FULL = 300, 2000  # the fixed test subset, every test image
STDS = (0.1, 0.5, 1.0)
CLASSICAL = ("noisy", "gaussian_filter", "median_filter", "pca", "nl_means", "bm3d")
DENOISING_MODELS = ("conv", "pca_dense")
DENOISING_METHODS = [*CLASSICAL, *DENOISING_MODELS, AUTOENCODER]
BEST_MODELS = {0.1: "conv", 0.5: "pca_dense", 1.0: "conv"}
# each classical method's PSNR above (below) BM3D's, in dB, on every image alike
CLASSICAL_OFFSETS = {"noisy": -10.0, "gaussian_filter": -3.0, "median_filter": -3.5}
CLASSICAL_OFFSETS |= {"pca": -2.0, "nl_means": -1.5}


def per_image_psnr(size: int, seed: int, mean: float) -> np.ndarray:
    """``size`` per-image PSNRs in dB with exactly ``mean``, spread like real images'."""
    values = np.random.default_rng(seed).normal(0, 3.0, size)
    return values - values.mean() + mean


def symmetric_jitter(scale: float, seed: int) -> np.ndarray:
    """``SUBSET`` values of mean exactly 0: each drawn value and its negative."""
    half = np.random.default_rng(seed).normal(0, scale, SUBSET // 2)
    return np.random.default_rng(seed + 1).permutation(np.concatenate([half, -half]))


def denoising_inputs() -> tuple[dict, dict]:
    """Per-image PSNR by (std, method) on the subset, and the autoencoder's on every test
    image. Against BM3D the autoencoder wins at std 0.1, ties at 0.5 (BM3D's values plus
    symmetric noise) and loses at 1.0."""
    psnr, full = {}, {}
    for index, std in enumerate(STDS):
        bm3d = per_image_psnr(SUBSET, index, 30.0 - 10 * std)
        for method, offset in CLASSICAL_OFFSETS.items():
            psnr[std, method] = bm3d + offset
        psnr[std, "bm3d"] = bm3d
        jitter = np.random.default_rng(10 + index).normal(0, 0.3, SUBSET)
        jitter -= jitter.mean()  # the autoencoder exactly 1 dB above or below BM3D
        ours = {
            0.1: bm3d + 1.0 + jitter,
            0.5: bm3d + symmetric_jitter(0.3, 20),
            1.0: bm3d - 1.0 + jitter,
        }[std]
        for model in DENOISING_MODELS:  # the other model 0.5 dB below the best
            psnr[std, model] = ours if model == BEST_MODELS[std] else ours - 0.5
        psnr[std, AUTOENCODER] = ours
        full[std, AUTOENCODER] = per_image_psnr(FULL, 30 + index, float(ours.mean()) + 0.1)
    return psnr, full


SETTINGS = {
    std: {
        "gaussian_filter": f"sigma {1 + std:g}",
        "median_filter": "size 3",
        "pca": "components 64",
        "nl_means": "h / std 0.8",
        "bm3d": "sigma / std 1",
    }
    for std in STDS
}


@pytest.fixture(scope="module")
def denoising():
    psnr, full = denoising_inputs()
    frame = denoising_frame(psnr, CONFIG)
    return psnr, full, frame, denoising_verdicts(psnr, full, BEST_MODELS, CONFIG)


def test_denoising_frame_has_one_row_per_level_and_method(denoising):
    psnr, _, frame, _ = denoising
    assert len(frame) == len(STDS) * len(DENOISING_METHODS) == len(psnr)
    assert list(frame["noise_std"]) == [std for std in STDS for _ in DENOISING_METHODS]
    assert list(frame["method"]) == DENOISING_METHODS * len(STDS)
    for _, row in frame.iterrows():
        values = psnr[row["noise_std"], row["method"]]
        assert row["psnr_db"] == pytest.approx(values.mean())
        assert row["low"] < row["psnr_db"] < row["high"]
        # 300 images of spread 3 dB: about 1.96 * 3 / sqrt(300) either side
        assert (row["high"] - row["low"]) / 2 == pytest.approx(1.96 * 3 / np.sqrt(SUBSET), rel=0.2)


def test_denoising_frame_sorts_by_noise_level_keeping_the_methods_order():
    psnr, _ = denoising_inputs()
    backwards = dict(reversed(list(psnr.items())))
    frame = denoising_frame(backwards, CONFIG)
    assert list(frame["noise_std"]) == [std for std in STDS for _ in DENOISING_METHODS]
    assert list(frame["method"][: len(DENOISING_METHODS)]) == DENOISING_METHODS[::-1]


def test_denoising_verdicts_against_bm3d_at_each_level(denoising):
    psnr, _, _, verdicts = denoising
    verdicts = verdicts.set_index("noise_std")
    assert list(verdicts.index) == list(STDS)
    assert verdicts["winner"].to_dict() == {0.1: "autoencoder", 0.5: "tie", 1.0: "bm3d"}
    assert verdicts["model"].to_dict() == BEST_MODELS
    assert set(verdicts["rival"]) == {"bm3d"}
    for std in STDS:
        expected = psnr[std, AUTOENCODER].mean() - psnr[std, "bm3d"].mean()
        assert verdicts.loc[std, "difference"] == pytest.approx(expected)
    assert verdicts.loc[0.1, "difference"] == pytest.approx(1.0)
    assert verdicts.loc[1.0, "difference"] == pytest.approx(-1.0)
    assert 0 < verdicts.loc[0.1, "low"] < verdicts.loc[0.1, "high"]
    assert verdicts.loc[0.5, "difference"] == pytest.approx(0.0, abs=1e-9)
    assert verdicts.loc[0.5, "low"] < 0 < verdicts.loc[0.5, "high"]
    assert verdicts.loc[1.0, "low"] < verdicts.loc[1.0, "high"] < 0


def test_denoising_verdicts_say_what_the_subset_costs(denoising):
    _, full, _, verdicts = denoising
    for _, row in verdicts.iterrows():
        std = row["noise_std"]
        assert (row["subset_images"], row["full_images"]) == (SUBSET, FULL)
        assert row["full_psnr_db"] == pytest.approx(full[std, AUTOENCODER].mean())
        # the same spread over more images: a narrower interval, by about sqrt(300 / 2000)
        assert 0 < row["full_half_width"] < row["subset_half_width"]
        ratio = row["full_half_width"] / row["subset_half_width"]
        assert ratio == pytest.approx(np.sqrt(SUBSET / FULL), rel=0.25), std


def test_denoising_verdicts_take_any_rival():
    psnr, full = denoising_inputs()
    verdicts = denoising_verdicts(psnr, full, BEST_MODELS, CONFIG, rival="nl_means")
    assert set(verdicts["rival"]) == {"nl_means"}
    assert list(verdicts["winner"]) == ["autoencoder"] * 3  # NL-means is 1.5 dB below BM3D


def test_denoising_markdown_names_every_method_and_where_bm3d_wins_or_ties(denoising):
    _, _, frame, verdicts = denoising
    text = denoising_markdown(frame, verdicts, SETTINGS, DENOISING_METHODS)
    assert text.startswith("# Denoising frontier: PSNR against the level of Gaussian noise\n")
    assert "![PSNR against noise level](denoising.png)" in text
    header = "| noise std | " + " | ".join(
        METHOD_NAMES.get(method, method) for method in DENOISING_METHODS
    )
    assert header + " |" in text
    for name in ("noisy input (clipped)", "Gaussian filter", "NL-means", "BM3D", "conv"):
        assert name in header
    assert f"fixed subset of {SUBSET:,} test images" in text
    found = [line for line in text.splitlines() if line.startswith("BM3D wins or ties")]
    assert found == ["BM3D wins or ties at noise std 0.5 (tie), 1 (bm3d)."]
    assert "beats BM3D at every noise level" not in text

    lines = text.splitlines()
    levels = [line for line in lines if line.startswith("| 0.1 | ") and "±" in line]
    assert len(levels) == 1
    cells = [cell.strip() for cell in levels[0].strip("|").split("|")]
    assert len(cells) == 1 + len(DENOISING_METHODS)
    # the best of the methods (not the noisy input) is bold: at 0.1 conv, the autoencoder
    by_method = dict(zip(DENOISING_METHODS, cells[1:], strict=True))
    assert by_method["conv"].startswith("**") and by_method["conv"].endswith("**")
    assert not by_method["bm3d"].startswith("**") and not by_method["noisy"].startswith("**")
    at_1 = next(line for line in lines if line.startswith("| 1 | ") and "±" in line)
    by_method = dict(zip(DENOISING_METHODS, at_1.strip("|").split("|")[1:], strict=True))
    assert by_method["bm3d"].strip().startswith("**")

    verdict_rows = [line for line in lines if line.startswith(("| 0.1 | conv", "| 0.5 | pca"))]
    assert len(verdict_rows) == 2
    assert "| autoencoder | " in verdict_rows[0] and "| tie | " in verdict_rows[1]
    assert f"PSNR on all {FULL:,}" in text
    settings = text.split("## Settings chosen on validation")[1]
    assert "| 0.5 | sigma 1.5 | size 3 | components 64 | h / std 0.8 | sigma / std 1 |" in settings


def test_denoising_markdown_says_when_the_autoencoder_always_wins():
    psnr, full = denoising_inputs()
    psnr = {key: values for key, values in psnr.items() if key[0] == 0.1}
    full = {key: values for key, values in full.items() if key[0] == 0.1}
    frame = denoising_frame(psnr, CONFIG)
    verdicts = denoising_verdicts(psnr, full, BEST_MODELS, CONFIG)
    text = denoising_markdown(frame, verdicts, {0.1: SETTINGS[0.1]}, DENOISING_METHODS)
    assert "The autoencoder beats BM3D at every noise level, outside the 95% interval." in text
    assert "BM3D wins or ties" not in text


def test_denoising_is_deterministic():
    psnr, full = denoising_inputs()
    pd.testing.assert_frame_equal(denoising_frame(psnr, CONFIG), denoising_frame(psnr, CONFIG))
    pd.testing.assert_frame_equal(
        denoising_verdicts(psnr, full, BEST_MODELS, CONFIG),
        denoising_verdicts(psnr, full, BEST_MODELS, CONFIG),
    )


def test_denoising_chart_draws_each_method_but_the_autoencoder_stand_in(denoising):
    psnr, _, frame, _ = denoising
    figure = denoising_chart(frame, DENOISING_METHODS, SUBSET)
    assert isinstance(figure, Figure)
    (axes,) = figure.axes
    lines = axes.get_lines()
    assert len(lines) == len(DENOISING_METHODS) - 1
    assert [line.get_label() for line in lines] == [
        "noisy input (clipped)",
        "Gaussian filter",
        "median filter",
        "PCA projection",
        "NL-means",
        "BM3D",
        "conv autoencoder",
        "pca_dense autoencoder",
    ]
    bm3d = lines[CLASSICAL.index("bm3d")]
    assert list(bm3d.get_xdata()) == list(STDS)
    assert list(bm3d.get_ydata()) == pytest.approx([psnr[std, "bm3d"].mean() for std in STDS])
    assert lines[0].get_linestyle() == ":"  # the noisy input, dotted
    assert lines[-1].get_linewidth() > lines[1].get_linewidth()  # the autoencoders bold
    assert [label.get_text() for label in axes.get_xticklabels()] == ["0.1", "0.5", "1"]
    assert f"{SUBSET:,} test images" in axes.get_title()
