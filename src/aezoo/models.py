"""The model zoo: one builder per architecture family, read top to bottom like the Keras examples.

Every builder returns :class:`AutoencoderParts`: an encoder (image -> code), a decoder
(code -> image) and the autoencoder that chains them, three Keras models sharing weights.
Images are ``(28, 28, 1)`` floats in [0, 1] everywhere, so one trainer serves all families.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
from keras import layers, ops

from aezoo.config import (
    IMAGE_SIDE,
    ConvVariant,
    DenseVariant,
    StridedConvVariant,
    VAEVariant,
)
from aezoo.errors import ConfigError

AnyVariant = DenseVariant | ConvVariant | StridedConvVariant | VAEVariant
IMAGE_SHAPE = (IMAGE_SIDE, IMAGE_SIDE, 1)
PIXELS = IMAGE_SIDE * IMAGE_SIDE


@dataclass(frozen=True)
class AutoencoderParts:
    """Encoder, decoder and the autoencoder chaining them (shared weights)."""

    autoencoder: keras.Model
    encoder: keras.Model
    decoder: keras.Model


def _chain(name: str, encoder: keras.Model, decoder: keras.Model) -> AutoencoderParts:
    images = keras.Input(IMAGE_SHAPE, name="images")
    code = encoder(images)
    if isinstance(code, list | tuple):  # the VAE's encoder gives (mean, log_var, sample)
        code = code[-1]
    autoencoder = keras.Model(images, decoder(code), name=name)
    return AutoencoderParts(autoencoder, encoder, decoder)


# ---------------------------------------------------------------------- dense / sparse


def _dense_decoder(code_size: int, units: list[int], activation: str, output: str):
    code = keras.Input((code_size,), name="code")
    x = code
    for width in units:
        x = layers.Dense(width, activation=activation)(x)
    x = layers.Reshape(IMAGE_SHAPE)(layers.Dense(PIXELS)(x))
    # The output activation comes last, so a cross-entropy loss finds the sigmoid's logits
    # on the model's output and works from them (see summed_binary_crossentropy).
    return keras.Model(code, layers.Activation(output)(x), name="decoder")


def build_dense(name: str, spec: DenseVariant) -> AutoencoderParts:
    """784 -> hidden layers -> code -> hidden layers -> 784; L1 on the code makes it sparse."""
    images = keras.Input(IMAGE_SHAPE, name="images")
    x = layers.Flatten()(images)
    for width in spec.encoder_units:
        x = layers.Dense(width, activation=spec.activation)(x)
    regulariser = keras.regularizers.L1(spec.activity_l1) if spec.activity_l1 else None
    code = layers.Dense(
        spec.code_size,
        activation=spec.code_activation,
        activity_regularizer=regulariser,
        name="code",
    )(x)
    encoder = keras.Model(images, code, name="encoder")

    decoder_units = spec.decoder_units
    if decoder_units is None:
        decoder_units = list(reversed(spec.encoder_units))
    decoder = _dense_decoder(spec.code_size, decoder_units, spec.activation, spec.output_activation)
    return _chain(name, encoder, decoder)


# ------------------------------------------------------------------ conv + pooling


def build_conv(name: str, spec: ConvVariant) -> AutoencoderParts:
    """Conv + max-pool blocks down to the code, conv + up-sampling blocks back up."""
    kernel = spec.kernel_size
    images = keras.Input(IMAGE_SHAPE, name="images")
    x = images
    for filters in spec.encoder_filters:
        x = layers.Conv2D(filters, kernel, activation="relu", padding="same")(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    encoder = keras.Model(images, x, name="encoder")

    decoder_filters = spec.decoder_filters or list(reversed(spec.encoder_filters))
    code_side = x.shape[1]
    # Pooling rounds odd sides up (7 -> 4), so up-sampling overshoots 28 (4 -> 32). As in
    # the Keras blog, the last block's conv then uses 'valid' padding to trim the excess.
    overshoot = code_side * 2 ** len(decoder_filters) - IMAGE_SIDE
    if overshoot not in (0, 2 * (kernel - 1)):
        raise ConfigError(
            f"variants.{name}: {len(spec.encoder_filters)} pooling and "
            f"{len(decoder_filters)} up-sampling blocks cannot give back a 28x28 image"
        )
    code = keras.Input(x.shape[1:], name="code")
    y = code
    for index, filters in enumerate(decoder_filters):
        last = index == len(decoder_filters) - 1
        padding = "valid" if (last and overshoot) else "same"
        y = layers.Conv2D(filters, kernel, activation="relu", padding=padding)(y)
        y = layers.UpSampling2D(2)(y)
    y = layers.Conv2D(1, kernel, activation="sigmoid", padding="same")(y)
    decoder = keras.Model(code, y, name="decoder")
    return _chain(name, encoder, decoder)


# ------------------------------------------------- strided conv + transposed conv


def build_strided_conv(name: str, spec: StridedConvVariant) -> AutoencoderParts:
    """Strided convs -> dense code -> dense -> transposed convs (stride 2) -> 1 channel."""
    kernel = spec.kernel_size
    images = keras.Input(IMAGE_SHAPE, name="images")
    x = images
    for filters in spec.filters:
        x = layers.Conv2D(filters, kernel, strides=2, activation="relu", padding="same")(x)
    feature_shape = x.shape[1:]
    x = layers.Flatten()(x)
    code = layers.Dense(spec.code_size, name="code")(x)
    encoder = keras.Model(images, code, name="encoder")

    code_in = keras.Input((spec.code_size,), name="code")
    y = layers.Dense(int(ops.prod(feature_shape)), activation="relu")(code_in)
    y = layers.Reshape(feature_shape)(y)
    for filters in reversed(spec.filters):
        y = layers.Conv2DTranspose(filters, kernel, strides=2, activation="relu", padding="same")(y)
    y = layers.Conv2DTranspose(1, kernel, activation="sigmoid", padding="same")(y)
    decoder = keras.Model(code_in, y, name="decoder")
    return _chain(name, encoder, decoder)


# ---------------------------------------------------------------- variational (VAE)


@keras.saving.register_keras_serializable(package="aezoo")
class Sampling(layers.Layer):
    """Draws ``z = mean + exp(log_var / 2) * eps`` and adds the KL divergence to the loss.

    Outside training it returns the mean, so reconstructions are deterministic; the
    evaluate stage estimates the ELBO with sampled codes itself.

    The KL term reuses the sample's ``std`` (``exp(log_var) == std**2``), so ``log_var``
    feeds two ops, not three. Its gradient is then a sum of two terms. TensorFlow's CPU
    ``AddN`` accumulates into whichever input buffer is free at run time, first. With three
    terms that changes the order of the additions, and training gave different weights
    from one process to the next. Two terms add the same either way.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        mean, log_var = inputs
        std = ops.exp(0.5 * log_var)
        kl = -0.5 * ops.sum(1 + log_var - ops.square(mean) - ops.square(std), axis=1)
        self.add_loss(ops.mean(kl))
        if not training:
            return mean
        epsilon = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return mean + std * epsilon

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def build_vae(name: str, spec: VAEVariant) -> AutoencoderParts:
    """Encoder to (mean, log-variance), reparameterised sample, dense decoder to pixels."""
    images = keras.Input(IMAGE_SHAPE, name="images")
    x = layers.Flatten()(images)
    for width in spec.encoder_units:
        x = layers.Dense(width, activation=spec.activation)(x)
    mean = layers.Dense(spec.code_size, name="z_mean")(x)
    log_var = layers.Dense(spec.code_size, name="z_log_var")(x)
    z = Sampling(name="z")([mean, log_var])
    encoder = keras.Model(images, [mean, log_var, z], name="encoder")

    decoder_units = spec.decoder_units or list(reversed(spec.encoder_units))
    decoder = _dense_decoder(spec.code_size, decoder_units, spec.activation, "sigmoid")
    return _chain(name, encoder, decoder)


