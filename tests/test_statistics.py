"""Bootstrap intervals over test images and paired verdicts, on synthetic per-image errors."""

from __future__ import annotations

import numpy as np
import pytest

from aezoo.statistics import Interval, mean_interval, paired_difference, psnr_per_image, verdict

SETTINGS = {"resamples": 500, "confidence_level": 0.95, "seed": 0}
IMAGES = 10_000


def difficulty(n: int = IMAGES, seed: int = 0) -> np.ndarray:
    """Per-image errors of one method: positive, skewed, some images much harder than others."""
    return 0.02 * np.random.default_rng(seed).gamma(2.0, 0.5, n)


def symmetric_noise(n: int, scale: float, seed: int) -> np.ndarray:
    """Noise whose values come in +/- pairs: its mean is exactly zero."""
    half = np.random.default_rng(seed).normal(0, scale, n // 2)
    return np.random.default_rng(seed + 1).permutation(np.concatenate([half, -half]))


# ------------------------------------------------------------------ the interval


def test_interval_half_width_and_holds_its_ends():
    interval = Interval(estimate=0.5, low=0.25, high=1.0)
    assert interval.half_width == pytest.approx(0.375)
    assert interval.holds(0.25) and interval.holds(1.0) and interval.holds(0.5)
    assert not interval.holds(0.2499) and not interval.holds(1.0001)


def test_mean_interval_holds_the_mean_and_is_about_two_standard_errors_wide():
    values = difficulty()
    interval = mean_interval(values, **SETTINGS)
    assert interval.estimate == pytest.approx(values.mean(), rel=1e-12)
    assert interval.low < interval.estimate < interval.high
    standard_error = values.std(ddof=1) / np.sqrt(len(values))
    assert interval.half_width == pytest.approx(1.96 * standard_error, rel=0.15)


def test_a_higher_confidence_level_gives_a_wider_interval():
    values = difficulty(2000)
    narrow = mean_interval(values, resamples=500, confidence_level=0.5, seed=0)
    wide = mean_interval(values, resamples=500, confidence_level=0.99, seed=0)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_intervals_cover_the_true_mean_about_as_often_as_they_claim():
    rng = np.random.default_rng(7)
    true_mean = 0.02  # gamma(2, 0.01)
    held = [
        mean_interval(rng.gamma(2.0, 0.01, 300), resamples=300, confidence_level=0.9, seed=i).holds(
            true_mean
        )
        for i in range(100)
    ]
    assert 0.8 <= np.mean(held) <= 0.98


def test_same_seed_same_interval_and_another_seed_moves_the_ends():
    values = difficulty(3000)
    first = mean_interval(values, **SETTINGS)
    assert mean_interval(values.copy(), **SETTINGS) == first
    other = mean_interval(values, **{**SETTINGS, "seed": 1})
    assert other.estimate == first.estimate
    assert (other.low, other.high) != (first.low, first.high)
    pair = paired_difference(values, values * 1.01 + 0.001, **SETTINGS)
    assert paired_difference(values, values * 1.01 + 0.001, **SETTINGS) == pair


def test_constant_values_give_a_zero_width_interval():
    assert mean_interval(np.full(50, 0.25), **SETTINGS) == Interval(0.25, 0.25, 0.25)
    same = difficulty(100)
    difference = paired_difference(same, same.copy(), **SETTINGS)
    assert difference == Interval(0.0, 0.0, 0.0) and difference.half_width == 0
    assert verdict(difference, lower_is_better=True) == "tie"


def test_values_of_any_shape_are_flattened():
    values = difficulty(400)
    assert mean_interval(values.reshape(20, 20), **SETTINGS) == mean_interval(values, **SETTINGS)


@pytest.mark.parametrize(
    "values",
    [
        np.array([]),
        np.array([0.5]),
        np.array([0.1, np.nan, 0.2]),
        np.array([0.1, np.inf, 0.2]),
        np.array([0.1, -np.inf]),
    ],
    ids=["empty", "one value", "nan", "inf", "-inf"],
)
def test_too_few_or_non_finite_values_are_refused(values):
    with pytest.raises(ValueError, match="at least 2 finite values"):
        mean_interval(values, **SETTINGS)


def test_paired_values_must_be_of_the_same_images():
    with pytest.raises(ValueError, match=r"the same images, got \(10,\), \(9,\)"):
        paired_difference(np.ones(10), np.ones(9), **SETTINGS)
    with pytest.raises(ValueError, match="the same images"):
        paired_difference(np.ones((4, 5)), np.ones(20), **SETTINGS)
    with pytest.raises(ValueError, match="at least 2 finite values"):
        paired_difference(np.array([0.1, np.nan]), np.array([0.1, 0.2]), **SETTINGS)
    with pytest.raises(ValueError, match="at least 2 finite values"):
        paired_difference(np.array([0.1]), np.array([0.2]), **SETTINGS)


# ------------------------------------------------------------- paired verdicts


def test_a_known_difference_is_found_and_excludes_zero():
    errors_a = difficulty()
    noise = np.random.default_rng(1).normal(0, 0.002, IMAGES)
    errors_b = errors_a + 0.01 + noise
    difference = paired_difference(errors_b, errors_a, **SETTINGS)
    assert difference.estimate == pytest.approx(0.01 + noise.mean(), rel=1e-9)
    assert difference.holds(0.01) and not difference.holds(0.0)
    assert difference.low > 0.009 and difference.high < 0.011
    # b - a > 0: b has the higher error, so a (the second) wins when lower is better
    assert verdict(difference, lower_is_better=True) == "second"
    assert verdict(difference, lower_is_better=False) == "first"
    reverse = paired_difference(errors_a, errors_b, **SETTINGS)
    assert reverse.estimate == pytest.approx(-difference.estimate)
    assert verdict(reverse, lower_is_better=True) == "first"
    assert verdict(reverse, lower_is_better=False) == "second"


def test_no_true_difference_is_a_tie():
    errors_a = difficulty()
    errors_b = errors_a + symmetric_noise(IMAGES, 0.002, seed=3)
    difference = paired_difference(errors_b, errors_a, **SETTINGS)
    assert difference.estimate == pytest.approx(0.0, abs=1e-15)
    assert difference.holds(0.0) and difference.low < 0 < difference.high
    assert verdict(difference, lower_is_better=True) == "tie"
    assert verdict(difference, lower_is_better=False) == "tie"


def test_pairing_removes_the_spread_the_two_methods_share():
    errors_a = difficulty()  # both methods find the same images hard
    errors_b = errors_a * 1.02 + np.random.default_rng(2).normal(0, 0.0005, IMAGES)
    paired = paired_difference(errors_b, errors_a, **SETTINGS)
    spread_a = mean_interval(errors_a, **SETTINGS).half_width
    spread_b = mean_interval(errors_b, **SETTINGS).half_width
    unpaired = np.hypot(spread_a, spread_b)  # the half-width if the two were independent
    assert paired.half_width < 0.1 * unpaired
    assert not paired.holds(0.0)  # a 2% difference that the unpaired intervals cannot tell apart
    assert mean_interval(errors_a, **SETTINGS).high > mean_interval(errors_b, **SETTINGS).low


@pytest.mark.parametrize(
    ("difference", "lower_is_better", "expected"),
    [
        (Interval(-0.5, -1.0, -0.1), True, "first"),
        (Interval(-0.5, -1.0, -0.1), False, "second"),
        (Interval(0.5, 0.1, 1.0), True, "second"),
        (Interval(0.5, 0.1, 1.0), False, "first"),
        (Interval(0.1, -0.1, 0.3), True, "tie"),
        (Interval(0.1, 0.0, 0.3), True, "tie"),  # an end on zero holds it
        (Interval(-0.1, -0.3, 0.0), False, "tie"),
    ],
)
def test_verdict_by_the_interval(difference, lower_is_better, expected):
    assert verdict(difference, lower_is_better=lower_is_better) == expected


def test_psnr_per_image():
    mse = np.array([0.01, 0.001, 0.0, 1.0])
    assert psnr_per_image(mse) == pytest.approx([20.0, 30.0, 100.0, 0.0])
    assert psnr_per_image(np.array([65.025]), data_range=255.0) == pytest.approx([30.0])
    assert psnr_per_image(np.float32([0.01])).dtype == np.float64
