"""Image-quality metrics on batches of images in [0, 1] (any shape ``(n, ...)``)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

BCE_EPSILON = 1e-7  # Keras' clipping of probabilities in binary cross-entropy
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5  # tf.image.ssim's defaults
SSIM_K1, SSIM_K2 = 0.01, 0.03
SSIM_CHUNK = 1000  # images at a time: ~60 MB of float64 temporaries


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
    """Mean structural similarity over images ``(n, h, w)``, as ``tf.image.ssim`` defines it.

    Wang et al. (2004) with TensorFlow's defaults: an 11x11 Gaussian window of sigma 1.5 over
    the "valid" positions, K1 = 0.01, K2 = 0.03; identical images give 1. Computed here in
    float64 with the window's two 1-D halves (``tests/test_metrics.py`` checks it against
    TensorFlow), in chunks of ``SSIM_CHUNK`` images to bound memory.
    """
    target, prediction = np.asarray(target), np.asarray(prediction)
    if target.shape != prediction.shape or target.ndim != 3:
        raise ValueError(f"ssim needs two (n, h, w) arrays, got {target.shape}, {prediction.shape}")
    if min(target.shape[1:]) < SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels")
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    per_image = []
    for start in range(0, len(target), SSIM_CHUNK):
        x = target[start : start + SSIM_CHUNK].astype(np.float64)
        y = prediction[start : start + SSIM_CHUNK].astype(np.float64)
        mean_x, mean_y = _local_mean(x), _local_mean(y)
        means = 2 * mean_x * mean_y
        luminance = (means + c1) / (mean_x**2 + mean_y**2 + c1)
        contrast_structure = (2 * _local_mean(x * y) - means + c2) / (
            _local_mean(x * x + y * y) - mean_x**2 - mean_y**2 + c2
        )
        per_image.append((luminance * contrast_structure).mean(axis=(1, 2)))
    return float(np.concatenate(per_image).mean())


def _local_mean(images: np.ndarray) -> np.ndarray:
    """Gaussian-weighted means of every window that fits inside the images ("valid")."""
    offsets = np.arange(SSIM_WINDOW) - (SSIM_WINDOW - 1) / 2
    weights = np.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    weights /= weights.sum()
    rows = sliding_window_view(images, SSIM_WINDOW, axis=1) @ weights
    return sliding_window_view(rows, SSIM_WINDOW, axis=2) @ weights
