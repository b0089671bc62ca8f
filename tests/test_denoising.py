"""The classical denoisers of the denoising study, on small synthetic images (no MNIST)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from aezoo import denoising
from aezoo.denoising import (
    PER_TASK,
    Method,
    choose_setting,
    clipped,
    fixed_subset,
    per_image_psnr,
)

SIDE = 28


def smooth_images(count: int, seed: int) -> np.ndarray:
    """``count`` smooth 28x28 images in [0.1, 0.9]: a few wide Gaussian blobs each."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    images = np.zeros((count, SIDE, SIDE))
    for image in images:
        for _ in range(3):
            cy, cx = rng.uniform(6, 22, 2)
            width = rng.uniform(4, 7)
            image += rng.uniform(0.5, 1.0) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / width**2)
    low = images.min(axis=(1, 2), keepdims=True)
    high = images.max(axis=(1, 2), keepdims=True)
    return 0.1 + 0.8 * (images - low) / (high - low)


def sharp_images(count: int, seed: int) -> np.ndarray:
    """Images of independent random pixels: all detail, no smooth structure."""
    return np.random.default_rng(seed).uniform(0.1, 0.9, (count, SIDE, SIDE))


def with_noise(clean: np.ndarray, std: float, seed: int) -> np.ndarray:
    """``clean`` plus Gaussian noise, not clipped (as the study's noise)."""
    return clean + np.random.default_rng(seed).normal(0, std, clean.shape)


def mean_psnr(clean: np.ndarray, images: np.ndarray) -> float:
    return float(per_image_psnr(clean, np.clip(images, 0, 1)).mean())


# -------------------------------------------------------------------------- PSNR


def test_per_image_psnr_of_known_errors():
    clean = np.full((3, SIDE, SIDE), 0.5)
    images = clean + np.array([0.1, 0.01, -0.1])[:, None, None]
    np.testing.assert_allclose(per_image_psnr(clean, images), [20.0, 40.0, 20.0], rtol=1e-9)


def test_per_image_psnr_counts_an_exact_image_as_100_db_and_scores_each_image_alone():
    clean = smooth_images(4, 0)
    images = clean.copy()
    images[1] += 0.1  # only image 1 is off
    psnr = per_image_psnr(clean, images)
    assert psnr.shape == (4,)
    assert psnr[1] == pytest.approx(20.0)
    np.testing.assert_allclose(psnr[[0, 2, 3]], 100.0)


def test_per_image_psnr_takes_float32_and_flat_images():
    clean = smooth_images(2, 1).astype(np.float32)
    images = (clean + 0.1).reshape(2, -1)
    np.testing.assert_allclose(per_image_psnr(clean, images), 20.0, rtol=1e-5)


# ------------------------------------------------------------------------ subsets


def test_fixed_subset_is_sorted_distinct_in_range_and_fixed_by_its_seed():
    first = fixed_subset(1000, 100, seed=7)
    assert first.shape == (100,)
    assert np.all(np.diff(first) > 0)  # sorted, so distinct
    assert len(np.unique(first)) == 100
    assert first.min() >= 0 and first.max() < 1000
    np.testing.assert_array_equal(fixed_subset(1000, 100, seed=7), first)
    assert not np.array_equal(fixed_subset(1000, 100, seed=8), first)


@pytest.mark.parametrize("size", [50, 51, 1000])
def test_fixed_subset_is_every_index_when_it_asks_for_as_many(size):
    np.testing.assert_array_equal(fixed_subset(50, size, seed=3), np.arange(50))


# ------------------------------------------------------------ choosing a setting


