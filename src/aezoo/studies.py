"""The studies' findings: trials' per-image scores in, tables and charts out.

- The **seed study** retrains some variants with other seeds: the spread of their test
  figure from run to run, beside the test set's own sampling uncertainty.
- The **frontier study** trains each model at every code size: test MSE against code size
  beside PCA, with the best autoencoder's paired difference from PCA at each size.
- The **denoising study** trains an autoencoder at each level of Gaussian noise: PSNR against
  the noise level beside classical denoisers, on one fixed test subset for every method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator

from aezoo.config import ComparisonConfig
from aezoo.statistics import Interval, mean_interval, paired_difference, verdict

# The figure that judges a variant: its training loss, measured on the test set.
FIGURE_OF_LOSS = {"mse": "mse", "bce": "bce", "elbo": "neg_elbo"}
FIGURE_NAMES = {"mse": "test MSE", "bce": "test BCE", "neg_elbo": "test -ELBO (nats)"}


def _settings(config: ComparisonConfig) -> dict:
    return {
        "resamples": config.bootstrap_resamples,
        "confidence_level": config.confidence_level,
        "seed": config.seed,
    }


def _digits(figure: str) -> int:
    return 2 if figure == "neg_elbo" else 4


# ------------------------------------------------------------------------ seeds


def seeds_frame(
    runs: Mapping[tuple[str, int], np.ndarray],
    figures: Mapping[str, str],
    config: ComparisonConfig,
) -> pd.DataFrame:
    """One row per variant: its figure (``figures[variant]``) for each seed (``runs``: the
    per-image values by (variant, seed)), their mean and standard deviation across seeds,
    and the mean half-width of the per-run bootstrap intervals (test-set sampling)."""
    rows = []
    for variant in dict.fromkeys(name for name, _ in runs):
        seeds = sorted(seed for name, seed in runs if name == variant)
        intervals = [mean_interval(runs[variant, seed], **_settings(config)) for seed in seeds]
        values = np.array([interval.estimate for interval in intervals])
        rows.append(
            {
                "variant": variant,
                "figure": figures[variant],
                "seeds": seeds,
                "values": values.tolist(),
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
                "range": float(np.ptp(values)),
                "test_half_width": float(np.mean([i.half_width for i in intervals])),
            }
        )
    return pd.DataFrame(rows)


def seeds_markdown(frame: pd.DataFrame) -> str:
    """The seed study as a markdown section."""
    lines = [
        "# Seed study: how much a variant's test figure moves from run to run",
        "",
        "Each variant trained again, as in the zoo, with each of these `training.seed` values "
        "(the zoo's own run uses its `training.seed`). *Spread* is the standard deviation "
        "across seeds; *test ±* the mean half-width of each run's 95% bootstrap interval "
        "over the test images. A difference between two variants smaller than both is noise.",
        "",
        "| variant | figure | per seed | mean | spread (std) | range | test ± |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for _, row in frame.iterrows():
        digits = _digits(row["figure"])
        per_seed = ", ".join(
            f"{seed}: {value:.{digits}f}"
            for seed, value in zip(row["seeds"], row["values"], strict=True)
        )
        lines.append(
            f"| {row['variant']} | {FIGURE_NAMES[row['figure']]} | {per_seed} | "
            f"{row['mean']:.{digits}f} | {row['std']:.{digits + 1}f} | "
            f"{row['range']:.{digits + 1}f} | {row['test_half_width']:.{digits + 1}f} |"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------- frontier


def frontier_frame(
    mse: Mapping[tuple[str, int], np.ndarray],
    pca: Mapping[int, np.ndarray],
    config: ComparisonConfig,
) -> pd.DataFrame:
    """One row per (model, code size) with the test MSE and its interval, PCA included as
    the model "PCA"; and per code size, which autoencoder is best and its paired difference
    from PCA (``vs_pca``, ``_low``, ``_high``; negative: the autoencoder is better)."""
    settings = _settings(config)
    rows = []
    for (model, size), values in mse.items():
        interval = mean_interval(values, **settings)
        rows.append(_frontier_row(model, size, interval))
    for size, values in pca.items():
        rows.append(_frontier_row("PCA", size, mean_interval(values, **settings)))
    frame = pd.DataFrame(rows)
    frame["best_at_size"] = False
    for size in sorted({size for _, size in mse}):
        models = [model for model, at in mse if at == size]
        best = min(models, key=lambda model: float(np.mean(mse[model, size])))
        index = frame.index[(frame["model"] == best) & (frame["code_size"] == size)][0]
        frame.loc[index, "best_at_size"] = True
        if size in pca:
            difference = paired_difference(mse[best, size], pca[size], **settings)
            frame.loc[index, ["vs_pca", "vs_pca_low", "vs_pca_high"]] = (
                difference.estimate,
                difference.low,
                difference.high,
            )
    return frame.sort_values(["code_size", "model"], kind="stable").reset_index(drop=True)


def _frontier_row(model: str, size: int, interval: Interval) -> dict:
    return {
        "model": model,
        "code_size": size,
        "mse": interval.estimate,
        "mse_low": interval.low,
        "mse_high": interval.high,
    }


def frontier_verdicts(frame: pd.DataFrame) -> pd.DataFrame:
    """Per code size: the best autoencoder, its MSE, PCA's, their paired difference with its
    95% interval, and the winner ("autoencoder", "PCA" or "tie")."""
    rows = []
    best = frame[frame["best_at_size"]]
    for _, row in best.iterrows():
        pca = frame[(frame["model"] == "PCA") & (frame["code_size"] == row["code_size"])]
        low, high = row.get("vs_pca_low", np.nan), row.get("vs_pca_high", np.nan)
        if not (np.isfinite(low) and np.isfinite(high)):
            winner = "—"  # no PCA at this size
        else:
            winner = "tie" if low <= 0 <= high else ("autoencoder" if high < 0 else "PCA")
        rows.append(
            {
                "code_size": int(row["code_size"]),
                "best_model": row["model"],
                "best_mse": row["mse"],
                "pca_mse": float(pca["mse"].iloc[0]) if len(pca) else float("nan"),
                "difference": row["vs_pca"],
                "low": low,
                "high": high,
                "relative": row["vs_pca"] / float(pca["mse"].iloc[0]) if len(pca) else np.nan,
                "winner": winner,
            }
        )
    return pd.DataFrame(rows)


def frontier_markdown(
    frame: pd.DataFrame, verdicts: pd.DataFrame, models: Sequence[str], test_images: int
) -> str:
    """The frontier study as a markdown section: every model's test MSE by code size, and
    the best autoencoder against PCA."""
    sizes = sorted(frame["code_size"].unique())
    columns = [*models, "PCA"]
    lines = [
        "# Code-size frontier: test MSE against code size",
        "",
        "Every model trained on the training split at each code size with the zoo's trainer "
        f"(best validation epoch kept) and scored on the {test_images:,} test images; PCA fit "
        "on the training split with as many components. ± is half the width of the 95% "
        "bootstrap interval over the test images.",
        "",
        "![test MSE against code size](frontier.png)",
        "",
        "| code | " + " | ".join(columns) + " |",
        "|---:|" + "---:|" * len(columns),
    ]
    for size in sizes:
        cells = []
        for model in columns:
            match = frame[(frame["model"] == model) & (frame["code_size"] == size)]
            if match.empty:
                cells.append("—")
                continue
            row = match.iloc[0]
            text = f"{row['mse']:.5f} ± {(row['mse_high'] - row['mse_low']) / 2:.5f}"
            cells.append(f"**{text}**" if row["best_at_size"] else text)
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## The best autoencoder against PCA",
        "",
        "The difference is the best autoencoder's test MSE minus PCA's, with its paired "
        "bootstrap 95% interval (the same resampled test images for both); inside the "
        "interval it is a tie.",
        "",
        "| code | best autoencoder | its MSE | PCA MSE | difference [95% CI] | relative | winner |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for _, row in verdicts.iterrows():
        lines.append(
            f"| {row['code_size']} | {row['best_model']} | {row['best_mse']:.5f} | "
            f"{row['pca_mse']:.5f} | {row['difference']:+.5f} [{row['low']:+.5f}, "
            f"{row['high']:+.5f}] | {row['relative']:+.1%} | {row['winner']} |"
        )
    lost = verdicts[verdicts["winner"].isin(["PCA", "tie"])]
    lines.append("")
    if lost.empty:
        lines.append("The best autoencoder beats PCA at every code size, outside the 95% interval.")
    else:
        listed = ", ".join(f"{row['code_size']} ({row['winner']})" for _, row in lost.iterrows())
        lines.append(f"PCA wins or ties at code sizes {listed}.")
    return "\n".join(lines) + "\n"


MODEL_MARKERS = ("o", "s", "D", "^", "v", "P", "X")


def frontier_chart(frame: pd.DataFrame, models: Sequence[str], test_images: int) -> Figure:
    """Test MSE against code size, one line per model and PCA dashed (log-log axes)."""
    figure = Figure(figsize=(7.5, 5.0), layout="constrained")
    axes = figure.add_subplot()
    for index, model in enumerate(models):
        line = frame[frame["model"] == model].sort_values("code_size")
        axes.plot(
            line["code_size"],
            line["mse"],
            marker=MODEL_MARKERS[index % len(MODEL_MARKERS)],
            markersize=5,
            label=model,
        )
    pca = frame[frame["model"] == "PCA"].sort_values("code_size")
    axes.plot(pca["code_size"], pca["mse"], "k--x", label="PCA")
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    sizes = sorted(frame["code_size"].unique())
    axes.set_xticks(sizes, [str(size) for size in sizes])
    axes.minorticks_off()
    axes.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter("{x:g}")
    axes.set_xlabel("code size (units)")
    axes.set_ylabel("test MSE (log scale; lower is better)")
    axes.set_title(f"Test MSE against code size ({test_images:,} test images)")
    axes.grid(alpha=0.3, which="major")
    axes.legend(fontsize=9)
    return figure


# -------------------------------------------------------------------- denoising

AUTOENCODER = "autoencoder"
STRONGEST_CLASSICAL = "bm3d"
METHOD_NAMES = {  # methods not named here (the study's models) show as their keys
    "noisy": "noisy input (clipped)",
    "gaussian_filter": "Gaussian filter",
    "median_filter": "median filter",
    "pca": "PCA projection",
    "nl_means": "NL-means",
    "bm3d": "BM3D",
    AUTOENCODER: "autoencoder (best on validation)",
}


def denoising_frame(
    psnr: Mapping[tuple[float, str], np.ndarray], config: ComparisonConfig
) -> pd.DataFrame:
    """One row per (noise std, method): the mean PSNR over the test subset and its 95%
    interval; ``psnr`` holds each method's per-image PSNR on the same images."""
    settings = _settings(config)
    rows = []
    for (std, method), values in psnr.items():
        interval = mean_interval(values, **settings)
        rows.append(
            {
                "noise_std": std,
                "method": method,
                "psnr_db": interval.estimate,
                "low": interval.low,
                "high": interval.high,
            }
        )
    return pd.DataFrame(rows).sort_values(["noise_std"], kind="stable").reset_index(drop=True)