# ------------------------------------------------------------------------ losses


@keras.saving.register_keras_serializable(package="aezoo")
def summed_binary_crossentropy(y_true, y_pred):
    """Binary cross-entropy summed over the pixels of each image (the VAE's reconstruction).

    When ``y_pred`` is a Keras sigmoid's output (as the decoders give it while training), it
    works from the logits ``l``, as Keras's own BCE does: ``softplus(l) - y * l``, exact,
    with no clipping, and cheaper on every pixel than logs of probabilities (2.5% off a VAE
    training step on 2 CPU cores, interleaved A/B). Otherwise it takes
    ``log(p + eps)``; that differs from Keras's clipped BCE by about ``eps / p``, only where
    ``p`` or ``1 - p`` is within a few ``eps`` of 0, and its gradient does not vanish there.
    """
    targets = ops.reshape(y_true, (-1, PIXELS))
    logits = getattr(y_pred, "_keras_logits", None)
    if logits is not None:
        logits = ops.reshape(logits, (-1, PIXELS))
        return ops.sum(ops.softplus(logits) - targets * logits, axis=1)
    eps = keras.backend.epsilon()
    probabilities = ops.reshape(y_pred, (-1, PIXELS))
    log_likelihood = targets * ops.log(probabilities + eps) + (1 - targets) * ops.log(
        1 - probabilities + eps
    )
    return -ops.sum(log_likelihood, axis=1)


LOSSES: dict[str, Callable | str] = {
    "mse": "mean_squared_error",
    "bce": "binary_crossentropy",
    "elbo": summed_binary_crossentropy,  # + the KL term that Sampling adds
}

BUILDERS: dict[str, Callable[[str, AnyVariant], AutoencoderParts]] = {
    "dense": build_dense,
    "conv": build_conv,
    "strided_conv": build_strided_conv,
    "vae": build_vae,
}


def build(name: str, spec: AnyVariant) -> AutoencoderParts:
    """Build the three models of a variant from its config entry."""
    return BUILDERS[spec.family](name, spec)


# --------------------------------------------------------------------- optimisers


@keras.saving.register_keras_serializable(package="aezoo")
class FusedAdam(keras.optimizers.Adam):
    """Keras's Adam with each variable updated by TensorFlow's fused ``ResourceApplyAdam``.

    The update rule is Keras's own (the epsilon-hat form), but one kernel makes one pass
    over a variable instead of Keras's six element-wise ops, which takes 12-16% off a
    training step of the dense and VAE models on 2 CPU cores (reports/benchmarks.md). The
    results differ from Keras's Adam only by float round-off. Other backends, ``amsgrad`` and
    sparse gradients fall back to Keras's update.
    """

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        if (
            keras.backend.backend() != "tensorflow"
            or self.amsgrad
            or isinstance(gradient, tf.IndexedSlices)
        ):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.constant(self.beta_1, dtype), tf.constant(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.constant(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )


def make_optimizer(spec: AnyVariant, fused: bool = True) -> keras.optimizers.Optimizer:
    """The variant's optimiser, by name and learning rate; ``fused=False`` gives Keras's own
    Adam instead of :class:`FusedAdam` (the benchmark's plain ``model.fit`` uses it)."""
    classes = {
        "adam": FusedAdam if fused else keras.optimizers.Adam,
        "adadelta": keras.optimizers.Adadelta,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }
    return classes[spec.optimizer.name](learning_rate=spec.optimizer.learning_rate)
