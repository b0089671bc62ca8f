"""The PR report: what a branch changes against its base, from DVC's own diffs.

``make pr-report BASE=main`` writes ``reports/pr-report.md`` and its images beside it in
``reports/pr-report/``; CI posts that file as the pull request's comment with CML
(``cml comment update``), which uploads the images so they show inline. The report holds:

- the freshness gate first (:mod:`tools.freshness`): stale results write a report that says
  so, then fail;
- ``dvc params diff`` and ``dvc metrics diff`` against the merge base (a sentence instead of
  a table when nothing changed);
- for each changed variant, ``dvc plots diff``: its loss curves (DVC's Vega-Lite chart,
  drawn by :mod:`tools.vega`) and its reconstruction grid at base and head (image plots,
  declared in dvc.yaml's top-level ``plots:``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aezoo.cli import run_stage, stage_parser
from aezoo.config import Params
from aezoo.errors import PipelineError
from aezoo.io import atomic_path
from tools.commands import dvc, git
from tools.freshness import FIX_STALE, Freshness, freshness, stale_message
from tools.vega import vega_lite_png

VARIANT_REPORTS = Path("reports/variants")
HISTORY = "history.csv"  # the train stage's loss curves, a DVC plot
RECONSTRUCTIONS = "figures/reconstructions.png"  # the render stage's grid, a top-level plot
WORKSPACE = "workspace"  # DVC's name for the head side of a diff
COMMENT_LIMIT = 60_000  # GitHub refuses comments over 65,536 characters
TITLE = "# aezoo pipeline report\n"
STALE_LISTED = 40  # stale changes listed in the report (one code change can stale 100s)


def history_plot(name: str) -> str:
    return (VARIANT_REPORTS / name / HISTORY).as_posix()


def reconstructions_plot(name: str) -> str:
    return (VARIANT_REPORTS / name / RECONSTRUCTIONS).as_posix()


# ------------------------------------------------------------------------ revisions


@dataclass(frozen=True)
class Revisions:
    """The two sides of the report: the base's merge base, and HEAD plus the workspace."""

    base: str  # as given, e.g. origin/main
    base_sha: str  # short sha of the merge base
    head_sha: str
    dirty: bool  # uncommitted changes to tracked files

    @property
    def head(self) -> str:
        return f"`{self.head_sha}` + uncommitted changes" if self.dirty else f"`{self.head_sha}`"