def denoising_verdicts(
    psnr: Mapping[tuple[float, str], np.ndarray],
    full: Mapping[tuple[float, str], np.ndarray],
    best_models: Mapping[float, str],
    config: ComparisonConfig,
    rival: str = STRONGEST_CLASSICAL,
) -> pd.DataFrame:
    """Per noise std: the autoencoder's (``psnr[std, "autoencoder"]``: the model
    ``best_models[std]``, chosen on validation) PSNR minus ``rival``'s on the same images,
    with its paired 95% interval and the winner; and what the subset costs: its interval
    half-width on the subset beside that on every test image (``full``)."""
    settings = _settings(config)
    rows = []
    for std in sorted({std for std, _ in psnr}):
        ours, theirs = psnr[std, AUTOENCODER], psnr[std, rival]
        difference = paired_difference(ours, theirs, **settings)
        winner = {"first": AUTOENCODER, "second": rival, "tie": "tie"}[
            verdict(difference, lower_is_better=False)
        ]
        subset = mean_interval(ours, **settings)
        whole = full[std, AUTOENCODER]
        every = mean_interval(whole, **settings)
        rows.append(
            {
                "noise_std": std,
                "model": best_models[std],
                "rival": rival,
                "difference": difference.estimate,
                "low": difference.low,
                "high": difference.high,
                "winner": winner,
                "subset_images": len(ours),
                "subset_half_width": subset.half_width,
                "full_images": len(whole),
                "full_psnr_db": every.estimate,
                "full_half_width": every.half_width,
            }
        )
    return pd.DataFrame(rows)


