"""The typed schema of ``params.yaml``: the single source of truth for every stage.

Every section is a frozen pydantic model that forbids unknown keys, so a typo such as
``corruptions.gauss.stdd`` fails before any work with a message naming the full key path.
Load it with :func:`load_params`; stages receive the validated :class:`Params` object.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    TypeAdapter,
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
    """Where MNIST comes from and how it is split.

    Settings that change a number have no default: ``params.yaml`` spells each one out, so
    ``dvc params diff`` shows every change. Where the bytes come from (``mirror``,
    ``sources``, retries) changes no number: the files are checksum-verified.
    """

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
    validation_size: int = Field(gt=0, lt=60000)
    train_subset: PositiveInt | None = Field(
        description="Keep only the first N training images (smoke runs); null keeps all."
    )
    val_subset: PositiveInt | None
    test_subset: PositiveInt | None

    @property
    def full(self) -> bool:
        """True when every split is whole (no subset): the data the published numbers use."""
        return (self.train_subset, self.val_subset, self.test_subset) == (None, None, None)


# -------------------------------------------------------------------- corruptions


class _Corruption(StrictModel):
    seed: int = Field(ge=0, description="Seed of the noise; same seed, same bytes.")
    clip: bool = Field(description="Clip the corrupted image to [0, 1].")


class GaussianNoise(_Corruption):
    """``x + mean + std * N(0, 1)``; seed 001 uses std=0.5, seed 000 mean=0.5, std=0.5."""

    kind: Literal["gaussian"]
    mean: float
    std: PositiveFloat


class SaltAndPepper(_Corruption):
    """Set a fraction ``amount`` of pixels to 0 or 1 (``salt_ratio`` of them to 1)."""

    kind: Literal["salt_and_pepper"]
    amount: float = Field(gt=0, le=1)
    salt_ratio: float = Field(ge=0, le=1)


class RandomMask(_Corruption):
    """Set a random fraction of pixels to ``fill``."""

    kind: Literal["mask"]
    fraction: float = Field(gt=0, lt=1)
    fill: float = Field(ge=0, le=1)


Corruption = Annotated[GaussianNoise | SaltAndPepper | RandomMask, Field(discriminator="kind")]
CORRUPTION_KINDS = ("gaussian", "salt_and_pepper", "mask")

# ----------------------------------------------------------------------- variants
#
# A variant is a network (``architecture``: dense, conv, strided_conv) trained for an
# objective (``objective``: autoencoder, variational). Code branches on what a variant
# does (``variational``, ``denoising``, ``code_size``), never on a name.

Activation = Literal["relu", "sigmoid", "tanh", "linear", "elu", "selu", "gelu", "softplus"]


class OptimizerConfig(StrictModel):
    """A Keras optimiser by name; Adadelta at learning rate 1.0 reproduces Keras 2 seeds."""

    name: Literal["adam", "adadelta", "rmsprop", "sgd"]
    learning_rate: PositiveFloat


class _Variant(StrictModel):
    description: str = ""
    objective: Literal["autoencoder", "variational"] = Field(
        description="autoencoder: reconstruct with `loss`; variational: a VAE, trained on the "
        "negative ELBO (summed pixel BCE + KL), `loss: elbo`."
    )
    input: str = Field(description="'clean', or the name of a corruption: the model then denoises.")
    fresh_noise: bool = Field(
        description="Draw new noise every epoch instead of the corrupt stage's copy."
    )
    loss: Literal["mse", "bce", "elbo"]
    optimizer: OptimizerConfig
    epochs: PositiveInt
    batch_size: PositiveInt
    output_activation: Activation
    reference: dict[str, float] = Field(
        default_factory=dict,
        description="Published figures of the seed this variant reproduces, e.g. {mse: 0.023}.",
    )

    @property
    def denoising(self) -> bool:
        """True when the model learns to map corrupted inputs to clean targets."""
        return self.input != "clean"

    @property
    def variational(self) -> bool:
        """True for a VAE: the encoder gives a posterior (mean, log-variance), the decoder
        is a generator, and the model is judged by its ELBO too."""
        return self.objective == "variational"

    @model_validator(mode="after")
    def _objective_fits(self) -> _Variant:
        if self.variational != (self.loss == "elbo"):
            raise PydanticCustomError(
                "objective_loss",
                "objective '{objective}' needs loss {wanted}, got '{loss}'",
                {
                    "objective": self.objective,
                    "loss": self.loss,
                    "wanted": "'elbo'" if self.variational else "'mse' or 'bce'",
                },
            )
        if self.loss in ("bce", "elbo") and self.output_activation != "sigmoid":
            raise PydanticCustomError(
                "objective_loss",
                "loss '{loss}' compares probabilities: output_activation must be 'sigmoid', "
                "got '{output}'",
                {"loss": self.loss, "output": self.output_activation},
            )
        return self


class DenseVariant(_Variant):
    """Fully connected encoder and decoder, optionally sparse (L1 on the code)."""

    architecture: Literal["dense"]
    encoder_units: list[PositiveInt]
    code_size: PositiveInt
    decoder_units: list[PositiveInt]
    activation: Activation
    code_activation: Activation = Field(description="The code layer's (linear for a VAE).")
    activity_l1: NonNegativeFloat = Field(description="L1 penalty on the code (sparse AE).")
    pca_start: bool = Field(
        description="Start as PCA: a linear path from the image to the code and back, set to "
        "the training split's top code_size principal components, beside the hidden layers, "
        "whose last layers start at zero. Training then learns a nonlinear correction to PCA."
    )

    @model_validator(mode="after")
    def _pca_start_is_linear(self) -> DenseVariant:
        wanted = (self.objective, self.code_activation, self.output_activation)
        if self.pca_start and wanted != ("autoencoder", "linear", "linear"):
            raise PydanticCustomError(
                "objective_loss",
                "pca_start needs objective 'autoencoder' with code_activation and "
                "output_activation 'linear' (the network must equal PCA at the start), got "
                "'{objective}', '{code}', '{output}'",
                {"objective": wanted[0], "code": wanted[1], "output": wanted[2]},
            )
        return self


class ConvVariant(_Variant):
    """Conv + max-pool encoder, conv + up-sampling decoder (the Keras blog's design).

    The code is the last feature map itself, so this network is an autoencoder only.
    """

    architecture: Literal["conv"]
    encoder_filters: list[PositiveInt] = Field(min_length=1)
    decoder_filters: list[PositiveInt] = Field(min_length=1)
    kernel_size: PositiveInt
    activation: Activation

    @property
    def code_size(self) -> int:
        """Units of the code: the encoder's last feature map, flattened."""
        side = IMAGE_SIDE
        for _ in self.encoder_filters:
            side = math.ceil(side / 2)
        return side * side * self.encoder_filters[-1]

    @model_validator(mode="after")
    def _dense_code_for_vae(self) -> ConvVariant:
        if self.variational:
            raise PydanticCustomError(
                "objective_loss",
                "objective 'variational' needs a dense code: use architecture 'dense' or "
                "'strided_conv' (conv's code is its last feature map)",
                {},
            )
        return self


class StridedConvVariant(_Variant):
    """Strided convs, optional dense layers, a dense code; dense and transposed convs back."""

    architecture: Literal["strided_conv"]
    filters: list[PositiveInt] = Field(min_length=1, max_length=2)
    hidden_units: list[PositiveInt] = Field(
        description="Dense layers between the flattened feature map and the code."
    )
    code_size: PositiveInt
    kernel_size: PositiveInt
    activation: Activation
    code_activation: Activation


Variant = Annotated[
    DenseVariant | ConvVariant | StridedConvVariant, Field(discriminator="architecture")
]
AnyVariant = DenseVariant | ConvVariant | StridedConvVariant
ARCHITECTURES = ("dense", "conv", "strided_conv")
_VARIANT = TypeAdapter(Variant)

# ------------------------------------------------------------------ the other parts


class TrainingConfig(StrictModel):
    """Settings shared by every variant's training."""

    seed: int = Field(ge=0)
    max_epochs: PositiveInt | None = Field(
        description="Cap every variant's epochs (smoke runs); null trains in full."
    )
    patience: PositiveInt | None = Field(
        description="Model selection on the validation split: keep the epoch with the lowest "
        "validation loss and stop after this many epochs without a new lowest (a variant's "
        "epochs are the maximum); null trains every epoch and keeps the last (the seeds')."
    )
    progress_digits: PositiveInt = Field(
        description="Fixed test digits reconstructed after every epoch for the GIF."
    )
    jit_compile: bool = Field(
        description="Compile the training epoch (one compiled step) with XLA."
    )


class EvaluationConfig(StrictModel):
    """The evaluate stage: test-set metrics, baselines and code-space probes."""

    batch_size: PositiveInt
    iwae_samples: PositiveInt = Field(
        description="Importance samples per image for the VAE's log-likelihood bound."
    )
    probe_train_samples: PositiveInt | None = Field(
        description="Training-split codes the linear probe is fit on (null: all)."
    )
    filter_sizes: list[PositiveInt] = Field(
        min_length=1, description="Median-filter widths tried on the validation split."
    )
    filter_sigmas: list[PositiveFloat] = Field(
        min_length=1, description="Gaussian-filter sigmas tried likewise."
    )


class RenderConfig(StrictModel):
    """What the figures show (evaluate computes it) and how they are drawn (render)."""

    grid_digits: PositiveInt = Field(description="Test digits per row of the grids.")
    code_map_samples: PositiveInt = Field(
        description="Test codes shown in the code-space maps (t-SNE stays fast)."
    )
    vae_grid_side: PositiveInt = Field(description="Prior samples: a side x side grid.")
    manifold_side: PositiveInt = Field(description="2-D latent manifold: side x side.")
    interpolation_steps: PositiveInt
    gif_frame_ms: PositiveInt


class ComparisonConfig(StrictModel):
    """How sure the report's figures are: bootstrap intervals over the test images."""

    bootstrap_resamples: int = Field(
        ge=100, description="Resamples of the test images per interval."
    )
    confidence_level: float = Field(gt=0, lt=1, description="The intervals' coverage.")
    seed: int = Field(ge=0, description="Seed of the resampling; same seed, same intervals.")


class SeedStudy(StrictModel):
    """Run-to-run spread: some variants trained again with other seeds."""

    variants: list[str] = Field(min_length=1, description="Variants of `variants:` to retrain.")
    seeds: list[Annotated[int, Field(ge=0)]] = Field(
        min_length=2, description="training.seed values, one run each."
    )


class FrontierStudy(StrictModel):
    """Test MSE against code size: each model trained at every code size, beside PCA."""

    code_sizes: list[int] = Field(min_length=1, description="Code units, each 1 to 784.")
    models: dict[str, dict[str, Any]] = Field(
        min_length=1,
        description="Each a variant spelled out as under `variants:`, without code_size.",
    )

    @model_validator(mode="after")
    def _models_are_variants(self) -> FrontierStudy:
        if bad := [size for size in self.code_sizes if not 0 < size <= IMAGE_SIDE**2]:
            raise PydanticCustomError(
                "study", "code_sizes: every size must be 1 to 784, got {bad}", {"bad": bad}
            )
        for model in self.models:
            if problems := self._problems(model, self.code_sizes[0]):
                raise PydanticCustomError("study", "; ".join(problems), {})
        return self

    def _problems(self, model: str, code_size: int) -> list[str]:
        """What is wrong with model ``model`` at ``code_size``, one line per bad key."""
        template = self.models[model]
        if "code_size" in template:
            return [f"models.{model}.code_size: set by code_sizes, leave it out"]
        try:
            _VARIANT.validate_python({**template, "code_size": code_size})
        except ValidationError as exc:
            return [
                ".".join(["models", model, *(str(part) for part in error["loc"][1:])])
                + f": {error['msg']}"
                for error in exc.errors()
            ]
        return []

    def variant(self, model: str, code_size: int) -> AnyVariant:
        """Model ``model`` of the study at ``code_size``; a clear error names a bad key."""
        if model not in self.models:
            known = ", ".join(self.models)
            raise ConfigError(f"studies.frontier.models.{model}: no such model (known: {known})")
        if not 0 < code_size <= IMAGE_SIDE**2:
            raise ConfigError(f"studies.frontier: a code size must be 1 to 784, got {code_size}")
        if problems := self._problems(model, code_size):
            raise ConfigError("studies.frontier: " + "; ".join(problems))
        return _VARIANT.validate_python({**self.models[model], "code_size": code_size})


class NLMeansSettings(StrictModel):
    """Non-local means (scikit-image): ``h`` is tried as these factors of the noise std."""

    h_factors: list[PositiveFloat] = Field(min_length=1)
    patch_size: PositiveInt
    patch_distance: PositiveInt


class DenoisingStudy(StrictModel):
    """PSNR against the level of Gaussian noise (``x + std * N(0, 1)``, not clipped): an
    autoencoder trained at each level beside classical denoisers whose settings are chosen
    on validation images. BM3D is slow, so every method is compared on one fixed test subset.
    """

    noise_levels: list[Annotated[float, Field(gt=0, le=2)]] = Field(
        min_length=1, description="Standard deviations of the noise, each above 0, at most 2."
    )
    seed: int = Field(ge=0, description="Seed of the noise and of the image subsets.")
    test_images: PositiveInt = Field(description="The test subset every method is scored on.")
    validation_images: PositiveInt = Field(
        description="The validation subset the classical methods' settings are chosen on."
    )
    gaussian_sigmas: list[PositiveFloat] = Field(min_length=1)
    median_sizes: list[PositiveInt] = Field(min_length=1)
    pca_components: list[Annotated[int, Field(ge=1, le=IMAGE_SIDE**2)]] = Field(min_length=1)
    nl_means: NLMeansSettings
    bm3d_sigma_factors: list[PositiveFloat] = Field(
        min_length=1, description="BM3D's assumed noise level, as factors of the true std."
    )
    models: dict[str, dict[str, Any]] = Field(
        min_length=1,
        description="The autoencoders trained at each level, each a variant spelled out as "
        "under `variants:`, without input (the study's noise is its input). At each level "
        "the one with the best validation PSNR stands for the autoencoders.",
    )

    INPUT: ClassVar[str] = "study_noise"  # the models' input: the study's own noise

    @model_validator(mode="after")
    def _models_are_variants(self) -> DenoisingStudy:
        problems = [line for model in self.models for line in self._problems(model)]
        if problems:
            raise PydanticCustomError("study", "; ".join(problems), {})
        return self

    def _problems(self, model: str) -> list[str]:
        """What is wrong with model ``model``, one line per bad key."""
        template = self.models[model]
        if "input" in template:
            return [f"models.{model}.input: set by the study (its noise), leave it out"]
        try:
            _VARIANT.validate_python({**template, "input": self.INPUT})
        except ValidationError as exc:
            return [
                ".".join(["models", model, *(str(part) for part in error["loc"][1:])])
                + f": {error['msg']}"
                for error in exc.errors()
            ]
        return []

    def variant(self, model: str) -> AnyVariant:
        """The study's autoencoder ``model``, a denoiser of the study's noise."""
        if model not in self.models:
            known = ", ".join(self.models)
            raise ConfigError(f"studies.denoising.models.{model}: no such model (known: {known})")
        return _VARIANT.validate_python({**self.models[model], "input": self.INPUT})

    def noise(self, std: float) -> GaussianNoise:
        """The study's noise at level ``std`` (one of ``noise_levels``)."""
        if std not in self.noise_levels:
            known = ", ".join(f"{level:g}" for level in self.noise_levels)
            raise ConfigError(f"studies.denoising: no noise level {std:g} (known: {known})")
        return GaussianNoise(kind="gaussian", mean=0.0, std=std, clip=False, seed=self.seed)


class StudiesConfig(StrictModel):
    """Studies: separate DVC pipelines (studies/dvc.yaml) that reuse the zoo's trainer."""

    seeds: SeedStudy
    frontier: FrontierStudy
    denoising: DenoisingStudy


class TrackingConfig(StrictModel):
    """MLflow: where runs go (MLFLOW_TRACKING_URI overrides the embedded SQLite store)."""

    enabled: bool = Field(
        True, description="Mirror every variant's results into MLflow; false switches it off."
    )
    experiment: str = Field("aezoo", min_length=1)
    register_models: bool = Field(
        True,
        description="Register each full-data model as aezoo-<variant> with the alias "
        "@champion; runs on a subset or with capped epochs are never registered.",
    )
    timeout_s: PositiveFloat = Field(
        20.0, description="Give up on an unreachable tracking server after this long."
    )


class Params(StrictModel):
    """The whole of ``params.yaml``."""

    data: DataConfig
    corruptions: dict[str, Corruption] = {}
    training: TrainingConfig
    variants: dict[str, Variant] = {}
    evaluation: EvaluationConfig
    render: RenderConfig
    comparison: ComparisonConfig
    studies: StudiesConfig
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

    def variant(self, name: str) -> AnyVariant:
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

    def epochs(self, name: str) -> int:
        """The epochs variant ``name`` trains for: its own, capped by ``training.max_epochs``."""
        spec = self.variant(name)
        return min(spec.epochs, self.training.max_epochs or spec.epochs)

    def is_full_run(self, name: str) -> bool:
        """True when ``name`` trains on all the data for all its epochs (no smoke settings):
        only such a model stands for the variant (MLflow's @champion)."""
        return self.data.full and self.epochs(name) == self.variant(name).epochs


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
    return "kind" if "kind" in member.model_fields else "architecture"


_UNION_TAGS = {*CORRUPTION_KINDS, *ARCHITECTURES}


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
    if error["type"] == "objective_loss":
        return f"{path}: {error['msg']}"
    if error["type"] == "study":  # the message starts with the key below ``path``
        return f"{path}.{error['msg']}"
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