def test_choose_setting_looks_at_the_validation_images_only():
    """Validation images that favour a wide blur, test images that favour a narrow one:
    the validation favourite is chosen, whatever the test images would say."""
    method = denoising.gaussian_filter()
    candidates = [0.3, 2.0]
    std = 0.2
    val_clean, test_clean = smooth_images(6, 10), sharp_images(6, 11)
    val_noisy, test_noisy = with_noise(val_clean, std, 12), with_noise(test_clean, std, 13)

    def score(clean, noisy, sigma):
        return float(per_image_psnr(clean, clipped(method, noisy, sigma, std)).mean())

    assert score(val_clean, val_noisy, 2.0) > score(val_clean, val_noisy, 0.3)
    assert score(test_clean, test_noisy, 0.3) > score(test_clean, test_noisy, 2.0)

    best, scores = choose_setting(method, candidates, val_noisy, val_clean, std)
    assert best == 2.0
    assert set(scores) == set(candidates)
    for sigma in candidates:
        assert scores[sigma] == pytest.approx(score(val_clean, val_noisy, sigma))
    # the same call on the test images picks their favourite
    assert choose_setting(method, candidates, test_noisy, test_clean, std)[0] == 0.3


def test_choose_setting_scores_every_candidate_and_picks_the_highest():
    method = denoising.median_filter()
    clean = smooth_images(4, 20)
    noisy = with_noise(clean, 0.15, 21)
    best, scores = choose_setting(method, [1, 3, 5, 7], noisy, clean, 0.15)
    assert list(scores) == [1, 3, 5, 7]
    assert best == max(scores, key=scores.get)
    assert scores[1] == pytest.approx(mean_psnr(clean, noisy))  # a width of 1 changes nothing
    assert scores[best] > scores[1]


def test_choose_setting_without_candidates_is_an_error():
    clean = smooth_images(2, 0)
    with pytest.raises(ValueError, match="gaussian_filter: no settings"):
        choose_setting(denoising.gaussian_filter(), [], clean, clean, 0.1)


# ----------------------------------------------------------------- the methods


@pytest.mark.parametrize(
    ("method", "setting"), [(denoising.gaussian_filter(), 1.0), (denoising.median_filter(), 3)]
)
def test_filters_reduce_noise_on_smooth_images(method, setting):
    clean = smooth_images(5, 30)
    noisy = with_noise(clean, 0.2, 31)
    output = clipped(method, noisy, setting, 0.2)
    assert output.shape == clean.shape
    assert mean_psnr(clean, output) > mean_psnr(clean, noisy) + 3
    assert np.all(per_image_psnr(clean, output) > per_image_psnr(clean, np.clip(noisy, 0, 1)))


@pytest.mark.parametrize(
    ("method", "setting"), [(denoising.gaussian_filter(), 1.5), (denoising.median_filter(), 5)]
)
def test_filters_work_within_each_image(method, setting):
    """A stack is filtered image by image: nothing leaks from one image into the next."""
    images = with_noise(smooth_images(3, 40), 0.2, 41)
    together = method.denoise(images, setting, 0.2)
    for index, image in enumerate(images):
        alone = method.denoise(image[None], setting, 0.2)[0]
        np.testing.assert_allclose(together[index], alone, atol=1e-12)


@pytest.fixture(autouse=True)
def one_blas_thread():
    """One BLAS thread: OpenBLAS's threads spin on a busy machine (PCA's fit, many x slower)."""
    with threadpool_limits(1):
        yield


def test_pca_projection_with_every_component_reproduces_its_input():
    train = sharp_images(900, 50)  # more images than pixels: 784 components span the space
    method = denoising.pca_projection(train, SIDE * SIDE)
    assert (method.name, method.setting_name) == ("pca", "components")
    images = sharp_images(5, 51)
    np.testing.assert_allclose(method.denoise(images, SIDE * SIDE, 0.1), images, atol=1e-3)


def test_pca_projection_with_few_components_loses_detail():
    train = sharp_images(900, 50)
    method = denoising.pca_projection(train, 64)
    images = sharp_images(5, 51)
    errors = [
        float(np.mean((method.denoise(images, components, 0.1) - images) ** 2))
        for components in (2, 16, 64)
    ]
    assert errors[0] > errors[1] > errors[2] > 1e-3  # random pixels: no few components hold them
    assert method.denoise(images, 2, 0.1).shape == images.shape