def denoising_markdown(
    frame: pd.DataFrame,
    verdicts: pd.DataFrame,
    settings: Mapping[float, Mapping[str, str]],
    methods: Sequence[str],
) -> str:
    """The denoising study as a markdown section: PSNR by noise level and method, the
    autoencoder against BM3D, the chosen settings and what the test subset costs."""
    subset = int(verdicts["subset_images"].iloc[0])
    full = int(verdicts["full_images"].iloc[0])
    lines = [
        "# Denoising frontier: PSNR against the level of Gaussian noise",
        "",
        "Each test image with Gaussian noise of standard deviation *std* added (not clipped; "
        "pixel values in [0, 1]). Each autoencoder is trained afresh at each level with the "
        "zoo's trainer (new noise every epoch, best validation epoch kept); *autoencoder* is "
        "the one with the higher PSNR on the validation split at that level. Each classical "
        "method's setting is chosen on validation images only. BM3D takes about 0.2 s an "
        f"image, so every method is scored on the same fixed subset of {subset:,} test "
        "images; every output is clipped to [0, 1]. ± is half the width of the 95% "
        "bootstrap interval over those images.",
        "",
        "![PSNR against noise level](denoising.png)",
        "",
        "| noise std | " + " | ".join(METHOD_NAMES.get(m, m) for m in methods) + " |",
        "|---:|" + "---:|" * len(methods),
    ]
    for std in sorted(frame["noise_std"].unique()):
        at = frame[frame["noise_std"] == std]
        best = at[~at["method"].isin(["noisy", AUTOENCODER])]["psnr_db"].max()
        cells = []
        for method in methods:
            row = at[at["method"] == method].iloc[0]
            text = f"{row['psnr_db']:.2f} ± {(row['high'] - row['low']) / 2:.2f}"
            cells.append(f"**{text}**" if row["psnr_db"] == best else text)
        lines.append(f"| {std:g} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## The autoencoder against BM3D",
        "",
        "The autoencoder's PSNR minus BM3D's on the same images, with its paired bootstrap "
        "95% interval; inside the interval it is a tie. The last columns say what the "
        f"subset costs: the autoencoder's interval on the {subset:,} images beside that on "
        f"all {full:,} test images.",
        "",
        "| noise std | autoencoder | autoencoder - BM3D (dB) [95% CI] | winner | "
        f"± on the subset | PSNR on all {full:,} | ± on all {full:,} |",
        "|---:|---|---:|---|---:|---:|---:|",
    ]
    for _, row in verdicts.iterrows():
        lines.append(
            f"| {row['noise_std']:g} | {row['model']} | {row['difference']:+.2f} "
            f"[{row['low']:+.2f}, "
            f"{row['high']:+.2f}] | {row['winner']} | {row['subset_half_width']:.3f} | "
            f"{row['full_psnr_db']:.2f} | {row['full_half_width']:.3f} |"
        )
    lost = verdicts[verdicts["winner"] != AUTOENCODER]
    lines.append("")
    if lost.empty:
        lines.append("The autoencoder beats BM3D at every noise level, outside the 95% interval.")
    else:
        listed = ", ".join(f"{row['noise_std']:g} ({row['winner']})" for _, row in lost.iterrows())
        lines.append(f"BM3D wins or ties at noise std {listed}.")
    classical = list(next(iter(settings.values())))
    lines += [
        "",
        "## Settings chosen on validation",
        "",
        "| noise std | " + " | ".join(METHOD_NAMES.get(m, m) for m in classical) + " |",
        "|---:|" + "---|" * len(classical),
    ]
    for std, chosen in sorted(settings.items()):
        lines.append(f"| {std:g} | " + " | ".join(chosen[m] for m in classical) + " |")
    return "\n".join(lines) + "\n"


