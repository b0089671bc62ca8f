"""Study stage denoise_trial: one of the denoising study's autoencoders at one noise level."""

from pathlib import Path

from aezoo.cli import run_stage, stage_parser
from aezoo.stages.trial import run_trial


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("model", help="a key of studies.denoising.models in params.yaml")
    parser.add_argument("std", type=float, help="one of studies.denoising.noise_levels")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, required=True, help="the trial's directory")
    args = parser.parse_args(argv)

    def work(params):
        study = params.studies.denoising
        noise = study.noise(args.std)
        spec = study.variant(args.model)
        name = f"denoise_{args.model}_{args.std:g}".replace(".", "_")
        seed = params.training.seed
        run_trial(params, name, spec, seed, args.data, args.out, bounds=False, noise=noise)

    run_stage(args.params, work, tensorflow_logs=args.tensorflow_logs)


if __name__ == "__main__":
    main()
