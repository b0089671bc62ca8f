"""Metric functions against known values."""

import math

import numpy as np
import pytest

from aezoo import metrics


def test_mse_and_psnr_of_a_known_pair():
    target = np.zeros((2, 28, 28))
    prediction = np.full((2, 28, 28), 0.1)
    assert metrics.mse(target, prediction) == pytest.approx(0.01)
    assert metrics.psnr(target, prediction) == pytest.approx(20.0)


def test_identical_images_give_infinite_psnr_and_unit_ssim():
    images = np.random.default_rng(0).random((3, 28, 28))
    assert metrics.mse(images, images) == 0
    assert math.isinf(metrics.psnr(images, images))
    assert metrics.ssim(images, images) == pytest.approx(1.0, abs=1e-6)


def test_psnr_leaves_exact_images_out_of_the_mean():
    target = np.zeros((2, 4, 4))
    prediction = target.copy()
    prediction[1] = 0.1
    assert metrics.psnr(target, prediction) == pytest.approx(20.0)


def test_bce_matches_the_closed_form_and_clips_like_keras():
    target = np.array([[1.0, 0.0]])
    prediction = np.array([[0.8, 0.2]])
    assert metrics.binary_crossentropy(target, prediction) == pytest.approx(-math.log(0.8))
    assert metrics.binary_crossentropy(target, 1 - target) == pytest.approx(-math.log(1e-7), 1e-6)


def test_ssim_falls_with_noise_and_is_symmetric():
    rng = np.random.default_rng(1)
    clean = rng.random((4, 28, 28))
    slightly, very = clean + 0.05 * rng.standard_normal(clean.shape), rng.random(clean.shape)
    assert 1 > metrics.ssim(clean, slightly) > metrics.ssim(clean, very)
    assert metrics.ssim(clean, slightly) == pytest.approx(metrics.ssim(slightly, clean), abs=1e-6)


def test_ssim_matches_tensorflow_on_digits_and_noise():
    import tensorflow as tf

    rng = np.random.default_rng(2)
    clean = rng.random((1500, 28, 28)) ** 4  # mostly dark, like digits; > one SSIM_CHUNK
    noisy = np.clip(clean + 0.3 * rng.standard_normal(clean.shape), 0, 1)
    blurred = (clean + np.roll(clean, 1, axis=1) + np.roll(clean, 1, axis=2)) / 3
    for other in (noisy, blurred):
        expected = tf.reduce_mean(
            tf.image.ssim(
                clean[..., None].astype(np.float32), other[..., None].astype(np.float32), 1.0
            )
        )
        assert metrics.ssim(clean, other) == pytest.approx(float(expected), abs=1e-5)


def test_ssim_names_what_it_cannot_take():
    with pytest.raises(ValueError, match="11x11"):
        metrics.ssim(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match=r"\(n, h, w\)"):
        metrics.ssim(np.zeros((2, 28, 28)), np.zeros((2, 28, 27)))
