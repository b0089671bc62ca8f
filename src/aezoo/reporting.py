"""Every variant's numbers side by side, with their baselines: rows in, tables, charts and
pages out.

``aezoo.stages.compare`` reads what the train, evaluate, render and corrupt stages wrote and
writes four things made here: ``metrics.csv`` (one row per variant, every number),
``summary.md`` (the readable tables and where PCA wins), the comparison charts and
``index.html`` (one page: tables, charts and every variant's figures). The page links its
images by relative paths to the PNG and GIF files that already lie beside it in ``reports/``
rather than embedding them: embedded, every run added megabytes of base64 to git's history.
It loads nothing from the network, so it works offline wherever ``reports/`` is checked out.
"""

from __future__ import annotations

import html
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, NullLocator
from PIL import Image

from aezoo.config import AnyVariant, ComparisonConfig
from aezoo.errors import DataError
from aezoo.figures import FIGURES, caption
from aezoo.statistics import Interval, mean_interval, paired_difference, psnr_per_image

QUALITY = ("mse", "bce", "psnr_db", "ssim")
DENOISING_BASELINES = ("pca_denoise", "gaussian_filter", "median_filter")
REFERENCE_KEYS = ("mse", "bce", "neg_elbo")

# metrics.csv: column -> where it lives in metrics.json (a key path).
COLUMNS: dict[str, tuple[str, ...]] = {
    "variant": ("variant",),
    "architecture": ("architecture",),
    "objective": ("objective",),
    "input": ("input",),
    "code_size": ("code_size",),
    "parameters": ("parameters",),
    "epochs": ("epochs",),
    "best_epoch": ("best_epoch",),
    "train_seconds": ("train_seconds",),
    "samples_per_second": ("samples_per_second",),
    "test_images": ("test_images",),
    **{f"test_{key}": ("reconstruction", key) for key in QUALITY},
    "probe_accuracy": ("code", "probe_accuracy"),
    "code_mean_activation": ("code", "mean_activation"),
    "code_near_zero_fraction": ("code", "near_zero_fraction"),
    "neg_elbo": ("vae", "neg_elbo"),
    "iwae_nll": ("vae", "iwae_nll"),
    "iwae_samples": ("vae", "iwae_samples"),
    "pca_components": ("baselines", "pca", "components"),
    **{f"pca_{key}": ("baselines", "pca", key) for key in (*QUALITY, "probe_accuracy")},
    **{f"input_{key}": ("corrupted_input", key) for key in QUALITY},
    "psnr_gain_db": ("psnr_gain_db",),
    "pca_denoise_probe_accuracy": ("baselines", "pca_denoise", "probe_accuracy"),
    **{
        f"{baseline}_{key}": ("baselines", baseline, key)
        for baseline in DENOISING_BASELINES
        for key in QUALITY
    },
    "gaussian_filter_sigma": ("baselines", "gaussian_filter", "sigma"),
    "median_filter_size": ("baselines", "median_filter", "size"),
    **{f"reference_{key}": ("reference", key) for key in REFERENCE_KEYS},
}
TEXT_COLUMNS = ("variant", "architecture", "objective", "input")
REQUIRED = ("variant", "input", "code_size", "test_mse", "pca_mse")
CHARTS = {
    "mse_vs_code_size.png": "Test MSE against code size: autoencoders and PCA",
    "ae_vs_pca.png": "Each variant against PCA with as many components as its code",
    "denoising_psnr.png": "Denoisers: PSNR of the corrupted input, the classical baselines "
    "and the autoencoder",
}
IMAGE_SUFFIXES = (".png", ".gif")  # what the render and compare stages write
MISSING = "—"
TITLE = "aezoo: the model zoo compared"


# ---------------------------------------------------------------------- collect