def test_pca_projection_keeps_what_lies_in_the_training_images_span():
    """Images from a 10-dimensional family: 10 components keep them, 2 lose most of them."""
    rng = np.random.default_rng(60)
    basis = rng.normal(size=(10, SIDE * SIDE))
    train = (0.5 + 0.01 * rng.normal(size=(300, 10)) @ basis).reshape(-1, SIDE, SIDE)
    method = denoising.pca_projection(train, 10)
    images = (0.5 + 0.01 * rng.normal(size=(4, 10)) @ basis).reshape(-1, SIDE, SIDE)
    np.testing.assert_allclose(method.denoise(images, 10, 0.1), images, atol=1e-4)
    lost = np.mean((method.denoise(images, 2, 0.1) - images) ** 2)
    assert lost > 0.1 * np.mean((images - 0.5) ** 2)


def test_clipped_output_is_float32_in_the_unit_range():
    overshoot = Method("overshoot", "gain", lambda images, gain, _std: gain * images - 0.5)
    images = smooth_images(3, 70).astype(np.float32)
    output = clipped(overshoot, images, 3.0, 0.1)
    assert output.dtype == np.float32 and output.shape == images.shape
    assert output.min() == 0.0 and output.max() == 1.0  # both ends were overshot, then clipped
    inside = (3.0 * images - 0.5 > 0) & (3.0 * images - 0.5 < 1)
    np.testing.assert_allclose(output[inside], (3.0 * images - 0.5)[inside], atol=1e-6)
    noisy = with_noise(images, 0.5, 71)  # far outside [0, 1]
    filtered = clipped(denoising.gaussian_filter(), noisy, 0.5, 0.5)
    assert filtered.dtype == np.float32 and filtered.min() >= 0 and filtered.max() <= 1


NOISE_STD = 0.2


@pytest.fixture(scope="module")
def few_noisy():
    clean = smooth_images(3, 80)
    return clean, with_noise(clean, NOISE_STD, 81)


def test_nl_means_improves_psnr(few_noisy):
    clean, noisy = few_noisy
    method = denoising.nl_means(patch_size=3, patch_distance=5, workers=1)
    assert (method.name, method.setting_name) == ("nl_means", "h / std")
    output = clipped(method, noisy, 0.8, NOISE_STD)
    assert output.shape == clean.shape
    assert mean_psnr(clean, output) > mean_psnr(clean, noisy) + 3
    assert np.all(per_image_psnr(clean, output) > per_image_psnr(clean, np.clip(noisy, 0, 1)))


def test_bm3d_improves_psnr(few_noisy):
    clean, noisy = few_noisy
    method = denoising.bm3d(workers=1)
    assert (method.name, method.setting_name) == ("bm3d", "sigma / std")
    output = clipped(method, noisy, 1.0, NOISE_STD)
    assert output.shape == clean.shape
    assert mean_psnr(clean, output) > mean_psnr(clean, noisy) + 3
    assert np.all(per_image_psnr(clean, output) > per_image_psnr(clean, np.clip(noisy, 0, 1)))


# ----------------------------------------------------------------- in parallel


def test_in_parallel_keeps_the_order_and_the_numbers():
    count = 2 * PER_TASK + 23  # three tasks, the last one short
    images = with_noise(smooth_images(count, 90), NOISE_STD, 91)
    one = partial(denoising._nl_means_one, h=0.8 * NOISE_STD, sigma=NOISE_STD, patch=3, distance=5)
    serial = denoising._in_parallel(one, images, workers=1)
    parallel = denoising._in_parallel(one, images, workers=2)
    assert parallel.shape == images.shape
    np.testing.assert_array_equal(parallel, serial)


def test_a_single_task_runs_in_this_process():
    """Up to PER_TASK images start no process: even an unpicklable function works."""
    images = smooth_images(PER_TASK, 100)
    doubled = denoising._in_parallel(lambda image: 2 * image, images, workers=4)
    np.testing.assert_array_equal(doubled, 2 * images)
