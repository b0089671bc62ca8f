"""The typed schema of ``params.yaml``: the single source of truth for every stage.

Every section is a frozen pydantic model that forbids unknown keys, so a typo such as
``corruptions.gauss.stdd`` fails before any work with a message naming the full key path.
Load it with :func:`load_params`; stages receive the validated :class:`Params` object.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from aezoo.errors import ConfigError

IMAGE_SIDE = 28
CANONICAL_MNIST_SOURCES = [
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
]


class StrictModel(BaseModel):
    """Base of every section: immutable, and unknown keys are errors (see ``_format_error``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- data


class DataConfig(StrictModel):
    """Where MNIST comes from and how it is split."""

    mirror: str | None = Field(
        None,
        description="A local directory or base URL holding the four IDX gz files. When set "
        "(here or via AEZOO_MNIST_MIRROR) it is the only source.",
    )
    sources: list[str] = Field(
        default_factory=lambda: list(CANONICAL_MNIST_SOURCES),
        min_length=1,
        description="Public base URLs tried in order when no mirror is set.",
    )
    download_retries: PositiveInt = 3
    download_timeout_s: PositiveFloat = 30.0
    validation_size: int = Field(5000, gt=0, lt=60000)
    train_subset: PositiveInt | None = Field(
        None, description="Keep only the first N training images (smoke runs)."
    )
    val_subset: PositiveInt | None = None
    test_subset: PositiveInt | None = None


# -------------------------------------------------------------------- corruptions


class _Corruption(StrictModel):
    seed: int = Field(0, ge=0, description="Seed of the noise; same seed, same bytes.")
    clip: bool = Field(True, description="Clip the corrupted image to [0, 1].")


class GaussianNoise(_Corruption):
    """``x + mean + std * N(0, 1)``; seed 001 uses std=0.5, seed 000 mean=0.5, std=0.5."""

    kind: Literal["gaussian"]
    mean: float = 0.0
    std: PositiveFloat


class SaltAndPepper(_Corruption):
    """Set a fraction ``amount`` of pixels to 0 or 1 (``salt_ratio`` of them to 1)."""

    kind: Literal["salt_and_pepper"]
    amount: float = Field(gt=0, le=1)
    salt_ratio: float = Field(0.5, ge=0, le=1)


class RandomMask(_Corruption):
    """Set a random fraction of pixels to ``fill``."""

    kind: Literal["mask"]
    fraction: float = Field(gt=0, lt=1)
    fill: float = Field(0.0, ge=0, le=1)


Corruption = Annotated[GaussianNoise | SaltAndPepper | RandomMask, Field(discriminator="kind")]
CORRUPTION_KINDS = ("gaussian", "salt_and_pepper", "mask")

# ----------------------------------------------------------------------- variants


class OptimizerConfig(StrictModel):
    """A Keras optimiser by name; Adadelta at learning rate 1.0 reproduces Keras 2 seeds."""

    name: Literal["adam", "adadelta", "rmsprop", "sgd"] = "adam"
    learning_rate: PositiveFloat = 0.001


class _Variant(StrictModel):
    description: str = ""
    input: str = Field(description="'clean', or the name of a corruption: the model then denoises.")
    fresh_noise: bool = Field(
        False, description="Draw new noise every epoch instead of the corrupt stage's copy."
    )
    optimizer: OptimizerConfig = OptimizerConfig()
    epochs: PositiveInt
    batch_size: PositiveInt
    reference: dict[str, float] = Field(
        default_factory=dict,
        description="Published figures of the seed this variant reproduces, e.g. {mse: 0.023}.",
    )

    @property
    def denoising(self) -> bool:
        """True when the model learns to map corrupted inputs to clean targets."""
        return self.input != "clean"


class DenseVariant(_Variant):
    """Fully connected encoder and decoder, optionally sparse (L1 on the code)."""

    family: Literal["dense"]
    encoder_units: list[PositiveInt] = []
    code_size: PositiveInt
    decoder_units: list[PositiveInt] | None = Field(
        None, description="Hidden layers of the decoder; default: encoder_units reversed."
    )
    activation: str = "relu"
    code_activation: str = "relu"
    output_activation: Literal["sigmoid", "tanh", "linear"] = "sigmoid"
    activity_l1: NonNegativeFloat = Field(0.0, description="L1 penalty on the code (sparse AE).")
    loss: Literal["mse", "bce"]


class ConvVariant(_Variant):
    """Conv + max-pool encoder, conv + up-sampling decoder (the Keras blog's design)."""

    family: Literal["conv"]
    encoder_filters: list[PositiveInt] = Field(min_length=1)
    decoder_filters: list[PositiveInt] | None = Field(
        None, description="Default: encoder_filters reversed."
    )
    kernel_size: PositiveInt = 3
    loss: Literal["mse", "bce"]

    @property
    def code_size(self) -> int:
        """Units of the code: the encoder's last feature map, flattened."""
        side = IMAGE_SIDE
        for _ in self.encoder_filters:
            side = math.ceil(side / 2)
        return side * side * self.encoder_filters[-1]


class StridedConvVariant(_Variant):
    """Strided conv encoder with a dense code, transposed-conv decoder."""

    family: Literal["strided_conv"]
    filters: list[PositiveInt] = Field(min_length=1, max_length=2)
    code_size: PositiveInt
    kernel_size: PositiveInt = 3
    loss: Literal["mse", "bce"]


class VAEVariant(_Variant):
    """Variational autoencoder; the loss is the negative ELBO (summed BCE + KL) per image."""

    family: Literal["vae"]
    encoder_units: list[PositiveInt] = Field(min_length=1)
    code_size: PositiveInt
    decoder_units: list[PositiveInt] | None = None
    activation: str = "relu"
    loss: Literal["elbo"] = "elbo"


Variant = Annotated[
    DenseVariant | ConvVariant | StridedConvVariant | VAEVariant, Field(discriminator="family")
]
VARIANT_FAMILIES = ("dense", "conv", "strided_conv", "vae")

# ------------------------------------------------------------------ the other parts


class TrainingConfig(StrictModel):
    """Settings shared by every variant's training."""

    seed: int = Field(42, ge=0)
    max_epochs: PositiveInt | None = Field(
        None, description="Cap every variant's epochs (smoke runs); null trains in full."
    )
    progress_digits: PositiveInt = Field(
        10, description="Fixed test digits reconstructed after every epoch for the GIF."
    )
    jit_compile: bool = Field(
        False, description="Compile the training epoch (one compiled step) with XLA."
    )


class EvaluationConfig(StrictModel):
    """The evaluate stage: test-set metrics, baselines and code-space probes."""

    batch_size: PositiveInt = 1000
    iwae_samples: PositiveInt = Field(
        100, description="Importance samples per image for the VAE's log-likelihood bound."
    )
    probe_train_samples: PositiveInt | None = Field(
        10000, description="Training-split codes the linear probe is fit on (null: all)."
    )
    filter_sizes: list[PositiveInt] = Field(
        [3, 5], min_length=1, description="Median-filter widths tried on the validation split."
    )
    filter_sigmas: list[PositiveFloat] = Field(
        [0.5, 0.75, 1.0, 1.5], min_length=1, description="Gaussian-filter sigmas tried likewise."
    )


class RenderConfig(StrictModel):
    """The render stage: figures, progress GIF and code-space maps."""

    grid_digits: PositiveInt = Field(10, description="Test digits per row of the grids.")
    code_map_samples: PositiveInt = Field(
        2000, description="Test codes shown in the code-space maps (t-SNE stays fast)."
    )
    vae_grid_side: PositiveInt = Field(10, description="Prior samples: a side x side grid.")
    manifold_side: PositiveInt = Field(20, description="2-D latent manifold: side x side.")
    interpolation_steps: PositiveInt = 10
    gif_frame_ms: PositiveInt = 400


class TrackingConfig(StrictModel):
    """MLflow: where runs go (MLFLOW_TRACKING_URI overrides the embedded SQLite store)."""

    enabled: bool = Field(
        True, description="Log every variant's run to MLflow; false switches tracking off."
    )
    experiment: str = Field("aezoo", min_length=1)
    register_models: bool = Field(True, description="Register each model as aezoo-<variant>.")
    timeout_s: PositiveFloat = Field(
        20.0, description="Give up on an unreachable tracking server after this long."
    )


class Params(StrictModel):
    """The whole of ``params.yaml``."""

    data: DataConfig = DataConfig()
    corruptions: dict[str, Corruption] = {}
    training: TrainingConfig = TrainingConfig()
    variants: dict[str, Variant] = {}
    evaluation: EvaluationConfig = EvaluationConfig()
    render: RenderConfig = RenderConfig()
    tracking: TrackingConfig = TrackingConfig()

    @model_validator(mode="after")
    def _inputs_name_corruptions(self) -> Params:
        for name, variant in self.variants.items():
            if variant.input != "clean" and variant.input not in self.corruptions:
                choices = ", ".join(["clean", *self.corruptions])
                raise PydanticCustomError(
                    "unknown_input",
                    "unknown input '{input}' (expected one of: {choices})",
                    {"key": f"variants.{name}.input", "input": variant.input, "choices": choices},
                )
        return self

    def variant(self, name: str) -> DenseVariant | ConvVariant | StridedConvVariant | VAEVariant:
        """The named variant; a clear error lists the known ones."""
        if name not in self.variants:
            raise ConfigError(
                f"variants.{name}: no such variant (known: {', '.join(self.variants)})"
            )
        return self.variants[name]

    def corruption(self, name: str) -> GaussianNoise | SaltAndPepper | RandomMask:
        """The named corruption; a clear error lists the known ones."""
        if name not in self.corruptions:
            known = ", ".join(self.corruptions)
            raise ConfigError(f"corruptions.{name}: no such corruption (known: {known})")
        return self.corruptions[name]


# ----------------------------------------------------------------------- loading


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The section model that holds the last key of ``loc`` (for unknown-key hints)."""
    node: Any = Params
    for part in loc:
        if isinstance(node, type) and issubclass(node, BaseModel):
            node = node.model_fields[part].annotation if part in node.model_fields else None
        elif get_origin(node) is dict:
            node = get_args(node)[1]
        elif get_origin(node) is Annotated:  # a discriminated union: ``part`` is the tag
            members = get_args(get_args(node)[0])
            node = next(
                (m for m in members if part in get_args(m.model_fields[_tag(m)].annotation)), None
            )
        if node is None:
            return None
    return node if isinstance(node, type) and issubclass(node, BaseModel) else None


def _tag(member: type[BaseModel]) -> str:
    return "kind" if "kind" in member.model_fields else "family"


_UNION_TAGS = {*CORRUPTION_KINDS, *VARIANT_FAMILIES}


def _format_error(error: dict[str, Any]) -> str:
    raw_loc = tuple(error["loc"])
    loc = [str(part) for part in raw_loc]
    # pydantic puts the discriminator's value in the path of union members: drop it.
    if len(loc) > 2 and loc[0] in ("corruptions", "variants") and loc[2] in _UNION_TAGS:
        del loc[2]
    ctx = error.get("ctx") or {}
    if error["type"] == "unknown_input":
        return f"{ctx['key']}: {error['msg']}"
    path = ".".join(loc) or "<top level>"
    if error["type"] == "extra_forbidden":
        model = _model_at(raw_loc[:-1])
        allowed = list(model.model_fields) if model else []
        close = difflib.get_close_matches(loc[-1], allowed, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return f"{path}: unknown key ({hint}allowed: {', '.join(allowed)})"
    message = error["msg"]
    if error["type"] != "missing":
        message += f", got {error['input']!r}"
    return f"{path}: {message}"


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate an already-parsed mapping; raises :class:`ConfigError` naming every bad key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(raw).__name__}"
        )
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = [_format_error(err) for err in exc.errors()]
        raise ConfigError(f"{source} is invalid:\n  " + "\n  ".join(lines)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``; every stage starts here, before any work."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (run from the repository root)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_params(raw, str(path))