def resolve_revisions(root: Path, base: str) -> Revisions:
    """Compare against the merge base, as GitHub does, not the base branch's newest commit."""
    try:
        git(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    except PipelineError:
        raise PipelineError(
            f"base revision {base!r} not found: fetch it (`git fetch origin main`) or pass "
            "another, e.g. `make pr-report BASE=origin/main`"
        ) from None
    merge_base = git(root, "merge-base", base, "HEAD")
    return Revisions(
        base=base,
        base_sha=git(root, "rev-parse", "--short", merge_base),
        head_sha=git(root, "rev-parse", "--short", "HEAD"),
        dirty=bool(git(root, "status", "--porcelain", "--untracked-files=no")),
    )


# ---------------------------------------------------------------- params and metrics


@dataclass(frozen=True)
class Diff:
    """One ``dvc params|metrics diff``: its JSON (what changed) and its Markdown table."""

    changes: dict[str, Any]
    table: str  # empty when nothing changed: DVC would print a header-only table


def dvc_diff(root: Path, kind: str, base: str) -> Diff:
    """``dvc <kind> diff <base>`` (kind: params or metrics); the table only if it has rows."""
    changes = json.loads(dvc(root, kind, "diff", base, "--json") or "{}")
    table = dvc(root, kind, "diff", base, "--md").strip() if changes else ""
    return Diff(changes=changes, table=table)


def changed_variants(
    params_diff: Mapping[str, Any], metrics_diff: Mapping[str, Any], names: Iterable[str]
) -> list[str]:
    """Variants named by a changed ``variants.<name>.*`` param or a changed metrics file."""
    touched = {
        key.split(".")[1]
        for changes in params_diff.values()
        for key in changes
        if key.startswith("variants.")
    }
    touched |= {
        Path(path).parent.name
        for path in metrics_diff
        if Path(path).parent.parent == VARIANT_REPORTS
    }
    order = list(names)
    return [name for name in order if name in touched] + sorted(touched - set(order))


def diff_section(title: str, table: str, unchanged: str) -> str:
    """A report section: DVC's table, or in words that nothing changed."""
    return f"## {title}\n\n{table or unchanged}\n"


def shorten_table(table: str, limit: int, left_out: str) -> str:
    """``table`` cut to whole rows within ``limit`` characters, saying how many were left out."""
    lines = table.splitlines()
    kept, size = lines[:2], sum(len(line) + 1 for line in lines[:2])
    for line in lines[2:]:
        if size + len(line) + 1 > limit:
            break
        kept.append(line)
        size += len(line) + 1
    dropped = len(lines) - len(kept)
    return "\n".join(kept) + (f"\n\n_{dropped} more rows {left_out}_" if dropped else "")


# --------------------------------------------------------------------------- figures


@dataclass
class VariantFigures:
    """A changed variant's images, as paths: its loss chart and its grid per side."""

    loss: Path | None = None
    grids: dict[str, Path] = field(default_factory=dict)  # "base" / "head" -> image


def plot_figures(
    plots: Mapping[str, list[dict[str, Any]]], base_sha: str, assets: Path
) -> dict[str, VariantFigures]:
    """The variants' figures from ``dvc plots diff --json``'s ``data``: each loss chart
    drawn as ``<assets>/<name>-loss.png``, each grid the image DVC wrote for its revision."""
    sides = {base_sha: "base", WORKSPACE: "head"}
    figures: dict[str, VariantFigures] = {}
    for plot_id, renderings in plots.items():
        path = Path(plot_id)
        name = path.parent.name if path.name == HISTORY else path.parent.parent.name
        variant = figures.setdefault(name, VariantFigures())
        for rendering in renderings:
            if rendering["type"] == "vega":
                variant.loss = vega_lite_png(rendering["content"], assets / f"{name}-loss.png")
            elif rendering["type"] == "image":
                (revision,) = rendering["revisions"]
                variant.grids[sides[revision]] = Path(rendering["url"])
    return figures


def write_figures(
    root: Path, base_sha: str, variants: list[str], assets: Path
) -> dict[str, VariantFigures]:
    """``dvc plots diff`` of the variants' loss curves and grids; images into ``assets``."""
    shutil.rmtree(assets, ignore_errors=True)  # an earlier report's images
    assets.mkdir(parents=True)
    if not variants:
        return {}
    targets = [
        plot for name in variants for plot in (history_plot(name), reconstructions_plot(name))
    ]
    diff = dvc(root, "plots", "diff", base_sha, "--json", "-o", str(assets), "--targets", *targets)
    return plot_figures(json.loads(diff).get("data", {}), base_sha, assets)


def figure_section(
    name: str, figures: VariantFigures, revisions: Revisions, relative_to: Path
) -> str:
    """A changed variant's loss chart and its two reconstruction grids, side by side."""

    def image(alt: str, path: Path | None) -> str:
        return f"![{alt}]({Path(os.path.relpath(path, relative_to)).as_posix()})" if path else ""

    parts = [f"### {name}\n"]
    if figures.loss:
        parts.append(image(f"{name}: loss per epoch, base and head", figures.loss) + "\n")
    if figures.grids:
        cells = [
            image(f"{name} reconstructions at {side}", figures.grids.get(side)) or "_absent_"
            for side in ("base", "head")
        ]
        parts += [
            f"| base `{revisions.base_sha}` | head {revisions.head} |",
            "|---|---|",
            f"| {cells[0]} | {cells[1]} |\n",
        ]
    return "\n".join(parts)


# ---------------------------------------------------------------------------- report


def report_markdown(
    revisions: Revisions,
    state: Freshness,
    params: Diff,
    metrics: Diff,
    variants: list[str],
    sections: list[str],
    run_url: str | None = None,
) -> str:
    """The report: freshness, DVC's params and metrics diffs, then each changed variant."""
    changed = ", ".join(f"`{name}`" for name in variants) if variants else "none"
    parts = [
        TITLE,
        f"Base `{revisions.base}` (merge base `{revisions.base_sha}`) against head "
        f"{revisions.head}.\n",
        "**Fresh:** `dvc status` shows no changed code, params or commands since the recorded "
        f"run ({len(state.absent)} DVC-cached outputs are not present here, as in any clone "
        "without the DVC cache).\n",
        f"**Changed variants:** {changed}\n",
        diff_section("Params", params.table, "No params changed."),
        diff_section("Metrics", metrics.table, "No metrics changed."),
        "## Figures\n",
        *(sections or ["No variant changed: no figures to compare.\n"]),
    ]
    if run_url:
        parts.append(f"Made by [this workflow run]({run_url}).\n")
    return "\n".join(parts)


def stale_report(stale: list[str]) -> str:
    """The report when the results are stale: what changed (the first few), and the fix."""
    listed = "\n".join(f"- `{line}`" for line in stale[:STALE_LISTED])
    if len(stale) > STALE_LISTED:
        listed += f"\n- and {len(stale) - STALE_LISTED} more (`make check-fresh` lists them all)"
    return (
        f"{TITLE}\n**Stale results:** `dvc status` shows changes that no run recorded in "
        f"dvc.lock, so the metrics are not this code's:\n\n{listed}\n\nFix: {FIX_STALE}.\n"
    )


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def pr_report(
    root: Path, params: Params, base: str, out: Path, run_url: str | None = None
) -> list[str]:
    """Write the PR report ``out`` and its images (``<out stem>/``); return changed variants.

    Stale results write a report that says so, then raise PipelineError: a PR cannot show
    numbers that its code did not produce.
    """
    revisions = resolve_revisions(root, base)
    state = freshness(root)
    if state.stale:
        _write_text(root / out, stale_report(state.stale))
        raise PipelineError(stale_message(state.stale))

    params_diff = dvc_diff(root, "params", revisions.base_sha)
    metrics_diff = dvc_diff(root, "metrics", revisions.base_sha)
    variants = changed_variants(params_diff.changes, metrics_diff.changes, params.variants)
    figures = write_figures(root, revisions.base_sha, variants, root / out.parent / out.stem)
    sections = [
        figure_section(name, figures[name], revisions, root / out.parent)
        for name in variants
        if name in figures
    ]
    text = report_markdown(revisions, state, params_diff, metrics_diff, variants, sections, run_url)
    if (excess := len(text) - COMMENT_LIMIT) > 0:
        left_out = f"left out to fit a comment: `dvc metrics diff {revisions.base_sha}` has all"
        table = shorten_table(metrics_diff.table, len(metrics_diff.table) - excess, left_out)
        metrics_diff = Diff(metrics_diff.changes, table)
        text = report_markdown(
            revisions, state, params_diff, metrics_diff, variants, sections, run_url
        )
    _write_text(root / out, text)
    print(f"wrote {out} and its images: changed variants: {', '.join(variants) or 'none'}")
    return variants


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--base", default="main", help="compare with this revision's merge base")
    parser.add_argument("--out", type=Path, default=Path("reports/pr-report.md"))
    parser.add_argument("--run-url", help="the CI run that made the report (linked at its end)")
    args = parser.parse_args(argv)
    run_stage(
        args.params,
        lambda params: pr_report(Path.cwd(), params, args.base, args.out, args.run_url),
        tensorflow_logs=args.tensorflow_logs,
    )


if __name__ == "__main__":
    main()
