"""Stage train: train one variant; write its encoder, decoder, autoencoder and history."""

from aezoo import stages
from aezoo.cli import run_variant_stage


def main(argv: list[str] | None = None) -> None:
    run_variant_stage(__doc__, stages.train, argv)


if __name__ == "__main__":
    main()
