"""Image-quality metrics on batches of images in [0, 1] (any shape ``(n, ...)``)."""

from __future__ import annotations

import numpy as np

BCE_EPSILON = 1e-7  # Keras' clipping of probabilities in binary cross-entropy


def _per_image(values: np.ndarray) -> np.ndarray:
    return values.reshape(len(values), -1).mean(axis=1)


def mse(target: np.ndarray, prediction: np.ndarray) -> float:
    """Mean squared error over all pixels of all images."""
    diff = np.asarray(target, np.float64) - np.asarray(prediction, np.float64)
    return float(np.mean(diff * diff))


def binary_crossentropy(target: np.ndarray, prediction: np.ndarray) -> float:
    """Mean per-pixel binary cross-entropy in nats, with Keras' probability clipping."""
    p = np.clip(np.asarray(prediction, np.float64), BCE_EPSILON, 1 - BCE_EPSILON)
    t = np.asarray(target, np.float64)
    return float(np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p))))


def psnr(target: np.ndarray, prediction: np.ndarray, data_range: float = 1.0) -> float:
    """Mean per-image peak signal-to-noise ratio in dB; ``inf`` when every image is exact.

    Images that are reproduced exactly are infinite on their own; they are left out of the
    mean of the others so one perfect image does not make the whole figure infinite.
    """
    diff = np.asarray(target, np.float64) - np.asarray(prediction, np.float64)
    per_image = _per_image(diff * diff)
    finite = per_image > 0
    if not finite.any():
        return float("inf")
    return float(np.mean(10 * np.log10(data_range**2 / per_image[finite])))


def ssim(target: np.ndarray, prediction: np.ndarray, data_range: float = 1.0) -> float:
    """Mean structural similarity over images ``(n, h, w)``, via ``tf.image.ssim``.

    Wang et al. (2004) with TensorFlow's defaults: an 11x11 Gaussian window of sigma 1.5,
    K1 = 0.01, K2 = 0.03. Identical images give 1.
    """
    import tensorflow as tf  # only the stages that need SSIM pay for the import

    x = tf.constant(np.asarray(target, np.float32)[..., None])
    y = tf.constant(np.asarray(prediction, np.float32)[..., None])
    return float(tf.reduce_mean(tf.image.ssim(x, y, max_val=data_range)))
