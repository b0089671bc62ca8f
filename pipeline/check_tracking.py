"""Check the MLflow store: one complete run per variant (params, curves, metrics, figures, model).

Reads the store the stages log to (MLFLOW_TRACKING_URI, else mlflow.db at the repository
root) and exits 1 listing what is missing. Run it after `dvc repro`.
"""

from aezoo import tracking
from aezoo.cli import run_stage, stage_parser


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument(
        "variants", nargs="*", help="variants to check (default: every one in params.yaml)"
    )
    parser.add_argument("--dvc-exp", help="only the runs of this DVC experiment (DVC_EXP_NAME)")
    args = parser.parse_args(argv)
    run_stage(
        args.params,
        lambda params: tracking.check(params, args.variants or params.variants, args.dvc_exp),
    )


if __name__ == "__main__":
    main()
