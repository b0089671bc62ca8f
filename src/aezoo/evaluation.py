"""The evaluate stage: honest test-set numbers for one variant, with baselines beside them.

Everything here is measured on the held-out test split. Baselines share the variant's code
size (PCA) or are classical denoisers whose width is chosen on the validation split.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from scipy import ndimage
from scipy.stats import norm
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aezoo import metrics
from aezoo.config import IMAGE_SIDE, AnyVariant, EvaluationConfig, Params
from aezoo.data import Split, progress_digits, to_unit_float
from aezoo.models import PIXELS

NEAR_ZERO = 1e-3  # a code unit this close to 0 counts as silent (sparsity)
PROBE_SEED = 0
TRIPLET_ROWS = 10  # seed 000's denoising grid: 10 rows of grid_digits triplets (10 x 30)
INTERPOLATION_PAIRS = ((0, 6), (1, 7), (3, 8), (4, 9))  # digit classes to morph between
MANIFOLD_QUANTILES = (0.05, 0.95)  # the 2-D manifold grid spans these Gaussian quantiles
TSNE_PERPLEXITY = 30
TSNE_ITERATIONS = 500  # enough for a few thousand points; half the default's time
TSNE_INPUT_DIMS = 50  # codes wider than this are reduced by PCA before t-SNE


@dataclass(frozen=True)
class LoadedModels:
    """A trained variant's three models."""

    autoencoder: keras.Model
    encoder: keras.Model
    decoder: keras.Model


# ------------------------------------------------------------------------ helpers


def as_model_input(images: np.ndarray) -> np.ndarray:
    """Stored images (uint8 or float16) as float32 ``(n, 28, 28, 1)``."""
    return to_unit_float(images)[..., None]


def image_quality(target: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    """MSE, BCE and PSNR on the raw prediction; SSIM on it clipped to the image range."""
    target = target.reshape(len(target), 28, 28)
    prediction = prediction.reshape(len(prediction), 28, 28)
    return {
        "mse": metrics.mse(target, prediction),
        "bce": metrics.binary_crossentropy(target, prediction),
        "psnr_db": metrics.psnr(target, prediction),
        "ssim": metrics.ssim(target, np.clip(prediction, 0.0, 1.0)),
    }


def per_image_mse(target: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Each image's mean squared error (float32): what the report's intervals resample."""
    diff = np.asarray(target, np.float64).reshape(len(target), -1) - np.asarray(
        prediction, np.float64
    ).reshape(len(prediction), -1)
    return np.mean(diff * diff, axis=1).astype(np.float32)


def per_image_bce(target: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Each image's mean pixel binary cross-entropy (float32), clipped as Keras clips it."""
    p = np.asarray(prediction, np.float64).reshape(len(prediction), -1)
    p = np.clip(p, metrics.BCE_EPSILON, 1 - metrics.BCE_EPSILON)
    t = np.asarray(target, np.float64).reshape(len(target), -1)
    return np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)), axis=1).astype(np.float32)


