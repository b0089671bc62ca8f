"""Corruptions of clean images: Gaussian noise, salt-and-pepper, random masking.

One implementation in TensorFlow's stateless random ops serves both the corrupt stage (a fixed,
reproducible copy of every split) and training with fresh noise every epoch: the same
``(seed, counter)`` pair always gives the same bytes.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from aezoo.config import GaussianNoise, RandomMask, SaltAndPepper
from aezoo.data import Split, to_unit_float

CorruptionSpec = GaussianNoise | SaltAndPepper | RandomMask
CHUNK = 4096  # images corrupted per random draw; part of the definition of the output bytes
SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}


def corrupt_batch(clean: tf.Tensor, spec: CorruptionSpec, seed: tf.Tensor) -> tf.Tensor:
    """Corrupt a float batch in [0, 1]; ``seed`` is a stateless seed of shape [2]."""
    shape = tf.shape(clean)
    if isinstance(spec, GaussianNoise):
        noise = tf.random.stateless_normal(shape, seed, mean=spec.mean, stddev=spec.std)
        corrupted = clean + noise
    elif isinstance(spec, SaltAndPepper):
        hit_seed, salt_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        hit = tf.random.stateless_uniform(shape, hit_seed) < spec.amount
        salt = tf.random.stateless_uniform(shape, salt_seed) < spec.salt_ratio
        corrupted = tf.where(hit, tf.cast(salt, clean.dtype), clean)
    elif isinstance(spec, RandomMask):
        masked = tf.random.stateless_uniform(shape, seed) < spec.fraction
        corrupted = tf.where(masked, tf.constant(spec.fill, clean.dtype), clean)
    else:  # pragma: no cover - the config schema admits no other kind
        raise TypeError(f"unknown corruption {spec!r}")
    if spec.clip:
        corrupted = tf.clip_by_value(corrupted, 0.0, 1.0)
    return corrupted


def corrupt_split(images: np.ndarray, spec: CorruptionSpec, split: str) -> np.ndarray:
    """A reproducible corrupted copy of one split (uint8 in), as float16 in ``CHUNK`` steps."""
    stream = SPLIT_STREAMS[split]
    out = np.empty(images.shape, dtype=np.float16)
    for index, start in enumerate(range(0, len(images), CHUNK)):
        chunk = to_unit_float(images[start : start + CHUNK])
        seed = tf.constant([spec.seed, stream * 1_000_000 + index], dtype=tf.int64)
        out[start : start + CHUNK] = corrupt_batch(tf.constant(chunk), spec, seed).numpy()
    return out


def noisy_splits(clean: dict[str, Split], noise: CorruptionSpec) -> dict[str, Split]:
    """Every split of ``clean`` corrupted by ``noise``: the same bytes for every caller."""
    return {
        split: Split(corrupt_split(data.x, noise, split), data.y) for split, data in clean.items()
    }
