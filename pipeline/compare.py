"""Stage compare: every variant side by side: metrics.csv, summary.md, charts, index.html."""

from pathlib import Path

from aezoo.cli import run_stage, stage_parser
from aezoo.stages.compare import compare


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--variants", type=Path, default=Path("reports/variants"))
    parser.add_argument("--corruptions", type=Path, default=Path("reports/corruptions"))
    parser.add_argument(
        "--outputs",
        type=Path,
        default=Path("data/test_outputs"),
        help="evaluate's <variant>.npz files (values per test image, for the intervals)",
    )
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args(argv)
    run_stage(
        args.params,
        lambda params: compare(params, args.variants, args.out, args.corruptions, args.outputs),
        tensorflow_logs=args.tensorflow_logs,
    )


if __name__ == "__main__":
    main()
