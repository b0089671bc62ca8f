"""FLOPs of a training step, counted per layer, for GFLOP/s against the CPU's peak."""

from __future__ import annotations

import math

import keras


def forward_flops_per_sample(model) -> int:
    """Multiply-adds x 2 of one sample's forward pass through Dense and (transposed) convs.

    Nested models are walked; pooling, up-sampling, activations and losses are left out.
    """
    layers = keras.layers
    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers"):
            total += forward_flops_per_sample(layer)
        elif isinstance(layer, layers.Dense):
            fan_in, units = layer.kernel.shape
            positions = math.prod(layer.output.shape[1:-1])
            total += 2 * fan_in * units * positions
        elif isinstance(layer, layers.Conv2DTranspose):
            kernel_h, kernel_w, filters, channels = layer.kernel.shape
            positions = math.prod(layer.input.shape[1:-1])
            total += 2 * kernel_h * kernel_w * channels * filters * positions
        elif isinstance(layer, layers.Conv2D):
            kernel_h, kernel_w, channels, filters = layer.kernel.shape
            positions = math.prod(layer.output.shape[1:-1])
            total += 2 * kernel_h * kernel_w * channels * filters * positions
    return int(total)


def training_flops_per_sample(model) -> int:
    """FLOPs of one sample in a training step: forward + backward taken as 3x the forward."""
    return 3 * forward_flops_per_sample(model)
