"""Stage corrupt: a reproducible corrupted copy of every split, and its test statistics."""

from pathlib import Path

from aezoo.cli import run_stage, stage_parser
from aezoo.stages import corrupt as stages


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("name", help="a key of corruptions: in params.yaml")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--reports", type=Path, default=Path("reports/corruptions"))
    args = parser.parse_args(argv)
    run_stage(
        args.params,
        lambda params: stages.corrupt(
            params,
            args.name,
            clean_path=args.data / "clean.npz",
            out_path=args.data / f"{args.name}.npz",
            stats_path=args.reports / f"{args.name}.json",
        ),
        tensorflow_logs=args.tensorflow_logs,
    )


if __name__ == "__main__":
    main()
