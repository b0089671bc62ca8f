"""Every variant builds to its spec: shapes, parameter counts, shared weights, safe reloads."""

import numpy as np
import pytest
from conftest import ROOT

from aezoo.config import load_params
from aezoo.models import build

PARAMS = load_params(ROOT / "params.yaml")
EXPECTED_PARAMETERS = {
    "dense16": 784 * 16 + 16 + 16 * 784 + 784,
    "dense32": 784 * 32 + 32 + 32 * 784 + 784,
    "stacked256": 1_132_816,  # seed 002's model summary
    "dense_denoise": 1_132_816,
    "conv": 4_385,  # the Keras blog's convolutional autoencoder
    "conv_vae": 134_165,  # keras-io examples/generative/vae.py: 69,076 + 65,089
}


@pytest.mark.parametrize("name", list(PARAMS.variants))
def test_builder_shapes_and_code_size(name):
    spec = PARAMS.variant(name)
    parts = build(name, spec)
    assert parts.autoencoder.output_shape == (None, 28, 28, 1)
    images = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    code = parts.encoder.predict_on_batch(images)
    code = code[-1] if isinstance(code, list) else code
    assert int(np.prod(code.shape[1:])) == spec.code_size
    # the decoder alone generates from a code, and the autoencoder is encoder then decoder
    decoded = parts.decoder.predict_on_batch(code)
    np.testing.assert_allclose(parts.autoencoder.predict_on_batch(images), decoded, atol=1e-6)
    if name in EXPECTED_PARAMETERS:
        assert parts.autoencoder.count_params() == EXPECTED_PARAMETERS[name]


def test_every_architecture_of_the_config_has_a_builder():
    from aezoo.config import ARCHITECTURES as CONFIGURED
    from aezoo.models import ARCHITECTURES

    assert set(ARCHITECTURES) == set(CONFIGURED)
    assert {spec.architecture for spec in PARAMS.variants.values()} == set(CONFIGURED)


def _layers(model) -> list[tuple]:
    """(type, output shape, strides, activation) of each layer after the input."""
    return [
        (
            type(layer).__name__,
            tuple(layer.output.shape[1:]),
            getattr(layer, "strides", None),
            getattr(getattr(layer, "activation", None), "__name__", None),
        )
        for layer in model.layers[1:]
    ]


def test_conv_vae_is_the_keras_io_convolutional_vae():
    """examples/generative/vae.py: two stride-2 convs, Dense 16, a 2-D code; back up by a
    dense layer to 7x7x64 and three transposed convs."""
    spec = PARAMS.variant("conv_vae")
    parts = build("conv_vae", spec)
    encoder = _layers(parts.encoder)
    assert encoder[:4] == [
        ("Conv2D", (14, 14, 32), (2, 2), "relu"),
        ("Conv2D", (7, 7, 64), (2, 2), "relu"),
        ("Flatten", (3136,), None, None),
        ("Dense", (16,), None, "relu"),
    ]
    heads = {layer.name: layer for layer in parts.encoder.layers[5:]}
    assert set(heads) == {"z_mean", "z_log_var", "z"}
    assert type(heads["z"]).__name__ == "Sampling"
    assert tuple(heads["z_mean"].output.shape[1:]) == tuple(heads["z_log_var"].output.shape[1:])
    assert tuple(heads["z_mean"].output.shape[1:]) == (2,)
    assert [tuple(output.shape[1:]) for output in parts.encoder.outputs] == [(2,)] * 3
    assert all(layer.kernel_size == (3, 3) for layer in parts.encoder.layers[1:3])

    assert _layers(parts.decoder) == [
        ("Dense", (3136,), None, "relu"),
        ("Reshape", (7, 7, 64), None, None),
        ("Conv2DTranspose", (14, 14, 64), (2, 2), "relu"),
        ("Conv2DTranspose", (28, 28, 32), (2, 2), "relu"),
        ("Conv2DTranspose", (28, 28, 1), (1, 1), "sigmoid"),
    ]
    assert parts.encoder.count_params() == 69_076 and parts.decoder.count_params() == 65_089
    assert parts.autoencoder.count_params() == 134_165


