"""Multiply-accumulate count of a model's forward pass for one example, from its layers' output shapes.

Counted, per example:

- ``Conv2D``: output height × width × filters × kernel height × kernel width × (input channels / groups);
- ``Conv1D``: output steps × filters × kernel size × (input channels / groups);
- ``DepthwiseConv2D``: output height × width × output channels × kernel height × kernel width;
- ``Dense``: (product of the output's leading axes) × input features × units.

Ignored, as MAC counts usually do (MLPerf Tiny's figures too): biases, BatchNorm (folded into the
preceding kernel on export), activations, pooling, additions, the z-score layer and the autoencoder's
score head (one subtraction, multiplication and average per feature). Layers of nested models are
counted. This module imports no TensorFlow.
"""

from __future__ import annotations

import math
from typing import Any


def _per_example(shape: Any) -> int:
    """Elements of one example of a (batch, ...) shape."""
    return math.prod(int(side) for side in tuple(shape)[1:])


def layer_macs(layer: Any) -> int:
    """Multiply-accumulates of one layer for one example (0 for layers that are not counted).

    Args:
        layer: a built Keras layer (Keras 3 or tf_keras) inside a functional model.

    Returns:
        The layer's MACs per example.
    """
    kind = type(layer).__name__
    if kind not in ("Conv1D", "Conv2D", "DepthwiseConv2D", "Dense"):
        return 0
    output = _per_example(layer.output.shape)
    if kind == "Dense":
        return output * int(layer.input.shape[-1])
    kernel_height, kernel_width = (*layer.kernel_size, 1)[:2]
    if kind == "DepthwiseConv2D":
        return output * kernel_height * kernel_width
    channels_per_group = int(layer.input.shape[-1]) // getattr(layer, "groups", 1)
    return output * kernel_height * kernel_width * channels_per_group


def count_macs(model: Any) -> int:
    """Multiply-accumulates of ``model``'s forward pass for one example (see the module docstring).

    Args:
        model: a built Keras functional model (nested models are descended into).

    Returns:
        The total MACs per example.
    """
    total = 0
    for layer in model.layers:
        total += count_macs(layer) if hasattr(layer, "layers") else layer_macs(layer)
    return total
