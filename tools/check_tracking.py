"""Check the MLflow store: one complete run per variant (params, curves, metrics, figures, model).

Reads the store the track stage logs to (MLFLOW_TRACKING_URI, else mlflow.db at the
repository root) and exits 1 listing what is missing. Run it after `dvc repro`:
``python -m tools.check_tracking`` (a check on the results, not a DVC stage).
"""

from aezoo.cli import run_stage, stage_parser
from aezoo.config import Params
from aezoo.figures import figures_for


def expected_runs(
    params: Params, variants: list[str], dvc_experiment: str | None = None
) -> dict[str, tuple[int | None, list[str], bool | None]]:
    """Per variant: the epochs it trains, its figure files, and whether it is registered.

    A DVC experiment's runs may have other epochs or data than params.yaml: for them the
    epochs and the registration are each run's own (None)."""
    return {
        name: (
            None if dvc_experiment else params.epochs(name),
            [figure.file for figure in figures_for(params.variant(name))],
            None
            if dvc_experiment
            else params.tracking.register_models and params.is_full_run(name),
        )
        for name in variants
    }


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument(
        "variants", nargs="*", help="variants to check (default: every one in params.yaml)"
    )
    parser.add_argument("--dvc-exp", help="only the runs of this DVC experiment (DVC_EXP_NAME)")
    args = parser.parse_args(argv)

    def check(params: Params) -> None:
        from aezoo import tracking

        expected = expected_runs(params, args.variants or list(params.variants), args.dvc_exp)
        tracking.check(params.tracking, expected, args.dvc_exp)

    run_stage(args.params, check)


if __name__ == "__main__":
    main()
