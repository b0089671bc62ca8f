"""Benchmark aezoo's trainer against plain model.fit on numpy; write reports/benchmarks.*.

Not a DVC stage: run it with `make bench` when the code or the training settings change.
"""

from pathlib import Path

from aezoo.cli import run_stage, stage_parser


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--variants", help="comma-separated variant names (default: all)")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs after 1 warm-up")
    parser.add_argument(
        "--train-samples", type=int, default=20_000, help="training images used (0: all)"
    )
    parser.add_argument(
        "--jit-compile",
        help="comma-separated true/false to compare (default: training.jit_compile)",
    )
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--skip-dvc", action="store_true", help="do not time a no-op dvc repro")
    args = parser.parse_args(argv)

    def bench(params):
        from aezoo import benchmark  # TensorFlow: imported only once the arguments are valid

        benchmark.main(params, args)

    run_stage(args.params, bench)


if __name__ == "__main__":
    main()