def codes_of(encoder: keras.Model, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Flattened codes of images (the posterior mean for a VAE)."""
    codes = encoder.predict(as_model_input(images), batch_size=batch_size, verbose=0)
    return _flat_codes(codes, len(images))


def _flat_codes(codes: np.ndarray | list[np.ndarray], count: int) -> np.ndarray:
    if isinstance(codes, list):  # VAE: (mean, log_var, z)
        codes = codes[0]
    return np.asarray(codes).reshape(count, -1)


def probe_correct(train_codes, train_labels, test_codes, test_labels) -> np.ndarray:
    """Which test images a logistic-regression digit classifier, fit on training codes,
    labels correctly (its accuracy is the mean)."""
    probe = make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=300, random_state=PROBE_SEED)
    )
    probe.fit(train_codes, train_labels)
    return probe.predict(test_codes) == np.asarray(test_labels)


def _probe_subset(split: Split, limit: int | None) -> Split:
    return Split(split.x[:limit], split.y[:limit])


# -------------------------------------------------------------------- the VAE bound

DECODE_FLOATS = 1 << 23  # floats of the widest decoder activation per call (32 MiB)


def call_in_chunks(model: keras.Model, inputs: np.ndarray) -> np.ndarray | list[np.ndarray]:
    """``model(inputs)`` in as few calls as keep its widest activation under
    ``DECODE_FLOATS`` floats: a convolutional decoder's feature maps on 10,000 codes at
    once would take gigabytes. A dense VAE's decoder takes its 10,000 codes in one call.

    A direct call runs eagerly: unlike ``model.predict`` it traces no graph, so the figures'
    many small arrays of different sizes cause no retracing (nor TensorFlow's warning)."""
    widest = max(
        int(np.prod(output.shape[1:]))
        for layer in model.layers
        for output in keras.tree.flatten(layer.output)
    )
    rows = max(1, DECODE_FLOATS // widest)
    chunks = [
        keras.tree.map_structure(np.asarray, model(inputs[start : start + rows], training=False))
        for start in range(0, len(inputs), rows)
    ]
    if isinstance(chunks[0], (list, tuple)):
        return [np.concatenate(parts) for parts in zip(*chunks, strict=True)]
    return np.concatenate(chunks)


def vae_bounds(
    models: LoadedModels,
    inputs: np.ndarray,
    targets: np.ndarray,
    samples: int,
    batch_size: int,
    seed: int = 0,
) -> dict[str, float]:
    """Mean negative ELBO and IWAE bound of :func:`vae_bounds_per_image`, nats per image."""
    per_image = vae_bounds_per_image(models, inputs, targets, samples, batch_size, seed)
    return {key: float(values.mean()) for key, values in per_image.items()}


def vae_bounds_per_image(
    models: LoadedModels,
    inputs: np.ndarray,
    targets: np.ndarray,
    samples: int,
    batch_size: int,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Each image's negative ELBO and importance-weighted bound (IWAE) on its NLL, in nats.

    The ELBO matches the training loss: summed pixel BCE of ``targets`` with ``samples``
    codes drawn from q(z|input), plus the analytic KL. The IWAE bound uses the same draws:
    ``-log mean_k p(x|z_k) p(z_k) / q(z_k|input)``, which is never looser than the ELBO. For
    a denoising VAE the inputs are the corrupted images and q a proposal: still a bound on
    the clean image's NLL.
    """
    rng = np.random.default_rng(seed)
    neg_elbo, iwae = [], []
    per_batch = max(1, batch_size // samples)
    for start in range(0, len(targets), per_batch):
        source = as_model_input(inputs[start : start + per_batch])
        x = as_model_input(targets[start : start + per_batch])
        encoded = models.encoder(source, training=False)
        mean, log_var, _ = (np.asarray(t, np.float64) for t in encoded)
        eps = rng.standard_normal((samples, *mean.shape))
        z = mean + np.exp(0.5 * log_var) * eps  # (k, n, d)
        flat_z = z.reshape(-1, mean.shape[1]).astype(np.float32)
        probs = call_in_chunks(models.decoder, flat_z).astype(np.float64)
        probs = np.clip(probs.reshape(samples, len(x), PIXELS), 1e-7, 1 - 1e-7)
        target = x.reshape(1, len(x), PIXELS).astype(np.float64)
        log_px_z = np.sum(target * np.log(probs) + (1 - target) * np.log(1 - probs), axis=2)
        kl = -0.5 * np.sum(1 + log_var - mean**2 - np.exp(log_var), axis=1)
        neg_elbo.append(-log_px_z.mean(axis=0) + kl)
        log_pz = -0.5 * np.sum(z**2 + np.log(2 * np.pi), axis=2)
        log_qz = -0.5 * np.sum(eps**2 + np.log(2 * np.pi) + log_var[None], axis=2)
        log_w = log_px_z + log_pz - log_qz  # (k, n)
        top = log_w.max(axis=0)
        iwae.append(-(top + np.log(np.mean(np.exp(log_w - top), axis=0))))
    return {"neg_elbo": np.concatenate(neg_elbo), "iwae_nll": np.concatenate(iwae)}


# ------------------------------------------------------------------------ baselines


def pca_baseline(
    train: Split,
    train_inputs: np.ndarray,
    test_inputs: np.ndarray,
    test: Split,
    components: int,
    probe_limit: int | None,
) -> tuple[dict[str, float], dict[str, float] | None, dict[str, np.ndarray]]:
    """PCA with the variant's code size, fit on the clean training split.

    Returns the reconstruction metrics of the clean test set (with a digit probe on the PCA
    codes) and, when ``test_inputs`` differ from the clean images, the metrics of projecting
    the corrupted inputs (PCA denoising, with its probe fit and scored on corrupted codes,
    as the denoiser's is); else None. Third, per test image, PCA's squared error and probe
    correctness on the autoencoder's own task (``pca_mse``, ``pca_probe_correct``).
    """
    components = min(components, PIXELS)
    flat = to_unit_float(train.x).reshape(len(train), PIXELS)
    pca = PCA(n_components=components, svd_solver="covariance_eigh").fit(flat)
    clean_test = to_unit_float(test.x).reshape(len(test), PIXELS)
    reconstruction = pca.inverse_transform(pca.transform(clean_test))
    result = image_quality(clean_test, reconstruction)
    probe_train = _probe_subset(train, probe_limit)
    correct = probe_correct(
        pca.transform(to_unit_float(probe_train.x).reshape(len(probe_train), PIXELS)),
        probe_train.y,
        pca.transform(clean_test),
        test.y,
    )
    result["probe_accuracy"] = float(correct.mean())
    if test_inputs is test.x:
        per_image = {"pca_mse": per_image_mse(clean_test, reconstruction)}
        return result, None, per_image | {"pca_probe_correct": correct}
    noisy = to_unit_float(test_inputs).reshape(len(test), PIXELS)
    denoised = pca.inverse_transform(pca.transform(noisy))
    noisy_train = to_unit_float(train_inputs[: len(probe_train)]).reshape(-1, PIXELS)
    denoising = image_quality(clean_test, denoised)
    correct = probe_correct(pca.transform(noisy_train), probe_train.y, pca.transform(noisy), test.y)
    denoising["probe_accuracy"] = float(correct.mean())
    per_image = {"pca_mse": per_image_mse(clean_test, denoised), "pca_probe_correct": correct}
    return result, denoising, per_image


def filter_baselines(
    val_inputs: np.ndarray,
    val: Split,
    test_inputs: np.ndarray,
    test: Split,
    config: EvaluationConfig,
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """Gaussian and median filters, each with its width chosen by validation MSE; and each
    filter's squared error per test image (``<filter>_mse``)."""
    candidates = {
        "gaussian_filter": (
            "sigma",
            config.filter_sigmas,
            lambda x, s: ndimage.gaussian_filter(x, sigma=(0, s, s)),
        ),
        "median_filter": (
            "size",
            config.filter_sizes,
            lambda x, s: ndimage.median_filter(x, size=(1, s, s)),
        ),
    }
    val_clean, test_clean = to_unit_float(val.x), to_unit_float(test.x)
    results, per_image = {}, {}
    for name, (knob, widths, apply) in candidates.items():
        noisy_val = to_unit_float(val_inputs)
        best = min(widths, key=lambda w: metrics.mse(val_clean, apply(noisy_val, w)))
        denoised = apply(to_unit_float(test_inputs), best)
        results[name] = {**image_quality(test_clean, denoised), knob: best}
        per_image[f"{name}_mse"] = per_image_mse(test_clean, denoised)
    return results, per_image


def pca_components(spec: AnyVariant) -> int:
    """The PCA baseline's components: as many as the variant's code units (at most 784)."""
    return min(spec.code_size, PIXELS)


# ------------------------------------------------------------------------ the stage


def evaluate_variant(
    spec: AnyVariant,
    params: Params,
    models: LoadedModels,
    clean: dict[str, Split],
    inputs: dict[str, Split],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, np.ndarray]]:
    """The test figures that judge one trained variant (``metrics.json``), the facts behind
    them (``evaluate.json``: counts and the settings the baselines chose), and the values
    per test image that the figures average (for the report's intervals)."""
    config = params.evaluation
    test, test_inputs = clean["test"], inputs["test"].x
    target = to_unit_float(test.x)
    started = time.perf_counter()

    def step(label: str) -> None:
        print(f"  {label} ({time.perf_counter() - started:.1f}s)", file=sys.stderr, flush=True)

    reconstruction = models.autoencoder.predict(
        as_model_input(test_inputs), batch_size=config.batch_size, verbose=0
    )
    result: dict[str, Any] = {"reconstruction": image_quality(target, reconstruction)}
    facts: dict[str, Any] = {"test_images": len(test), "code_size": spec.code_size}
    per_image = {"autoencoder_mse": per_image_mse(target, reconstruction)}
    step("reconstruction metrics")
    if spec.denoising:
        result["corrupted_input"] = image_quality(target, to_unit_float(test_inputs))
        result["psnr_gain_db"] = (
            result["reconstruction"]["psnr_db"] - result["corrupted_input"]["psnr_db"]
        )
        per_image["input_mse"] = per_image_mse(target, to_unit_float(test_inputs))
    if spec.variational:
        bounds = vae_bounds_per_image(
            models, test_inputs, test.x, config.iwae_samples, config.batch_size * 10
        )
        result["vae"] = {key: float(values.mean()) for key, values in bounds.items()}
        per_image |= bounds
        facts["iwae_samples"] = config.iwae_samples
        step(f"VAE bounds ({config.iwae_samples} samples per image)")

    # The probe learns from codes of what the model is fed (corrupted images for a denoiser),
    # so it is scored on codes of the same kind.
    probe_train = _probe_subset(
        Split(inputs["train"].x, clean["train"].y), config.probe_train_samples
    )
    train_codes = codes_of(models.encoder, probe_train.x, config.batch_size)
    test_codes = codes_of(models.encoder, test_inputs, config.batch_size)
    correct = probe_correct(train_codes, probe_train.y, test_codes, test.y)
    per_image["autoencoder_probe_correct"] = correct
    result["code"] = {
        "probe_accuracy": float(correct.mean()),
        "mean_activation": float(np.abs(test_codes).mean()),
        "near_zero_fraction": float(np.mean(np.abs(test_codes) < NEAR_ZERO)),
    }
    step("code-space probe")

    components = pca_components(spec)
    pca, pca_denoise, pca_per_image = pca_baseline(
        clean["train"], inputs["train"].x, test_inputs, test, components, config.probe_train_samples
    )
    result["baselines"] = {"pca": pca}
    per_image |= pca_per_image
    facts["pca_components"] = components
    if pca_denoise is not None:
        result["baselines"]["pca_denoise"] = pca_denoise
        filters, filter_per_image = filter_baselines(
            inputs["val"].x, clean["val"], test_inputs, test, config
        )
        per_image |= filter_per_image
        facts["gaussian_filter_sigma"] = filters["gaussian_filter"].pop("sigma")
        facts["median_filter_size"] = filters["median_filter"].pop("size")
        result["baselines"].update(filters)
    step("baselines")
    return result, facts, per_image


def validation_errors(
    spec: AnyVariant, models: LoadedModels, clean: dict[str, Split], inputs: dict[str, Split]
) -> dict[str, np.ndarray]:
    """Each validation image's reconstruction MSE against its clean image, sorted: the
    reference for flagging an image as unlike the training data (``aezoo``'s
    out-of-distribution flag takes a quantile of it). ``validation_mse`` is from what the
    model is fed (corrupted images for a denoiser); a denoiser also gets
    ``validation_mse_clean_input``, from clean images (``aezoo reconstruct``)."""
    target = to_unit_float(clean["val"].x)
    fed = {"validation_mse": inputs["val"].x}
    if spec.denoising:
        fed["validation_mse_clean_input"] = clean["val"].x
    return {
        key: np.sort(per_image_mse(target, _images(models.autoencoder, as_model_input(images))))
        for key, images in fed.items()
    }


# ------------------------------------------------------ what the render stage draws


def code_map_points(codes: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """2-D views of codes for the code map: the codes themselves when they are 2-D, else
    their first two principal components (with the variance they explain) and a t-SNE."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    count, width = codes.shape
    if width == 2:
        return {"code_map_points": codes.astype(np.float32)}
    pca = PCA(n_components=2, random_state=seed).fit(codes)
    reduced = codes
    if width > TSNE_INPUT_DIMS:
        reduced = PCA(min(TSNE_INPUT_DIMS, count), random_state=seed).fit_transform(codes)
    tsne = TSNE(
        n_components=2,
        perplexity=min(TSNE_PERPLEXITY, (count - 1) / 3),
        max_iter=TSNE_ITERATIONS,
        init="pca",
        random_state=seed,
    )
    # One OpenMP thread: the same result, and far faster on a busy machine (no spinning).
    with threadpool_limits(1):
        embedded = tsne.fit_transform(reduced)
    return {
        "code_map_pca": pca.transform(codes).astype(np.float32),
        "code_map_pca_explained": np.float64(pca.explained_variance_ratio_.sum()),
        "code_map_tsne": embedded.astype(np.float32),
    }


def _images(model: keras.Model, inputs: np.ndarray) -> np.ndarray:
    """A model's image output as ``(n, 28, 28)`` float32."""
    output = call_in_chunks(model, inputs)
    return np.asarray(output, np.float32).reshape(len(inputs), IMAGE_SIDE, IMAGE_SIDE)


def _codes(encoder: keras.Model, images: np.ndarray) -> np.ndarray:
    """:func:`codes_of` for the figures' few images, without tracing a graph."""
    return _flat_codes(call_in_chunks(encoder, as_model_input(images)), len(images))


def figure_arrays(
    spec: AnyVariant,
    params: Params,
    models: LoadedModels,
    clean: dict[str, Split],
    inputs: dict[str, Split],
) -> dict[str, np.ndarray]:
    """Everything the render stage draws that needs the model or a fit, as arrays.

    Reconstructions of fixed test digits (the first of each class, as in the seeds; 10 rows
    of them for a denoiser's triplet grid), the code map of the first
    ``render.code_map_samples`` test inputs, and for a VAE decoded prior samples,
    interpolations between test digits and, for a 2-D code, the latent manifold.
    """
    config, seed = params.render, params.training.seed
    test, test_inputs = clean["test"], inputs["test"].x
    chosen = progress_digits(test.y, config.grid_digits)
    arrays = {
        "grid_indices": chosen,
        "grid_outputs": _images(models.autoencoder, as_model_input(test_inputs[chosen])),
    }
    if spec.denoising:
        chosen = progress_digits(test.y, TRIPLET_ROWS * config.grid_digits)
        arrays["triplet_indices"] = chosen
        arrays["triplet_outputs"] = _images(models.autoencoder, as_model_input(test_inputs[chosen]))

    shown = slice(0, config.code_map_samples)
    codes = _codes(models.encoder, test_inputs[shown])
    arrays["code_map_labels"] = test.y[shown]
    arrays["code_width"] = np.int64(codes.shape[1])
    arrays |= code_map_points(codes, seed)

    if spec.variational:
        side, steps = config.vae_grid_side, config.interpolation_steps
        prior = np.random.default_rng(seed).standard_normal((side * side, spec.code_size))
        arrays["samples"] = _images(models.decoder, prior.astype(np.float32))

        first_of_class = {int(test.y[i]): i for i in progress_digits(test.y, 10)}
        pairs = [pair for pair in INTERPOLATION_PAIRS if set(pair) <= set(first_of_class)]
        ends = _codes(models.encoder, test_inputs[[first_of_class[d] for p in pairs for d in p]])
        starts, stops = ends[0::2], ends[1::2]
        fractions = np.linspace(0.0, 1.0, steps)[None, :, None]
        line = starts[:, None] + fractions * (stops - starts)[:, None]  # (pairs, steps, code)
        morphs = _images(models.decoder, line.reshape(-1, spec.code_size).astype(np.float32))
        arrays["interpolation"] = morphs.reshape(len(pairs), steps, IMAGE_SIDE, IMAGE_SIDE)
        arrays["interpolation_pairs"] = np.array(pairs, dtype=np.int64).reshape(-1, 2)

        if spec.code_size == 2:
            # As keras-io's vae.py: a grid of Gaussian quantiles, z[1] from high (top) to low.
            grid = norm.ppf(np.linspace(*MANIFOLD_QUANTILES, config.manifold_side))
            points = np.array([[x, y] for y in grid[::-1] for x in grid], dtype=np.float32)
            decoded = _images(models.decoder, points)
            arrays["manifold"] = decoded.reshape(len(grid), len(grid), IMAGE_SIDE, IMAGE_SIDE)
            arrays["manifold_grid"] = grid
    return arrays
