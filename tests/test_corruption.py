"""Corruptions on real MNIST: deterministic bytes and the statistics each kind promises."""

import numpy as np
import pytest

from aezoo.config import GaussianNoise, RandomMask, SaltAndPepper
from aezoo.corruption import corrupt_split
from aezoo.data import load_prepared, to_unit_float

pytestmark = pytest.mark.integration  # every test here corrupts real digits


@pytest.fixture(scope="module")
def test_images(prepared_small):
    return load_prepared(prepared_small / "clean.npz")["test"].x


def test_same_seed_same_bytes_other_seed_other_bytes(test_images):
    spec = GaussianNoise(kind="gaussian", mean=0.0, std=0.5, clip=True, seed=7)
    first = corrupt_split(test_images, spec, "test")
    again = corrupt_split(test_images, spec, "test")
    assert first.tobytes() == again.tobytes()
    other = corrupt_split(test_images, spec.model_copy(update={"seed": 8}), "test")
    assert first.tobytes() != other.tobytes()
    # splits draw from separate streams, so val noise is not a copy of test noise
    assert corrupt_split(test_images, spec, "val").tobytes() != first.tobytes()


def test_shifted_gaussian_statistics_unclipped(test_images):
    spec = GaussianNoise(kind="gaussian", mean=0.5, std=0.5, clip=False, seed=1)
    noise = corrupt_split(test_images, spec, "test").astype(np.float64) - to_unit_float(test_images)
    assert noise.mean() == pytest.approx(0.5, abs=0.005)
    assert noise.std() == pytest.approx(0.5, abs=0.005)


def test_clipped_gaussian_stays_in_unit_range(test_images):
    spec = GaussianNoise(kind="gaussian", mean=0.5, std=0.5, clip=True, seed=1)
    corrupted = corrupt_split(test_images, spec, "test")
    assert corrupted.min() >= 0 and corrupted.max() <= 1
    assert corrupted.mean() > to_unit_float(test_images).mean() + 0.3


def test_salt_and_pepper_hits_the_requested_fraction(test_images):
    spec = SaltAndPepper(kind="salt_and_pepper", amount=0.2, salt_ratio=0.5, clip=True, seed=3)
    corrupted = corrupt_split(test_images, spec, "test")
    clean = to_unit_float(test_images).astype(np.float16)
    changed = corrupted != clean
    # a salt grain changes a pixel unless it was already white, pepper unless already black
    expected = 0.2 * (0.5 * np.mean(clean != 1) + 0.5 * np.mean(clean != 0))
    assert changed.mean() == pytest.approx(expected, abs=0.01)
    assert set(np.unique(corrupted[changed])) <= {0.0, 1.0}


def test_mask_zeroes_the_requested_fraction(test_images):
    spec = RandomMask(kind="mask", fraction=0.5, fill=0.0, clip=True, seed=3)
    corrupted = corrupt_split(test_images, spec, "test")
    clean = to_unit_float(test_images)
    masked_fraction = ((corrupted == 0) & (clean > 0)).sum() / (clean > 0).sum()
    assert masked_fraction == pytest.approx(0.5, abs=0.02)
