"""Smoke run: every stage of dvc.yaml on a small subset, one epoch per variant.

Runs ``dvc exp run --temp`` with the overrides in ``aezoo.ci.SMOKE_OVERRIDES`` (the stages up
to evaluation first in ``--lanes`` experiments at once): the workspace's outputs are
untouched. Then checks every variant's metrics are finite.
"""

from pathlib import Path

from aezoo import ci
from aezoo.cli import run_stage, stage_parser


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--name", default="smoke", help="the experiment's name")
    parser.add_argument(
        "--lanes",
        type=int,
        default=2,
        help="experiments run at once before the final one (1: a single experiment)",
    )
    parser.add_argument(
        "-S",
        "--set-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra override, e.g. -S training.max_epochs=2 (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.lanes < 1:
        parser.error(f"--lanes must be at least 1, got {args.lanes}")
    if bad := [item for item in args.set_param if "=" not in item]:
        parser.error(f"--set-param needs KEY=VALUE, got {bad[0]!r}")
    overrides = dict(item.split("=", 1) for item in args.set_param)
    run_stage(
        args.params, lambda params: ci.smoke(Path.cwd(), params, args.name, overrides, args.lanes)
    )


if __name__ == "__main__":
    main()
