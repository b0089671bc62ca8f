"""Study stage seed_trial: a zoo variant trained again with another seed, scored on test."""

from pathlib import Path

from aezoo.cli import run_stage, stage_parser
from aezoo.stages.trial import run_trial


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("variant", help="a key of variants: in params.yaml")
    parser.add_argument("seed", type=int, help="the training seed of this run")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, required=True, help="the trial's directory")
    args = parser.parse_args(argv)

    def work(params):
        spec = params.variant(args.variant)
        name = f"{args.variant}_seed{args.seed}"
        run_trial(params, name, spec, args.seed, args.data, args.out, bounds=True)

    run_stage(args.params, work, tensorflow_logs=args.tensorflow_logs)


if __name__ == "__main__":
    main()
