"""Stage train: train one variant; write its encoder, decoder, autoencoder and history."""

from aezoo.cli import run_variant_stage
from aezoo.stages.train import train


def main(argv: list[str] | None = None) -> None:
    run_variant_stage(__doc__, train, argv)


if __name__ == "__main__":
    main()
