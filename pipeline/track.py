"""Stage track: mirror one variant (config, curves, test metrics, figures, model) into MLflow."""

from aezoo.cli import run_variant_stage
from aezoo.stages.track import track


def main(argv: list[str] | None = None) -> None:
    run_variant_stage(__doc__, track, argv)


if __name__ == "__main__":
    main()
