"""Stage evaluate: test-set metrics of one variant, with PCA and classical baselines."""

from aezoo.cli import run_variant_stage
from aezoo.stages.evaluate import evaluate


def main(argv: list[str] | None = None) -> None:
    run_variant_stage(__doc__, evaluate, argv, test_outputs=True)


if __name__ == "__main__":
    main()
