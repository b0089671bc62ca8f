"""Study stage frontier_trial: one model of the frontier study at one code size."""

from pathlib import Path

from aezoo.cli import run_stage, stage_parser
from aezoo.stages.trial import run_trial


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("model", help="a key of studies.frontier.models in params.yaml")
    parser.add_argument("code_size", type=int, help="units of the code")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, required=True, help="the trial's directory")
    args = parser.parse_args(argv)

    def work(params):
        spec = params.studies.frontier.variant(args.model, args.code_size)
        name = f"frontier_{args.model}_{args.code_size}"
        run_trial(params, name, spec, params.training.seed, args.data, args.out, bounds=False)

    run_stage(args.params, work, tensorflow_logs=args.tensorflow_logs)


if __name__ == "__main__":
    main()
