"""``reports/benchmarks.json`` and ``reports/benchmarks.md``, and the terminal table."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from aezoo.io import atomic_path, write_json
from benchmarks.overheads import STAGE_LIBRARIES


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _epoch_range(samples: int, seconds: list[float]) -> str:
    """Training samples/s of the slowest and the fastest timed epoch."""
    return f"{samples / max(seconds):,.0f}-{samples / min(seconds):,.0f}"


def table_rows(report: dict) -> list[list[str]]:
    """The benchmark table, one row per variant and arm."""
    rows = []
    peak = report["machine"]["cpu"]["peak_gflops"]
    for variant in report["variants"]:
        for arm in variant["arms"]:
            rows.append(
                [
                    variant["variant"],
                    arm["arm"],
                    arm["setting"],
                    _fmt(arm["samples_per_second"]),
                    _epoch_range(variant["train_samples"], arm["train_seconds"]),
                    _fmt(statistics.median(arm["epoch_seconds"]), 2),
                    _fmt(arm["predict_samples_per_second"]),
                    _fmt(arm["peak_rss_mib"]),
                    f"{arm['val_loss']:.5f}",
                    _fmt(arm["gflops_per_second"], 2) + f" ({arm['gflops_per_second'] / peak:.1%})",
                    _fmt(arm.get("ratio"), 2) + ("x" if "ratio" in arm else ""),
                    _quality(arm),
                ]
            )
    return rows


def _quality(arm: dict) -> str:
    """``ok (+0.06%)``: a's verdict and its val loss against c's; blank for b and c."""
    if "quality_ok" not in arm:
        return ""
    change = round(arm["val_loss_change"], 4) + 0.0  # + 0.0: no "-0.00%"
    return f"{'ok' if arm['quality_ok'] else 'WORSE'} ({change:+.2%})"


HEADER = [
    "variant",
    "arm",
    "setting",
    "train samples/s",
    "slowest-fastest epoch",
    "epoch s",
    "predict samples/s",
    "peak RSS MiB",
    "val loss",
    "GFLOP/s (of peak)",
    "a/b",
    "quality",
]


def render_markdown(report: dict) -> str:
    """``reports/benchmarks.md``: machine, settings, the table and the pipeline overheads."""
    machine, cpu, settings = report["machine"], report["machine"]["cpu"], report["settings"]
    images = _fmt(settings["train_samples"]) if settings["train_samples"] else "all"
    lines = [
        "# Benchmark: aezoo's trainer (a) against plain `model.fit` on numpy (b)",
        "",
        f"- Date: {machine['date']}",
        f"- Machine: {cpu['model']}, {cpu['cores']} cores at {cpu['ghz']} GHz; "
        f"GPU: {', '.join(machine['gpu']) if machine['gpu'] else 'none'}",
        f"- Software: Python {machine['python']}, TensorFlow {machine['tensorflow']}, "
        f"Keras {machine['keras']}; TF_ENABLE_ONEDNN_OPTS={machine.get('onednn', '?')} "
        "in both arms",
        f"- CPU fp32 peak: {cpu['peak_gflops']} GFLOP/s = {cpu['peak_formula']} "
        f"= {cpu['cores']} x {cpu['ghz']} x {cpu['fp32_lanes']} x {2 if cpu['fma'] else 1} "
        f"x {cpu['fma_units_per_core']}, at the clock /proc/cpuinfo states (a core that boosts "
        "above it can exceed this figure)",
        f"- Settings: {images} training images, 1 warm-up epoch + "
        f"{settings['epochs_timed']} timed epochs per arm, arms alternating epoch by epoch; "
        f"aezoo settings {', '.join(settings['aezoo_settings'])}",
        f"- FLOPs: {settings['flops']}",
        "- Train samples/s: median over the timed epochs, training part only (and the "
        "slowest and fastest of them); epoch s "
        "includes validation on the held-out split; predict on the test split "
        "(a: the evaluate stage's batch size, b and c: `model.predict(x)`)",
        "- Arms: a is aezoo's trainer; b is `model.fit(x, y, shuffle=True)` as the seeds run "
        "it, the baseline of a/b; c is the same `model.fit` on a's batches in a's order "
        "(`shuffle=False` on arrays put in that order before the epoch's clock starts)",
        f"- Quality: ok when a's final val loss is at most c's "
        f"+ {settings['quality_tolerance']:.0%}; in brackets, a's against c's (same initial "
        "weights and seeds, same batches: what is left is round-off, which Adam amplifies)",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" for _ in HEADER) + "|",
        *("| " + " | ".join(row) + " |" for row in table_rows(report)),
        "",
        "## Pipeline overheads",
        "",
        "| command | seconds |",
        "|---|---|",
    ]
    overheads = report["overheads"]
    for script, seconds in overheads["entry_point_seconds"].items():
        command = script if script.startswith("python -c") else f"python pipeline/{script} --help"
        lines.append(f"| `{command}` | {seconds:.2f} |")
    for module, seconds in overheads.get("library_import_seconds", {}).items():
        stages = STAGE_LIBRARIES.get(module, "")
        lines.append(f"| `import {module}` (in `heavy_imports()`): {stages} | {seconds:.2f} |")
    if "dvc_status_seconds" in overheads:
        lines.append(f"| `dvc status` | {overheads['dvc_status_seconds']:.2f} |")
    if "dvc_repro_noop_seconds" in overheads:
        lines.append(f"| `dvc repro` (no-op) | {overheads['dvc_repro_noop_seconds']:.2f} |")
    else:
        lines.append(f"| `dvc repro` (no-op) | {overheads['dvc_repro']} |")
    return "\n".join(lines) + "\n"


def render_table(report: dict) -> str:
    """The benchmark table as aligned plain text, for the terminal."""
    rows = [HEADER, *table_rows(report)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
    )


# Everything in benchmarks.md from this line on is written by hand (how the trainer is made
# fast, pipeline timings, the history of earlier runs) and survives a new `make bench`.
HAND_WRITTEN = "<!-- Written by hand from here on: `make bench` keeps it. -->"


def kept_history(existing: Path) -> str:
    """The hand-written part of an existing benchmarks.md (from HAND_WRITTEN on), or ''."""
    if not existing.is_file():
        return ""
    text = existing.read_text()
    start = text.find(HAND_WRITTEN)
    return "" if start < 0 else "\n" + text[start:]


def write_report(report: dict, out_dir: Path) -> None:
    """Write ``benchmarks.json`` and ``benchmarks.md`` into ``out_dir`` atomically; the
    markdown keeps its hand-written part."""
    write_json(out_dir / "benchmarks.json", report)
    history = kept_history(out_dir / "benchmarks.md")
    with atomic_path(out_dir / "benchmarks.md") as temporary:
        temporary.write_text(render_markdown(report) + history)