def _lookup(record: dict[str, Any], path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(record, dict) or key not in record:
            return None
        record = record[key]
    return record


def variant_row(
    name: str,
    spec: AnyVariant,
    metrics: dict[str, Any],
    train_facts: dict[str, Any],
    evaluate_facts: dict[str, Any],
    source: Path,
) -> dict[str, Any]:
    """One row of metrics.csv: the test figures of ``metrics.json`` (read from ``source``)
    beside the variant's config and the train and evaluate stages' facts."""
    record = {
        **metrics,
        "variant": name,
        "architecture": spec.architecture,
        "objective": spec.objective,
        "input": spec.input,
        "code_size": spec.code_size,
        "parameters": train_facts.get("parameters"),
        "epochs": train_facts.get("epochs_run"),
        "best_epoch": train_facts.get("best_epoch"),
        "train_seconds": train_facts.get("wall_seconds"),
        "samples_per_second": train_facts.get("samples_per_second"),
        "test_images": evaluate_facts.get("test_images"),
        "reference": dict(spec.reference),
    }
    row = {column: _lookup(record, path) for column, path in COLUMNS.items()}
    row["iwae_samples"] = evaluate_facts.get("iwae_samples")
    row["pca_components"] = evaluate_facts.get("pca_components")
    row["gaussian_filter_sigma"] = evaluate_facts.get("gaussian_filter_sigma")
    row["median_filter_size"] = evaluate_facts.get("median_filter_size")
    for key, value in spec.reference.items():
        row[f"reference_{key}"] = value
    missing = [column for column in REQUIRED if row[column] is None]
    if missing:
        keys = ", ".join(".".join(COLUMNS[column]) for column in missing)
        raise DataError(f"{source}: missing {keys} (run evaluate@{name} again)")
    return row


def frame_of(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The variants' rows as one table, clean inputs first, then by code size and name."""
    frame = pd.DataFrame(rows)
    for column in frame.columns.difference(TEXT_COLUMNS):
        frame[column] = pd.to_numeric(frame[column])
    frame["denoising"] = frame["input"] != "clean"
    frame = frame.sort_values(["denoising", "code_size", "variant"], kind="stable")
    return frame.drop(columns="denoising").reset_index(drop=True)


# Paired comparisons the report states: column stem -> (per-image values of the
# autoencoder, of the other method, as what: mse | psnr | accuracy).
PAIRED = {
    "vs_pca_mse": ("autoencoder_mse", "pca_mse", "mse"),
    "vs_pca_probe": ("autoencoder_probe_correct", "pca_probe_correct", "accuracy"),
    "vs_pca_psnr": ("autoencoder_mse", "pca_mse", "psnr"),
    "vs_gaussian_filter_psnr": ("autoencoder_mse", "gaussian_filter_mse", "psnr"),
    "vs_median_filter_psnr": ("autoencoder_mse", "median_filter_mse", "psnr"),
}


def interval_columns(
    per_image: dict[str, np.ndarray], config: ComparisonConfig
) -> dict[str, float]:
    """A row's bootstrap intervals over the test images (``<column>_low``, ``_high``): the
    autoencoder's test MSE, PSNR and -ELBO, and the paired differences autoencoder minus
    PCA and minus each filter (``vs_*``, with the difference itself)."""
    settings = {
        "resamples": config.bootstrap_resamples,
        "confidence_level": config.confidence_level,
        "seed": config.seed,
    }
    as_psnr = {"psnr": psnr_per_image, "mse": np.asarray, "accuracy": np.asarray}
    columns: dict[str, float] = {}

    def put(stem: str, interval: Interval, with_estimate: bool = False) -> None:
        columns.update({f"{stem}_low": interval.low, f"{stem}_high": interval.high})
        if with_estimate:
            columns[stem] = interval.estimate

    mse = per_image["autoencoder_mse"]
    put("test_mse", mean_interval(mse, **settings))
    put("test_psnr_db", mean_interval(psnr_per_image(mse), **settings))
    if "neg_elbo" in per_image:
        put("neg_elbo", mean_interval(per_image["neg_elbo"], **settings))
    for stem, (ours, theirs, kind) in PAIRED.items():
        if ours in per_image and theirs in per_image:
            convert = as_psnr[kind]
            first = convert(per_image[ours].astype(np.float64))
            second = convert(per_image[theirs].astype(np.float64))
            put(stem, paired_difference(first, second, **settings), with_estimate=True)
    return columns


def corruptions_frame(
    stats: dict[str, dict[str, Any]], kinds: dict[str, str], frame
) -> pd.DataFrame:
    """The corrupt stage's test statistics by corruption, with the variants that take each."""
    rows = []
    for name, values in stats.items():
        users = frame.loc[frame["input"] == name, "variant"]
        rows.append(
            {"corruption": name, "kind": kinds.get(name), **values, "used_by": ", ".join(users)}
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------- comparisons


def _same_task_pca(row: pd.Series, key: str) -> float:
    """PCA on the autoencoder's own task: reconstruct the clean image from its input."""
    return row[f"pca_denoise_{key}"] if row["input"] != "clean" else row[f"pca_{key}"]


def paired_verdict(
    row: pd.Series, stem: str, *, lower_is_better: bool, baseline: str = "baseline"
) -> str:
    """Who wins the paired comparison ``stem`` (the autoencoder minus the baseline) by its
    95% interval: "autoencoder", ``baseline`` or "tie"; the dash when it was not made."""
    low, high = row.get(f"{stem}_low"), row.get(f"{stem}_high")
    if not (_is_number(low) and _is_number(high)):
        return MISSING
    if low <= 0 <= high:
        return "tie"
    autoencoder_lower = high < 0
    return "autoencoder" if autoencoder_lower == lower_is_better else baseline


def _difference(digits: int, scale: float = 1.0, suffix: str = "") -> Callable[[str], Callable]:
    """A cell: the paired difference ``stem`` and its interval, e.g. -0.0061 [-0.0063, -0.0059]."""

    def of(stem: str) -> Callable[[pd.Series], str]:
        def cell(row: pd.Series) -> str:
            values = [row.get(stem), row.get(f"{stem}_low"), row.get(f"{stem}_high")]
            if not all(_is_number(value) for value in values):
                return MISSING
            middle, low, high = (scale * value for value in values)
            return f"{middle:+.{digits}f}{suffix} [{low:+.{digits}f}, {high:+.{digits}f}]"

        return cell

    return of


def pca_wins(frame: pd.DataFrame) -> list[str]:
    """One sentence for each comparison PCA at the same code size wins (95% interval of the
    paired difference clear of zero), and one for each tie."""
    found = []
    for _, row in frame[frame["pca_components"].fillna(0) < 784].iterrows():
        task = "denoising" if row["input"] != "clean" else "reconstruction"
        name = f"**{row['variant']}** ({task}, code {row['code_size']})"
        mse_verdict = paired_verdict(row, "vs_pca_mse", lower_is_better=True)
        if mse_verdict in ("baseline", "tie"):
            pca_mse = _same_task_pca(row, "mse")
            relation = "<" if mse_verdict == "baseline" else "ties with"
            found.append(
                f"{name}: PCA test MSE {pca_mse:.4f} {relation} autoencoder "
                f"{row['test_mse']:.4f} (difference {_difference(4)('vs_pca_mse')(row)})"
            )
        probe_verdict = paired_verdict(row, "vs_pca_probe", lower_is_better=False)
        if probe_verdict in ("baseline", "tie"):
            pca_probe = _same_task_pca(row, "probe_accuracy")
            relation = ">" if probe_verdict == "baseline" else "ties with"
            found.append(
                f"{name}, linear digit probe on the code: PCA {pca_probe:.1%} {relation} "
                f"autoencoder {row['probe_accuracy']:.1%} (difference, points: "
                f"{_difference(2, 100)('vs_pca_probe')(row)})"
            )
    return found


def classical_wins(frame: pd.DataFrame) -> list[str]:
    """Denoisers that a classical filter beats or ties on test PSNR (95% paired interval)."""
    found = []
    for _, row in frame[frame["input"] != "clean"].iterrows():
        for baseline in ("gaussian_filter", "median_filter"):
            stem = f"vs_{baseline}_psnr"
            outcome = paired_verdict(row, stem, lower_is_better=False)
            if outcome in ("baseline", "tie"):
                relation = "beats" if outcome == "baseline" else "ties with"
                found.append(
                    f"**{row['variant']}**: the {baseline.replace('_', ' ')} "
                    f"({row.get(f'{baseline}_psnr_db'):.2f} dB) {relation} the autoencoder "
                    f"({row['test_psnr_db']:.2f} dB; difference {_difference(2)(stem)(row)} dB)"
                )
    return found


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and math.isfinite(value)


# ------------------------------------------------------------------------ tables


def _number(digits: int, suffix: str = "") -> Callable[[Any], str]:
    def format_value(value: Any) -> str:
        return f"{value:.{digits}f}{suffix}" if _is_number(value) else MISSING

    return format_value


def _count(value: Any) -> str:
    return f"{int(value):,}" if _is_number(value) else MISSING


def _percent(value: Any) -> str:
    return f"{value:.1%}" if _is_number(value) else MISSING


def _with_interval(column: str, digits: int) -> Callable[[pd.Series], str]:
    """A cell: the figure and half its 95% interval's width, e.g. 0.0233 ± 0.0002: at least
    ``digits`` decimals, more when the half-width would otherwise read 0."""

    def cell(row: pd.Series) -> str:
        value, low, high = row.get(column), row.get(f"{column}_low"), row.get(f"{column}_high")
        if not _is_number(value):
            return MISSING
        if not (_is_number(low) and _is_number(high)):
            return f"{value:.{digits}f}"
        half = (high - low) / 2
        shown = max(digits, -math.floor(math.log10(half))) if half > 0 else digits
        return f"{value:.{shown}f} ± {half:.{shown}f}"

    return cell


def _seconds(value: Any) -> str:
    return f"{value:,.0f} s" if _is_number(value) else MISSING


def _reference(row: pd.Series) -> str:
    names = {"mse": "MSE", "bce": "BCE", "neg_elbo": "-ELBO"}
    parts = [
        f"{names.get(column[10:], column[10:])} {row[column]:g}"
        for column in row.index
        if column.startswith("reference_") and _is_number(row[column])
    ]
    return ", ".join(parts) or MISSING


def display_table(frame: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """A table of formatted strings: header -> a column name, or a function of the row."""
    columns = {}
    for header, how in spec.items():
        if callable(how):
            columns[header] = [how(row) for _, row in frame.iterrows()]
        else:
            column, formatter = how
            columns[header] = [formatter(value) for value in frame[column]]
    return pd.DataFrame(columns)


def overview_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Every variant: size, cost, test quality, the PCA baseline, the published figure."""
    return display_table(
        frame,
        {
            "variant": ("variant", str),
            "network": ("architecture", str),
            "objective": ("objective", str),
            "input": ("input", str),
            "code": ("code_size", _count),
            "parameters": ("parameters", _count),
            "epochs run": ("epochs", _count),
            "kept epoch": ("best_epoch", _count),
            "train time": ("train_seconds", _seconds),
            "test MSE": _with_interval("test_mse", 4),
            "test BCE": ("test_bce", _number(4)),
            "PSNR (dB)": _with_interval("test_psnr_db", 2),
            "SSIM": ("test_ssim", _number(3)),
            "probe acc.": ("probe_accuracy", _percent),
            "PCA MSE†": lambda row: _number(4)(_same_task_pca(row, "mse")),
            "PCA PSNR†": lambda row: _number(2)(_same_task_pca(row, "psnr_db")),
            "PCA probe†": lambda row: _percent(_same_task_pca(row, "probe_accuracy")),
            "published": _reference,
        },
    )


def denoiser_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Denoisers: test PSNR of the input, each baseline and the autoencoder."""
    denoisers = frame[frame["input"] != "clean"]

    def with_setting(baseline: str, knob: str, label: str) -> Callable[[pd.Series], str]:
        def cell(row: pd.Series) -> str:
            psnr = _number(2)(row.get(f"{baseline}_psnr_db"))
            setting = row.get(f"{baseline}_{knob}")
            return f"{psnr} ({label} {setting:g})" if _is_number(setting) else psnr

        return cell

    return display_table(
        denoisers,
        {
            "variant": ("variant", str),
            "corruption": ("input", str),
            "input PSNR": ("input_psnr_db", _number(2)),
            "Gaussian filter": with_setting("gaussian_filter", "sigma", "sigma"),
            "median filter": with_setting("median_filter", "size", "size"),
            "PCA (same code)": ("pca_denoise_psnr_db", _number(2)),
            "autoencoder": _with_interval("test_psnr_db", 2),
            "gain (dB)": ("psnr_gain_db", _number(2)),
            "autoencoder SSIM": ("test_ssim", _number(3)),
            "vs best filter (dB)": lambda row: _difference(2)(_best_filter_stem(row))(row),
            "verdict": lambda row: paired_verdict(
                row, _best_filter_stem(row), lower_is_better=False, baseline="filter"
            ),
        },
    )


def _best_filter_stem(row: pd.Series) -> str:
    """The paired-comparison column of the filter with the higher test PSNR."""
    gaussian, median = row.get("gaussian_filter_psnr_db"), row.get("median_filter_psnr_db")
    best = (
        "median_filter"
        if _is_number(median) and median > (gaussian or -math.inf)
        else ("gaussian_filter")
    )
    return f"vs_{best}_psnr"


def pca_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Each variant against PCA at its code size, on its own task: test MSE and probe
    accuracy, the paired differences with their 95% intervals, and who wins."""
    compared = frame[frame["pca_components"].fillna(0) < 784]
    return display_table(
        compared,
        {
            "variant": ("variant", str),
            "code": ("code_size", _count),
            "autoencoder MSE": ("test_mse", _number(4)),
            "PCA MSE†": lambda row: _number(4)(_same_task_pca(row, "mse")),
            "difference [95% CI]": _difference(4)("vs_pca_mse"),
            "MSE winner": lambda row: paired_verdict(
                row, "vs_pca_mse", lower_is_better=True, baseline="PCA"
            ),
            "autoencoder probe": ("probe_accuracy", _percent),
            "PCA probe†": lambda row: _percent(_same_task_pca(row, "probe_accuracy")),
            "difference, points [95% CI]": _difference(2, 100)("vs_pca_probe"),
            "probe winner": lambda row: paired_verdict(
                row, "vs_pca_probe", lower_is_better=False, baseline="PCA"
            ),
        },
    )


def vae_table(frame: pd.DataFrame) -> pd.DataFrame:
    """VAEs: the negative ELBO and the importance-weighted bound, nats per test image."""
    vaes = frame[frame["objective"] == "variational"]
    return display_table(
        vaes,
        {
            "variant": ("variant", str),
            "input": ("input", str),
            "code": ("code_size", _count),
            "-ELBO (nats)": _with_interval("neg_elbo", 2),
            "IWAE NLL bound (nats)": ("iwae_nll", _number(2)),
            "importance samples": ("iwae_samples", _count),
            "published -ELBO": ("reference_neg_elbo", _number(1)),
        },
    )


def corruption_table(corruptions: pd.DataFrame) -> pd.DataFrame:
    """The corrupt stage's test statistics."""
    if corruptions.empty:
        return corruptions
    return display_table(
        corruptions,
        {
            "corruption": ("corruption", str),
            "kind": ("kind", str),
            "test MSE": ("test_mse", _number(4)),
            "test PSNR (dB)": ("test_psnr_db", _number(2)),
            "mean pixel": ("test_mean", _number(3)),
            "clean mean pixel": ("clean_test_mean", _number(3)),
            "used by": ("used_by", lambda users: users or MISSING),
        },
    )


def _right_aligned(column: pd.Series) -> bool:
    """Numbers (and the missing-value dash) align right; words align left."""
    return all(re.match(r"^[-+]?[\d.,]+", cell) or cell == MISSING for cell in column)


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table of strings."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    rules = ["---:" if _right_aligned(table[column]) else "---" for column in table.columns]
    rows = [line(list(table.columns)), "|" + "|".join(rules) + "|"]
    rows += [line(list(values)) for values in table.itertuples(index=False)]
    return "\n".join(rows)


def html_table(table: pd.DataFrame) -> str:
    """An HTML table of strings, escaped; numeric columns align right."""
    numeric = [_right_aligned(table[column]) for column in table.columns]

    def cell(tag: str, text: str, right: bool) -> str:
        opening = f'<{tag} class="num">' if right else f"<{tag}>"
        return f"{opening}{html.escape(text)}</{tag}>"

    head = "".join(
        cell("th", column, right) for column, right in zip(table.columns, numeric, strict=True)
    )
    body = "\n".join(
        "<tr>"
        + "".join(cell("td", text, right) for text, right in zip(values, numeric, strict=True))
        + "</tr>"
        for values in table.itertuples(index=False)
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


# ------------------------------------------------------------------------ charts

ARCHITECTURE_MARKERS = {"dense": "o", "conv": "s", "strided_conv": "D"}


def mse_vs_code_size_chart(frame: pd.DataFrame) -> Figure:
    """Clean-input variants' test MSE against code size, with PCA at each of those sizes.

    Each kind of model (architecture x objective) sits a little to one side of its code size,
    so coincident points stay visible; VAEs are hollow markers. Variants whose points would
    overlap (same code size, MSE within 20%) share one label, on a white box above the lines.
    """
    clean = frame[frame["input"] == "clean"]
    figure = Figure(figsize=(7.5, 5.0), layout="constrained")
    axes = figure.add_subplot()
    colours = iter(["C0", "C1", "C2", "C3", "C4", "C5"])
    kinds = list(clean.groupby(["architecture", "objective"], sort=False))
    dodge = {
        kind: 2 ** ((index - (len(kinds) - 1) / 2) * 0.09) for index, (kind, _) in enumerate(kinds)
    }
    for (architecture, objective), group in kinds:
        variational = objective == "variational"
        colour = next(colours)
        axes.scatter(
            group["code_size"] * dodge[architecture, objective],
            group["test_mse"],
            marker=ARCHITECTURE_MARKERS.get(architecture, "o"),
            s=70 if variational else 45,
            facecolors="none" if variational else colour,
            edgecolors=colour,
            linewidths=1.6,
            label=f"{architecture} {'VAE' if variational else 'autoencoder'}",
            zorder=4 if variational else 3,
        )
    pca = clean[["code_size", "pca_mse"]].drop_duplicates("code_size").sort_values("code_size")
    pca = pca[pca["pca_mse"] > 1e-9]  # PCA with every pixel is lossless: off a log scale
    pca_sizes, pca_values = list(pca["code_size"]), list(pca["pca_mse"])
    for size, members in clean.groupby("code_size"):
        ordered = members.sort_values("test_mse", ascending=False)
        clusters: list[list[pd.Series]] = []
        for _, row in ordered.iterrows():
            if clusters and clusters[-1][-1]["test_mse"] / row["test_mse"] < 1.2:
                clusters[-1].append(row)
            else:
                clusters.append([row])
        for cluster in clusters:
            mse = float(np.exp(np.mean([np.log(row["test_mse"]) for row in cluster])))
            offsets = [dodge[row["architecture"], row["objective"]] for row in cluster]
            # Left of the points where the label would run into the next size's PCA point.
            left = any(
                next_size / size < 3 and abs(np.log(next_mse / mse)) < np.log(1.4)
                for next_size, next_mse in zip(pca_sizes, pca_values, strict=True)
                if next_size > size
            )
            axes.annotate(
                ", ".join(row["variant"] for row in cluster),
                (size * (min(offsets) if left else max(offsets)), mse),
                textcoords="offset points",
                xytext=(-7 if left else 7, 0),
                ha="right" if left else "left",
                va="center",
                fontsize=8,
                zorder=5,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"},
            )
    # The line runs under the label boxes, its markers over them: no PCA point is hidden.
    axes.plot(pca["code_size"], pca["pca_mse"], "k--x", zorder=2, label="PCA, same code size")
    axes.plot(pca["code_size"], pca["pca_mse"], "kx", zorder=6)
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    sizes = sorted(clean["code_size"].unique())
    axes.set_xticks(sizes, [f"{size:g}" for size in sizes])
    axes.xaxis.set_minor_locator(NullLocator())
    axes.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter("{x:g}")
    axes.yaxis.set_minor_formatter(NullFormatter())
    axes.set_xlim(min(sizes) / 1.6, max(sizes) * 3.5)  # room for the labels on the right
    axes.set_xlabel("code size (units)")
    axes.set_ylabel("test MSE (log scale; lower is better)")
    axes.set_title("Clean-input autoencoders: test MSE against code size")
    axes.grid(alpha=0.3, which="major")
    axes.legend(fontsize=8, loc="lower left")
    return figure


def ae_vs_pca_chart(frame: pd.DataFrame) -> Figure:
    """Per variant: test MSE and digit-probe accuracy of the autoencoder and of PCA."""
    names = list(frame["variant"])
    positions = np.arange(len(names))
    height = 0.38
    figure = Figure(figsize=(10.0, 1.6 + 0.42 * len(names)), layout="constrained")
    mse_axes, probe_axes = figure.subplots(1, 2, sharey=True)
    pca_mse = [_same_task_pca(row, "mse") for _, row in frame.iterrows()]
    pca_probe = [_same_task_pca(row, "probe_accuracy") for _, row in frame.iterrows()]
    panels = [
        (mse_axes, frame["test_mse"], pca_mse, "test MSE (log scale; lower is better)"),
        (
            probe_axes,
            frame["probe_accuracy"],
            pca_probe,
            "linear digit-probe accuracy on the code (higher is better)",
        ),
    ]
    for axes, ours, theirs, label in panels:
        ours = np.array(ours, dtype=float)
        theirs = np.array(theirs, dtype=float)
        axes.barh(positions - height / 2, ours, height, label="autoencoder")
        axes.barh(positions + height / 2, theirs, height, label="PCA, same code size")
        axes.set_xlabel(label)
        axes.grid(alpha=0.3, axis="x")
    mse_axes.set_xscale("log")
    probe_axes.set_xlim(0, 1)
    mse_axes.set_yticks(positions, names)
    mse_axes.invert_yaxis()
    figure.legend(*mse_axes.get_legend_handles_labels(), loc="outside lower center", ncols=2)
    figure.suptitle(
        "Each variant against PCA with as many components as its code has units\n"
        "(denoisers: PCA projects the corrupted input, as the autoencoder sees it)",
        fontsize=11,
    )
    return figure


def denoising_chart(frame: pd.DataFrame) -> Figure:
    """Denoisers: PSNR of the input, the best classical filter, PCA and the autoencoder."""
    denoisers = frame[frame["input"] != "clean"]
    bars = {
        "corrupted input": denoisers["input_psnr_db"],
        "best classical filter": denoisers[["gaussian_filter_psnr_db", "median_filter_psnr_db"]]
        .astype(float)
        .max(axis=1),
        "PCA, same code size": denoisers["pca_denoise_psnr_db"],
        "autoencoder": denoisers["test_psnr_db"],
    }
    positions = np.arange(len(denoisers))
    height = 0.8 / len(bars)
    figure = Figure(figsize=(8.0, 2.4 + 0.8 * len(denoisers)), layout="constrained")
    axes = figure.add_subplot()
    for index, (label, values) in enumerate(bars.items()):
        offsets = positions - 0.4 + (index + 0.5) * height
        drawn = axes.barh(offsets, np.array(values, dtype=float), height, label=label)
        axes.bar_label(drawn, fmt="%.1f dB", padding=3, fontsize=8)
    labels = [f"{row['variant']}\n({row['input']})" for _, row in denoisers.iterrows()]
    axes.set_yticks(positions, labels)
    axes.invert_yaxis()
    axes.set_xlabel("test PSNR against the clean image (dB; higher is better)")
    axes.set_title("Denoisers against the corrupted input and classical baselines")
    axes.grid(alpha=0.3, axis="x")
    axes.margins(x=0.12)
    figure.legend(loc="outside lower center", ncols=4, fontsize=8)
    return figure


def charts(frame: pd.DataFrame) -> dict[str, Figure]:
    """The comparison charts that apply to these variants, by file name."""
    clean = frame["input"] == "clean"
    drawers = {
        "mse_vs_code_size.png": mse_vs_code_size_chart if clean.any() else None,
        "ae_vs_pca.png": ae_vs_pca_chart,
        "denoising_psnr.png": denoising_chart if not clean.all() else None,
    }
    return {name: draw(frame) for name, draw in drawers.items() if draw is not None}


# ------------------------------------------------------------ the report's text

Block = tuple[str, Any]  # ("text", str) | ("list", [str, ...]) | ("table", DataFrame)
PCA_FOOTNOTE = (
    "† PCA on the autoencoder's own task: for a denoiser, the corrupted input projected onto "
    "the clean training images' principal components. The probe is a logistic regression "
    "on the code of the model's input, fit on training-split codes (a denoiser's and PCA's "
    "alike on corrupted images)."
)


INTERVALS = (
    "± is half the width of a 95% percentile-bootstrap interval over the test images; a "
    "difference [in brackets] is the autoencoder's figure minus the other method's, with "
    "its paired-bootstrap 95% interval (the same resampled images for both). A difference "
    "whose interval holds zero is a tie."
)


def pca_findings(frame: pd.DataFrame) -> list[Block]:
    """Each variant against PCA with its intervals; PCA's wins and the ties stated plainly,
    and when the test is moot."""
    blocks: list[Block] = [("table", pca_table(frame))]
    found = pca_wins(frame)
    if found:
        blocks += [("text", "PCA with the same code size wins or ties here:"), ("list", found)]
    else:
        blocks.append(
            (
                "text",
                "Nowhere: every autoencoder beats PCA at its code size on both, outside "
                "the 95% interval.",
            )
        )
    lossless = frame[frame["pca_components"].fillna(0) >= 784]
    if not lossless.empty:
        blocks.append(
            (
                "text",
                f"Codes of 784 or more units ({', '.join(lossless['variant'])}) are "
                "overcomplete: PCA then keeps every pixel and reconstructs clean images "
                "exactly, so only the denoising comparison is informative for them.",
            )
        )
    return blocks


def report_sections(frame: pd.DataFrame, corruptions: pd.DataFrame) -> list[tuple]:
    """The report's sections as (anchor, title, blocks), shared by summary.md and index.html."""
    sections = [
        (
            "summary",
            "All variants",
            [("table", overview_table(frame)), ("text", PCA_FOOTNOTE), ("text", INTERVALS)],
        ),
        ("pca", "Autoencoders against PCA", pca_findings(frame)),
    ]
    if (frame["input"] != "clean").any():
        beaten = classical_wins(frame)
        verdict: list[Block] = (
            [
                ("text", "A classical filter beats or ties with the autoencoder here:"),
                ("list", beaten),
            ]
            if beaten
            else [
                (
                    "text",
                    "Every denoiser beats the best Gaussian and median filter, outside the "
                    "95% interval of the paired difference.",
                )
            ]
        )
        sections.append(("denoisers", "Denoisers", [("table", denoiser_table(frame)), *verdict]))
    if (frame["objective"] == "variational").any():
        sections.append(("vaes", "Variational autoencoders", [("table", vae_table(frame))]))
    statistics: list[Block] = (
        [("table", corruption_table(corruptions))]
        if not corruptions.empty
        else [("text", "No corruption statistics found.")]
    )
    sections.append(("corruptions", "Corruptions (test split)", statistics))
    return sections


def _introduction(frame: pd.DataFrame) -> str:
    counts = sorted({int(count) for count in frame["test_images"].dropna()})
    on = f"the {counts[0]:,} test images" if len(counts) == 1 else "the test split"
    return (
        f"{len(frame)} autoencoders on MNIST. Every number is measured on {on}, never seen "
        "in training or model selection. The PCA baseline is fit on the training split with "
        "as many components as the variant's code has units (at most 784)."
    )


# ---------------------------------------------------------------------- summary.md


def _markdown_block(kind: str, content: Any) -> str:
    if kind == "table":
        return markdown_table(content)
    if kind == "list":
        return "\n".join(f"- {item}" for item in content)
    return content


def summary_markdown(
    frame: pd.DataFrame, corruptions: pd.DataFrame, charts: list[str], variants_link: str
) -> str:
    """The readable summary: the tables, where PCA and filters win, links to the charts."""
    parts = [f"# {TITLE}", _introduction(frame)]
    for _, title, blocks in report_sections(frame, corruptions):
        parts.append(f"## {title}")
        parts += [_markdown_block(kind, content) for kind, content in blocks]
    parts += [
        "## Charts",
        "\n".join(f"- [{CHARTS[name]}](figures/{name})" for name in charts),
        "Per-variant figures (reconstructions, progress GIF, loss, code maps):",
        "\n".join(f"- [{name}]({variants_link}/{name}/figures/)" for name in frame["variant"]),
        "Every number, one row per variant: [metrics.csv](metrics.csv). "
        "Everything on one page, figures included: [index.html](index.html).",
    ]
    return "\n\n".join(parts) + "\n"


PAGE_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
  max-width: 1280px; padding: 1rem 2rem 3rem; color: #1b1b1b; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ccc; margin-top: 2.5rem; }
nav a { margin-right: 0.8rem; white-space: nowrap; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.8rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; }
th { background: #f0f0f0; } td.num, th.num { text-align: right; }
tbody tr:nth-child(even) { background: #fafafa; }
.scroll { overflow-x: auto; }
.figures { display: flex; flex-wrap: wrap; gap: 1.2rem; align-items: flex-start; }
figure { margin: 0; max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #555; }
.note { color: #a33; }
"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def relative_url(path: Path, page_dir: Path) -> str:
    """``path`` as a URL relative to a page in ``page_dir`` (POSIX separators, escaped), so
    the page finds it from ``file://`` and from any web server alike."""
    relative = os.path.relpath(path.resolve(), page_dir.resolve())
    return quote(Path(relative).as_posix())


def linked_image(path: Path, page_dir: Path, alt: str) -> str:
    """An ``<img>`` that refers to ``path`` relative to the page, with its size (read from the
    file, so a missing or unreadable figure fails here, not in the reader's browser)."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise DataError(f"{path}: not a figure the page shows (expected PNG or GIF)")
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the figure ({exc})") from None
    return (
        f'<img src="{html.escape(relative_url(path, page_dir))}" width="{width}" '
        f'height="{height}" alt="{html.escape(alt)}">'
    )


def _figure(path: Path, page_dir: Path, caption: str) -> str:
    image, text = linked_image(path, page_dir, caption), html.escape(caption)
    return f"<figure>{image}<figcaption>{text}</figcaption></figure>"


def variant_figures(name: str, figure_dir: Path, page_dir: Path) -> str:
    """A variant's figures, known ones first in a fixed order, then any others by name."""
    if not figure_dir.is_dir():
        print(f"warning: {figure_dir}: no figures (run render@{name})", file=sys.stderr)
        where = html.escape(str(figure_dir))
        return f'<p class="note">No figures: {where} is missing (run render@{name}).</p>'
    files = {
        path.name: path for path in figure_dir.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES
    }
    order = [figure.file for figure in FIGURES if figure.file in files]
    order += sorted(set(files) - set(order))
    items = [_figure(files[file], page_dir, f"{name}: {caption(file)}") for file in order]
    return '<div class="figures">\n' + "\n".join(items) + "\n</div>"


def _inline_html(text: str) -> str:
    """Escaped text with markdown's **bold** as <strong>."""
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))


def _html_block(kind: str, content: Any) -> str:
    if kind == "table":
        return f'<div class="scroll">{html_table(content)}</div>'
    if kind == "list":
        return "<ul>" + "".join(f"<li>{_inline_html(item)}</li>" for item in content) + "</ul>"
    return f"<p>{_inline_html(content)}</p>"


def index_html(
    frame: pd.DataFrame,
    corruptions: pd.DataFrame,
    chart_dir: Path,
    charts: list[str],
    variants_dir: Path,
    page_dir: Path,
) -> str:
    """The whole report as one HTML5 page, to be written into ``page_dir``: its images are
    links relative to there (to ``chart_dir`` and ``variants_dir/<variant>/figures``)."""
    sections = [
        (anchor, title, "\n".join(_html_block(kind, content) for kind, content in blocks))
        for anchor, title, blocks in report_sections(frame, corruptions)
    ]
    chart_html = "\n".join(_figure(chart_dir / name, page_dir, CHARTS[name]) for name in charts)
    sections.append(("charts", "Comparison charts", f'<div class="figures">\n{chart_html}\n</div>'))
    for name in frame["variant"]:
        figures = variant_figures(name, variants_dir / name / "figures", page_dir)
        sections.append((f"variant-{_slug(name)}", f"{name}: figures", figures))

    nav = " ".join(f'<a href="#{anchor}">{html.escape(title)}</a>' for anchor, title, _ in sections)
    body = "\n".join(
        f'<section id="{anchor}">\n<h2>{html.escape(title)}</h2>\n{content}\n</section>'
        for anchor, title, content in sections
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{TITLE}</title>
<style>{PAGE_STYLE}</style>
</head>
<body>
<header>
<h1>{TITLE}</h1>
<p>{html.escape(_introduction(frame))}</p>
<nav>{nav}</nav>
</header>
<main>
{body}
</main>
</body>
</html>
"""
