"""Stage evaluate: test-set metrics of one variant, with PCA and classical baselines."""

from aezoo import stages
from aezoo.cli import run_variant_stage


def main(argv: list[str] | None = None) -> None:
    run_variant_stage(__doc__, stages.evaluate, argv, test_outputs=True)


if __name__ == "__main__":
    main()