@pytest.mark.parametrize("name", list(PARAMS.variants))
def test_every_variant_round_trips_through_a_safe_save_and_load(name, tmp_path):
    import keras

    spec = PARAMS.variant(name)
    parts = build(name, spec)
    images = np.random.default_rng(2).random((3, 28, 28, 1), dtype=np.float32)
    for part in ("autoencoder", "encoder", "decoder"):
        model = getattr(parts, part)
        model.save(tmp_path / f"{part}.keras")
        reloaded = keras.saving.load_model(tmp_path / f"{part}.keras", safe_mode=True)
        assert reloaded.count_params() == model.count_params()
        inputs = images
        if part == "decoder":
            inputs = np.random.default_rng(3).normal(size=(3, *model.input.shape[1:]))
        expected, got = model(inputs, training=False), reloaded(inputs, training=False)
        if spec.variational and part == "encoder":
            assert len(got) == 3  # (z_mean, z_log_var, z)
        for want, have in zip(keras.tree.flatten(expected), keras.tree.flatten(got), strict=True):
            np.testing.assert_allclose(np.asarray(have), np.asarray(want), rtol=1e-6, atol=1e-6)


def test_encoder_and_decoder_share_the_autoencoders_weights():
    parts = build("dense16", PARAMS.variant("dense16"))
    shared = {id(w) for w in parts.encoder.weights + parts.decoder.weights}
    assert {id(w) for w in parts.autoencoder.weights} == shared


def test_sparse_variant_penalises_its_code():
    sparse = build("sparse32", PARAMS.variant("sparse32")).autoencoder
    dense = build("dense32", PARAMS.variant("dense32")).autoencoder
    images = np.ones((2, 28, 28, 1), np.float32)
    sparse(images), dense(images)
    assert len(sparse.losses) == 1 and len(dense.losses) == 0


def test_vae_reconstructs_from_the_mean_outside_training():
    parts = build("vae", PARAMS.variant("vae"))
    images = np.random.default_rng(1).random((4, 28, 28, 1), dtype=np.float32)
    mean, _, z = parts.encoder(images, training=False)
    np.testing.assert_array_equal(np.asarray(mean), np.asarray(z))
    _, _, sampled = parts.encoder(images, training=True)
    assert not np.allclose(np.asarray(mean), np.asarray(sampled))


def test_fused_adam_follows_keras_adam_up_to_round_off():
    import keras

    from aezoo.models import FusedAdam

    rng = np.random.default_rng(0)
    start = rng.normal(size=(64, 32)).astype("float32")
    gradients = [rng.normal(size=(64, 32)).astype("float32") for _ in range(20)]
    results = []
    for optimizer in (keras.optimizers.Adam(1e-2), FusedAdam(1e-2)):
        variable = keras.Variable(start)
        for gradient in gradients:
            optimizer.apply([keras.ops.convert_to_tensor(gradient)], [variable])
        results.append(np.asarray(variable))
    assert not np.allclose(results[1], start, atol=0.1)  # 20 steps of 1e-2 moved it
    np.testing.assert_allclose(results[1], results[0], rtol=0, atol=1e-5)


