"""The studies' tables and chart, from synthetic per-image scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from aezoo.config import ComparisonConfig
from aezoo.studies import (
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
