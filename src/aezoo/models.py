"""The model zoo: a network (architecture) and an objective, read top to bottom like the
Keras examples.

A variant is an ``architecture`` (dense, conv, strided_conv) trained for an ``objective``
(autoencoder, variational). :func:`build` makes the encoder from the architecture's layers
up to the code, lets the objective put the code on top (a plain code layer, or a VAE's mean,
log-variance and sample), then adds the architecture's decoder. It returns
:class:`AutoencoderParts`: an encoder (image -> code), a decoder (code -> image) and the
autoencoder that chains them, three Keras models sharing weights. Images are
``(28, 28, 1)`` floats in [0, 1] everywhere, so one trainer serves every variant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from aezoo.config import IMAGE_SIDE, AnyVariant, ConvVariant, DenseVariant, StridedConvVariant
from aezoo.errors import ConfigError

IMAGE_SHAPE = (IMAGE_SIDE, IMAGE_SIDE, 1)
PIXELS = IMAGE_SIDE * IMAGE_SIDE

CodeHead = Callable[[keras.KerasTensor], keras.KerasTensor | list[keras.KerasTensor]]


@dataclass(frozen=True)
class AutoencoderParts:
    """Encoder, decoder and the autoencoder chaining them (shared weights)."""

    autoencoder: keras.Model
    encoder: keras.Model
    decoder: keras.Model


def build(name: str, spec: AnyVariant) -> AutoencoderParts:
    """Build the three models of a variant from its config entry."""
    encoder_layers, decoder_of = ARCHITECTURES[spec.architecture]
    images = keras.Input(IMAGE_SHAPE, name="images")
    head = variational_code(spec) if spec.variational else plain_code(spec)
    encoder = keras.Model(images, encoder_layers(images, spec, head), name="encoder")
    decoder = decoder_of(name, spec, encoder)

    images = keras.Input(IMAGE_SHAPE, name="images")
    code = encoder(images)
    if spec.variational:  # the encoder gives (mean, log_var, sample); decode the sample
        code = code[-1]
    autoencoder = keras.Model(images, decoder(code), name=name)
    return AutoencoderParts(autoencoder, encoder, decoder)


# ------------------------------------------------------------------------ objectives


def plain_code(spec: DenseVariant | StridedConvVariant) -> CodeHead:
    """An autoencoder's code: one dense layer; an L1 penalty on it makes the code sparse."""

    def head(features):
        l1 = getattr(spec, "activity_l1", 0.0)
        starts_as_pca = getattr(spec, "pca_start", False)
        return layers.Dense(
            spec.code_size,
            activation=spec.code_activation,
            activity_regularizer=keras.regularizers.L1(l1) if l1 else None,
            # Started as PCA, this layer is the correction to PCA's code: zero at first.
            kernel_initializer="zeros" if starts_as_pca else "glorot_uniform",
            name="code_correction" if starts_as_pca else "code",
        )(features)

    return head


def variational_code(spec: DenseVariant | StridedConvVariant) -> CodeHead:
    """A VAE's code: the posterior's mean and log-variance, and a sample of it (training)."""

    def head(features):
        mean = layers.Dense(spec.code_size, name="z_mean")(features)
        log_var = layers.Dense(spec.code_size, name="z_log_var")(features)
        return [mean, log_var, Sampling(name="z")([mean, log_var])]

    return head


# ---------------------------------------------------------------------- dense / sparse


def dense_encoder(images, spec: DenseVariant, head: CodeHead):
    """784 -> hidden layers -> the code (plus PCA's projection when started as PCA)."""
    pixels = layers.Flatten()(images)
    x = pixels
    for width in spec.encoder_units:
        x = layers.Dense(width, activation=spec.activation)(x)
    if not spec.pca_start:
        return head(x)
    projection = layers.Dense(spec.code_size, name=PCA_PROJECTION)(pixels)
    return layers.Add(name="code")([projection, head(x)])


def dense_decoder(name: str, spec: DenseVariant, encoder: keras.Model) -> keras.Model:
    """The code -> hidden layers -> 784 -> the output activation (started as PCA: PCA's
    reconstruction plus the hidden layers' correction, zero at first)."""
    code = keras.Input((spec.code_size,), name="code")
    x = code
    for width in spec.decoder_units:
        x = layers.Dense(width, activation=spec.activation)(x)
    x = layers.Dense(PIXELS, kernel_initializer="zeros" if spec.pca_start else "glorot_uniform")(x)
    if spec.pca_start:
        x = layers.Add()([layers.Dense(PIXELS, name=PCA_RECONSTRUCTION)(code), x])
    x = layers.Reshape(IMAGE_SHAPE)(x)
    # The output activation comes last, so a cross-entropy loss finds the sigmoid's logits
    # on the model's output and works from them (see summed_binary_crossentropy).
    return keras.Model(code, layers.Activation(spec.output_activation)(x), name="decoder")


