"""Stage prepare: decode the IDX files, hold out the validation split, store uint8 arrays."""

from pathlib import Path

from aezoo.cli import run_stage, stage_parser
from aezoo.stages import data as stages


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--raw", type=Path, default=Path("data/raw"), help="fetched files")
    parser.add_argument("--out", type=Path, default=Path("data/prepared/clean.npz"))
    args = parser.parse_args(argv)
    run_stage(
        args.params,
        lambda params: stages.prepare(params, args.raw, args.out),
        tensorflow_logs=args.tensorflow_logs,
    )


if __name__ == "__main__":
    main()