def denoising_chart(frame: pd.DataFrame, methods: Sequence[str], test_images: int) -> Figure:
    """PSNR against noise std, one line per method (the autoencoders bold) with its 95%
    interval as a band."""
    figure = Figure(figsize=(7.5, 5.0), layout="constrained")
    axes = figure.add_subplot()
    for index, method in enumerate(m for m in methods if m != AUTOENCODER):
        line = frame[frame["method"] == method].sort_values("noise_std")
        if method == "noisy":
            style = {"color": "0.5", "linestyle": ":"}
        elif method not in METHOD_NAMES:  # one of the study's autoencoders
            style = {"linewidth": 2.4}
        else:
            style = {"linewidth": 1.2, "linestyle": "--"}
        drawn = axes.plot(
            line["noise_std"],
            line["psnr_db"],
            marker=MODEL_MARKERS[index % len(MODEL_MARKERS)],
            markersize=5,
            label=METHOD_NAMES.get(method, f"{method} autoencoder"),
            **style,
        )
        axes.fill_between(
            line["noise_std"], line["low"], line["high"], color=drawn[0].get_color(), alpha=0.2
        )
    stds = sorted(frame["noise_std"].unique())
    axes.set_xticks(stds, [f"{std:g}" for std in stds])
    axes.set_xlabel("noise standard deviation (pixel values in [0, 1])")
    axes.set_ylabel("test PSNR (dB; higher is better)")
    axes.set_title(f"Denoising: PSNR against noise level ({test_images:,} test images)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=9)
    return figure