def test_fused_adam_is_saved_with_the_model_and_reloads(tmp_path):
    import keras

    from aezoo.models import FusedAdam, make_optimizer

    spec = PARAMS.variant("dense16")
    assert isinstance(make_optimizer(spec), FusedAdam)
    assert type(make_optimizer(spec, fused=False)) is keras.optimizers.Adam
    model = build("dense16", spec).autoencoder
    model.compile(optimizer=make_optimizer(spec), loss="mse")
    model.fit(np.zeros((8, 28, 28, 1)), np.zeros((8, 28, 28, 1)), epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert isinstance(reloaded.optimizer, FusedAdam)
    assert int(reloaded.optimizer.iterations) == 1


def test_the_vae_reconstruction_loss_is_the_summed_pixel_bce_with_gradients_everywhere():
    """Given bare probabilities (no sigmoid logits attached): Keras's clipped BCE summed over
    the pixels, away from 0 and 1; finite, with a gradient, at predictions of exactly 0 and
    1, where the clip would stop it."""
    import keras
    import tensorflow as tf

    from aezoo.models import summed_binary_crossentropy

    rng = np.random.default_rng(0)
    targets = rng.uniform(0, 1, (4, 28, 28, 1)).astype(np.float32)
    predictions = rng.uniform(0.01, 0.99, (4, 28, 28, 1)).astype(np.float32)
    keras_sum = np.sum(keras.losses.binary_crossentropy(targets, predictions), axis=(1, 2))
    ours = summed_binary_crossentropy(targets, predictions)
    assert ours.shape == (4,)
    np.testing.assert_allclose(ours, keras_sum, rtol=1e-5)

    edges = tf.constant([[0.0, 1.0]] * 392, shape=(1, 28, 28, 1))
    with tf.GradientTape() as tape:
        tape.watch(edges)
        loss = summed_binary_crossentropy(1.0 - edges, edges)  # as wrong as can be
    gradient = tape.gradient(loss, edges)
    assert np.isfinite(loss).all() and np.all(np.abs(gradient) > 1e6)


def test_the_vae_reconstruction_loss_works_from_a_sigmoids_logits():
    """On a Keras sigmoid's output in a traced graph, the loss is the exact BCE from the
    logits: where float32 probabilities saturate to 0 or 1, it still gives the true value."""
    import keras
    import tensorflow as tf

    from aezoo.models import summed_binary_crossentropy

    rng = np.random.default_rng(0)
    targets = rng.uniform(0, 1, (4, 28, 28, 1)).astype(np.float32)
    logits = rng.normal(0, 3, (4, 28, 28, 1)).astype(np.float32)
    logits[:, 0, :2, 0] = [40.0, -40.0]  # saturated: float32 probabilities of 1 and ~0

    @tf.function
    def from_logits_and_from_probabilities(y, z):
        probabilities = keras.activations.sigmoid(z)
        return (
            summed_binary_crossentropy(y, probabilities),
            summed_binary_crossentropy(y, tf.identity(probabilities)),  # logits not attached
        )

    ours, from_probabilities = from_logits_and_from_probabilities(targets, logits)
    exact = np.sum(np.logaddexp(0.0, logits) - targets * logits, axis=(1, 2, 3))
    np.testing.assert_allclose(ours, exact, rtol=1e-5)
    assert np.max(np.abs(np.asarray(from_probabilities) - exact)) > 1.0  # saturation costs


@pytest.mark.parametrize("name", ["dense32", "vae"])
def test_dense_decoders_end_in_the_sigmoid_so_losses_see_its_logits(name):
    """The output activation comes after the Reshape: a traced autoencoder's output carries
    the logits that Keras's BCE and the VAE's loss use."""
    import tensorflow as tf

    autoencoder = build(name, PARAMS.variant(name)).autoencoder
    seen = {}

    @tf.function
    def trace(images):
        output = autoencoder(images, training=True)
        seen["logits"] = getattr(output, "_keras_logits", None)
        return output

    trace(tf.zeros((2, 28, 28, 1)))
    assert seen["logits"] is not None and tuple(seen["logits"].shape) == (2, 28, 28, 1)


def test_a_network_started_as_pca_reconstructs_exactly_as_pca():
    """pca_start: before training, the code and the reconstruction are PCA's own."""
    from sklearn.decomposition import PCA

    from aezoo.models import start_as_pca
    from aezoo.training import principal_components

    images = (np.random.default_rng(0).random((300, 28, 28)) * 255).astype(np.uint8)
    spec = PARAMS.variant("pca_dense128").model_copy(update={"code_size": 16})
    parts = build("pca16", spec)
    start_as_pca(parts, *principal_components(images, 16))
    flat = images.reshape(300, -1).astype(np.float32) / 255
    pca = PCA(16, svd_solver="covariance_eigh").fit(flat)
    unit = flat.reshape(-1, 28, 28, 1)
    np.testing.assert_allclose(parts.encoder.predict_on_batch(unit), pca.transform(flat), atol=2e-5)
    expected = pca.inverse_transform(pca.transform(flat)).reshape(-1, 28, 28, 1)
    np.testing.assert_allclose(parts.autoencoder.predict_on_batch(unit), expected, atol=2e-5)


def test_pca_start_needs_a_linear_autoencoder(raw_params):
    from aezoo.config import parse_params
    from aezoo.errors import ConfigError

    raw_params["variants"]["dense16"]["pca_start"] = True  # dense16's code is relu
    with pytest.raises(ConfigError, match=r"variants\.dense16: pca_start needs .*'relu'"):
        parse_params(raw_params)
