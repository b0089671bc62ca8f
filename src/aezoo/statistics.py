"""How sure a figure is: bootstrap intervals over the test images, and paired verdicts.

Every figure the report gives is a mean over test images (MSE, PSNR, accuracy, -ELBO), so
its uncertainty is the mean's: :func:`mean_interval` resamples the images. Two methods
scored on the same images are compared by the mean of their per-image differences
(:func:`paired_difference`): pairing removes the spread between easy and hard images,
which both methods share. A difference whose interval holds zero is a tie (:func:`verdict`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import bootstrap

BATCH_VALUES = 4_000_000  # floats resampled at once (32 MB)


@dataclass(frozen=True)
class Interval:
    """A mean over images and its bootstrap confidence interval."""

    estimate: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def holds(self, value: float) -> bool:
        return self.low <= value <= self.high


def mean_interval(
    values: np.ndarray, *, resamples: int, confidence_level: float, seed: int
) -> Interval:
    """The mean of ``values`` (one per test image) with a percentile bootstrap interval."""
    values = np.asarray(values, np.float64).ravel()
    if len(values) < 2 or not np.all(np.isfinite(values)):
        raise ValueError(f"a bootstrap interval needs at least 2 finite values, got {values[:5]}")
    if np.ptp(values) == 0:  # every image the same: no spread to resample
        return Interval(float(values[0]), float(values[0]), float(values[0]))
    result = bootstrap(
        (values,),
        np.mean,
        n_resamples=resamples,
        confidence_level=confidence_level,
        method="percentile",
        vectorized=True,
        batch=max(1, BATCH_VALUES // len(values)),
        random_state=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return Interval(float(values.mean()), float(low), float(high))


def paired_difference(
    first: np.ndarray, second: np.ndarray, *, resamples: int, confidence_level: float, seed: int
) -> Interval:
    """``mean(first) - mean(second)`` over the same images, with a paired bootstrap interval
    (the images are resampled together, so each keeps its pair)."""
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if first.shape != second.shape:
        raise ValueError(f"paired values need the same images, got {first.shape}, {second.shape}")
    return mean_interval(
        first - second, resamples=resamples, confidence_level=confidence_level, seed=seed
    )


Verdict = Literal["first", "second", "tie"]


def verdict(difference: Interval, *, lower_is_better: bool) -> Verdict:
    """Which of two methods wins, by ``difference`` = first - second: "tie" when the
    interval holds zero."""
    if difference.holds(0.0):
        return "tie"
    first_lower = difference.high < 0
    return "first" if first_lower == lower_is_better else "second"


def psnr_per_image(mse: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Each image's PSNR in dB from its MSE (an exact image counts as 100 dB)."""
    return 10 * np.log10(data_range**2 / np.maximum(np.asarray(mse, np.float64), 1e-10))
