"""PR report: params, metrics and figure diffs against a base revision, from DVC's own diffs.

Fails, saying what to run, when the committed results are stale (``dvc status``).
"""

from pathlib import Path

from aezoo import ci
from aezoo.cli import run_stage, stage_parser


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--base", default="main", help="compare with this revision's merge base")
    parser.add_argument("--out", type=Path, default=Path("reports/pr-report.md"))
    parser.add_argument("--run-url", help="the CI run whose artifacts hold the figures")
    parser.add_argument(
        "--check-only", action="store_true", help="only check that the results are fresh"
    )
    args = parser.parse_args(argv)
    root = Path.cwd()
    run_stage(
        args.params,
        lambda params: (
            ci.check_fresh(root)
            if args.check_only
            else ci.pr_report(root, params, args.base, args.out, args.run_url)
        ),
    )


if __name__ == "__main__":
    main()
