"""Stage fetch: download the four canonical MNIST files (or copy a mirror's), verified."""

from pathlib import Path

from aezoo.cli import run_stage, stage_parser
from aezoo.stages import data as stages


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", type=Path, default=Path("data/raw"), help="output directory")
    args = parser.parse_args(argv)
    run_stage(
        args.params,
        lambda params: stages.fetch(params, args.out),
        tensorflow_logs=args.tensorflow_logs,
    )


if __name__ == "__main__":
    main()
