"""Stage render: one variant's figures (reconstructions, progress GIF, loss, code maps)."""

from aezoo.cli import run_variant_stage
from aezoo.stages.render import render


def main(argv: list[str] | None = None) -> None:
    run_variant_stage(__doc__, render, argv, test_outputs=True)


if __name__ == "__main__":
    main()
