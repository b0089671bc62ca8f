"""Classical denoisers, the baselines of the denoising study: noisy images in, images out.

Each method has one setting, chosen on validation images by mean PSNR
(:func:`choose_setting`): a Gaussian filter's sigma, a median filter's width, PCA's number
of components (fit on clean training images), non-local means' filtering strength ``h``
(scikit-image) and BM3D's assumed noise level (the ``bm3d`` package, Mäkinen et al. 2020).
NL-means' and BM3D's settings are factors of the noise's standard deviation. Every output is
clipped to the images' range [0, 1], as the autoencoders' sigmoid outputs are.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy import ndimage

from aezoo.errors import AezooError
from aezoo.statistics import psnr_per_image

PER_TASK = 50  # images a worker process denoises per task
PIXELS = 28 * 28


def per_image_psnr(clean: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Each image's PSNR in dB against ``clean`` (range 1; an exact image counts as 100 dB)."""
    diff = clean.reshape(len(clean), -1).astype(np.float64) - images.reshape(len(images), -1)
    return psnr_per_image(np.mean(diff * diff, axis=1))


def require_packages() -> None:
    """Fail early, naming the fix, when the optional packages of the study are missing."""
    import importlib.util

    missing = [name for name in ("bm3d", "skimage") if importlib.util.find_spec(name) is None]
    if missing:
        raise AezooError(
            f"the denoising study needs {', '.join(missing)}: pip install -e '.[studies]' "
            "(bm3d is free for non-commercial use only)"
        )


def _each_image(denoise_one: Callable, images: np.ndarray) -> np.ndarray:
    return np.stack([denoise_one(np.asarray(image, np.float64)) for image in images])


def _in_parallel(denoise_one: Callable, images: np.ndarray, workers: int) -> np.ndarray:
    """``denoise_one`` on every image, in ``workers`` processes (the order is kept)."""
    if workers <= 1 or len(images) <= PER_TASK:
        return _each_image(denoise_one, images)
    chunks = [images[start : start + PER_TASK] for start in range(0, len(images), PER_TASK)]
    # spawn, not fork: the stage that calls this has TensorFlow's threads running
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return np.concatenate(list(pool.map(partial(_each_image, denoise_one), chunks)))


def _nl_means_one(image: np.ndarray, *, h: float, sigma: float, patch: int, distance: int):
    from skimage.restoration import denoise_nl_means

    return denoise_nl_means(
        image, h=h, sigma=sigma, patch_size=patch, patch_distance=distance, fast_mode=True
    )


def _bm3d_one(image: np.ndarray, *, sigma: float) -> np.ndarray:
    import bm3d

    return bm3d.bm3d(image, sigma_psd=sigma)  # the default profile (Mäkinen et al. 2020)


@dataclass(frozen=True)
class Method:
    """A classical denoiser: ``denoise(noisy, setting, noise_std)`` -> images, unclipped."""

    name: str
    setting_name: str
    denoise: Callable[[np.ndarray, float, float], np.ndarray]


def gaussian_filter() -> Method:
    return Method(
        "gaussian_filter",
        "sigma",
        lambda images, sigma, _std: ndimage.gaussian_filter(images, sigma=(0, sigma, sigma)),
    )


def median_filter() -> Method:
    return Method(
        "median_filter",
        "size",
        lambda images, size, _std: ndimage.median_filter(images, size=(1, int(size), int(size))),
    )


def pca_projection(clean_train: np.ndarray, max_components: int) -> Method:
    """Project onto the top principal components of the clean training images."""
    from sklearn.decomposition import PCA

    flat = clean_train.reshape(len(clean_train), -1).astype(np.float32)
    pca = PCA(n_components=max_components, svd_solver="covariance_eigh").fit(flat)

    def denoise(images: np.ndarray, components: float, _std: float) -> np.ndarray:
        basis = pca.components_[: int(components)]
        centred = images.reshape(len(images), -1) - pca.mean_
        return ((centred @ basis.T) @ basis + pca.mean_).reshape(images.shape)

    return Method("pca", "components", denoise)


def nl_means(patch_size: int, patch_distance: int, workers: int) -> Method:
    """Non-local means (scikit-image, fast mode) with ``h = factor * noise std``."""

    def denoise(images: np.ndarray, factor: float, std: float) -> np.ndarray:
        one = partial(_nl_means_one, h=factor * std, sigma=std, patch=patch_size,
                      distance=patch_distance)  # fmt: skip
        return _in_parallel(one, images, workers)

    return Method("nl_means", "h / std", denoise)


def bm3d(workers: int) -> Method:
    """BM3D told the noise level ``factor * noise std``."""

    def denoise(images: np.ndarray, factor: float, std: float) -> np.ndarray:
        return _in_parallel(partial(_bm3d_one, sigma=factor * std), images, workers)

    return Method("bm3d", "sigma / std", denoise)


def clipped(method: Method, images: np.ndarray, setting: float, std: float) -> np.ndarray:
    """``method``'s output for ``images``, clipped to [0, 1] (float32)."""
    return np.clip(method.denoise(images.astype(np.float64), setting, std), 0, 1).astype(np.float32)


def choose_setting(
    method: Method,
    candidates: Sequence[float],
    noisy: np.ndarray,
    clean: np.ndarray,
    std: float,
) -> tuple[float, dict[float, float]]:
    """The candidate with the highest mean PSNR on ``noisy`` against ``clean`` (validation
    images only), and every candidate's mean PSNR."""
    if not len(candidates):
        raise ValueError(f"{method.name}: no settings to choose from")
    scores = {
        setting: float(per_image_psnr(clean, clipped(method, noisy, setting, std)).mean())
        for setting in candidates
    }
    return max(scores, key=scores.__getitem__), scores


def fixed_subset(count: int, size: int, seed: int) -> np.ndarray:
    """``size`` of ``count`` image indices, drawn once by ``seed`` and sorted (all of them
    when ``size >= count``): every method of a comparison is scored on the same images."""
    if size >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size, replace=False))