# ------------------------------------------------------------------ conv + pooling


def conv_encoder(images, spec: ConvVariant, head: CodeHead):
    """Conv + max-pool blocks; the last feature map is the code (no head)."""
    x = images
    for filters in spec.encoder_filters:
        x = layers.Conv2D(filters, spec.kernel_size, activation=spec.activation, padding="same")(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    return x


def conv_decoder(name: str, spec: ConvVariant, encoder: keras.Model) -> keras.Model:
    """Conv + up-sampling blocks back to one 28x28 channel."""
    kernel = spec.kernel_size
    code_shape = encoder.output.shape[1:]
    # Pooling rounds odd sides up (7 -> 4), so up-sampling overshoots 28 (4 -> 32). As in
    # the Keras blog, the last block's conv then uses 'valid' padding to trim the excess.
    overshoot = code_shape[0] * 2 ** len(spec.decoder_filters) - IMAGE_SIDE
    if overshoot not in (0, 2 * (kernel - 1)):
        raise ConfigError(
            f"variants.{name}: {len(spec.encoder_filters)} pooling and "
            f"{len(spec.decoder_filters)} up-sampling blocks cannot give back a 28x28 image"
        )
    code = keras.Input(code_shape, name="code")
    y = code
    for index, filters in enumerate(spec.decoder_filters):
        last = index == len(spec.decoder_filters) - 1
        padding = "valid" if (last and overshoot) else "same"
        y = layers.Conv2D(filters, kernel, activation=spec.activation, padding=padding)(y)
        y = layers.UpSampling2D(2)(y)
    y = layers.Conv2D(1, kernel, activation=spec.output_activation, padding="same")(y)
    return keras.Model(code, y, name="decoder")


# ------------------------------------------------- strided conv + transposed conv


def strided_conv_encoder(images, spec: StridedConvVariant, head: CodeHead):
    """Strided convs -> flatten -> dense layers -> the code."""
    x = images
    for filters in spec.filters:
        x = layers.Conv2D(
            filters, spec.kernel_size, strides=2, activation=spec.activation, padding="same"
        )(x)
    x = layers.Flatten()(x)
    for width in spec.hidden_units:
        x = layers.Dense(width, activation=spec.activation)(x)
    return head(x)


def strided_conv_decoder(name: str, spec: StridedConvVariant, encoder: keras.Model):
    """The code -> dense -> the feature map -> transposed convs (stride 2) -> 1 channel."""
    side = IMAGE_SIDE // 2 ** len(spec.filters)
    feature_shape = (side, side, spec.filters[-1])
    code = keras.Input((spec.code_size,), name="code")
    y = layers.Dense(int(ops.prod(feature_shape)), activation=spec.activation)(code)
    y = layers.Reshape(feature_shape)(y)
    for filters in reversed(spec.filters):
        y = layers.Conv2DTranspose(
            filters, spec.kernel_size, strides=2, activation=spec.activation, padding="same"
        )(y)
    y = layers.Conv2DTranspose(
        1, spec.kernel_size, activation=spec.output_activation, padding="same"
    )(y)
    return keras.Model(code, y, name="decoder")


PCA_PROJECTION, PCA_RECONSTRUCTION = "pca_projection", "pca_reconstruction"


def start_as_pca(parts: AutoencoderParts, mean: np.ndarray, components: np.ndarray) -> None:
    """Set a ``pca_start`` network's linear path to PCA: the code is
    ``(x - mean) @ components.T``, the reconstruction ``code @ components + mean``. With the
    corrections still at zero, the autoencoder then reconstructs exactly as PCA does."""
    projection = parts.encoder.get_layer(PCA_PROJECTION)
    projection.set_weights([components.T, -mean @ components.T])
    parts.decoder.get_layer(PCA_RECONSTRUCTION).set_weights([components, mean])


ARCHITECTURES: dict[str, tuple[Callable, Callable]] = {
    "dense": (dense_encoder, dense_decoder),
    "conv": (conv_encoder, conv_decoder),
    "strided_conv": (strided_conv_encoder, strided_conv_decoder),
}


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
