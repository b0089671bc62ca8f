"""Study stage denoise_classical: the classical denoisers at one noise level."""

from pathlib import Path

from aezoo.cli import run_stage, stage_parser
from aezoo.stages.denoising import classical_denoising, default_workers


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("std", type=float, help="one of studies.denoising.noise_levels")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, required=True, help="the level's directory")
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="processes for NL-means and BM3D (default: every CPU; no number depends on it)",
    )
    args = parser.parse_args(argv)
    run_stage(
        args.params,
        lambda params: classical_denoising(params, args.std, args.data, args.out, args.workers),
        tensorflow_logs=args.tensorflow_logs,
    )


if __name__ == "__main__":
    main()
