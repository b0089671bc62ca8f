"""Study stage frontier_pca: PCA's test error at each code size of the frontier study."""

from pathlib import Path

from aezoo.cli import run_stage, stage_parser
from aezoo.stages.study import pca_frontier


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, default=Path("data/studies/frontier/pca.npz"))
    args = parser.parse_args(argv)
    run_stage(
        args.params,
        lambda params: pca_frontier(params, args.data, args.out),
        tensorflow_logs=args.tensorflow_logs,
    )


if __name__ == "__main__":
    main()
