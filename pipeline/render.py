"""Stage render: one variant's figures (reconstructions, progress GIF, loss, code maps)."""

from pathlib import Path

from aezoo import stages
from aezoo.cli import run_stage, stage_parser


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("name", help="a key of variants: in params.yaml")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--reports", type=Path, default=Path("reports/variants"))
    args = parser.parse_args(argv)
    run_stage(
        args.params,
        lambda params: stages.render(
            params, args.name, args.data, args.models / args.name, args.reports / args.name
        ),
    )


if __name__ == "__main__":
    main()
