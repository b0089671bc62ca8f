"""Study stages seeds_report, frontier_report and denoising_report: a study's tables and chart."""

from pathlib import Path

from aezoo.cli import run_stage, stage_parser
from aezoo.stages.study import denoising_report, frontier_report, seeds_report


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("study", choices=["seeds", "frontier", "denoising"])
    parser.add_argument("--trials", type=Path, required=True, help="the study's trials")
    parser.add_argument("--out", type=Path, default=Path("reports/studies"))
    args = parser.parse_args(argv)
    if args.study == "seeds":
        run_stage(
            args.params,
            lambda params: seeds_report(params, args.trials, args.out),
            tensorflow_logs=args.tensorflow_logs,
        )
    elif args.study == "denoising":
        run_stage(
            args.params,
            lambda params: denoising_report(params, args.trials, args.out),
            tensorflow_logs=args.tensorflow_logs,
        )
    else:
        pca = args.trials / "pca.npz"
        run_stage(
            args.params,
            lambda params: frontier_report(params, args.trials, pca, args.out),
            tensorflow_logs=args.tensorflow_logs,
        )


if __name__ == "__main__":
    main()
