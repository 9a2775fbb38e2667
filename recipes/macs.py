"""Multiply-accumulate count of a model's forward pass for one example, from its layers' output shapes.

Counted, per example:

- ``Conv2D``: output height × width × filters × kernel height × kernel width × (input channels / groups);
- ``Conv1D``: output steps × filters × kernel size × (input channels / groups);
- ``DepthwiseConv2D``: output height × width × output channels × kernel height × kernel width;
- ``Dense``: (product of the output's leading axes) × input features × units.

Ignored, as MAC counts usually do (MLPerf Tiny's figures too): biases, BatchNorm (folded into the
preceding kernel on export), activations, pooling, additions, the z-score layer and the autoencoder's
score head (one subtraction, multiplication and average per feature). Layers of nested models are
counted. :func:`count_macs_by_kind` splits the count by kernel kind (convolution, depthwise, dense) and
counts the device operators, for the calibrated latency estimate of :mod:`tuning.hardware`. This module
imports no TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
    if kind not in _KIND_OF_LAYER:
        return 0
    output = _per_example(layer.output.shape)
    if kind == "Dense":
        return output * int(layer.input.shape[-1])
    kernel_height, kernel_width = (*layer.kernel_size, 1)[:2]
    if kind == "DepthwiseConv2D":
        return output * kernel_height * kernel_width
    channels_per_group = int(layer.input.shape[-1]) // getattr(layer, "groups", 1)
    return output * kernel_height * kernel_width * channels_per_group


@dataclass(frozen=True)
class MacCounts:
    """A model's multiply-accumulates per example split by the kind of kernel that does them.

    Attributes:
        conv: ``Conv1D`` and ``Conv2D`` MACs (pointwise 1×1 convolutions included).
        depthwise: ``DepthwiseConv2D`` MACs.
        dense: ``Dense`` (fully connected) MACs.
        ops: device operators: the layers above plus pooling, additions, multiplications, concatenations,
            flattening and reshapes (BatchNorm folds away, activations fuse, the z-score layer travels in
            the manifest).
    """

    conv: int
    depthwise: int
    dense: int
    ops: int

    @property
    def total(self) -> int:
        """All MACs (what :func:`count_macs` reports)."""
        return self.conv + self.depthwise + self.dense


_KIND_OF_LAYER = {"Conv1D": "conv", "Conv2D": "conv", "DepthwiseConv2D": "depthwise", "Dense": "dense"}
# Layers without MACs that still run as an operator on the device.
_OPERATOR_LAYERS = {
    "Add",
    "Subtract",
    "Multiply",
    "Concatenate",
    "AveragePooling1D",
    "AveragePooling2D",
    "MaxPooling1D",
    "MaxPooling2D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "Flatten",
    "Reshape",
}


def leaf_layers(model: Any) -> list[Any]:
    """The layers of ``model``, nested models replaced by their own layers."""
    leaves = []
    for layer in model.layers:
        leaves.extend(leaf_layers(layer) if hasattr(layer, "layers") else [layer])
    return leaves


def count_macs_by_kind(model: Any) -> MacCounts:
    """Multiply-accumulates of ``model`` for one example, split by kernel kind, and its device operators.

    Args:
        model: a built Keras functional model (nested models are descended into).

    Returns:
        The per-kind counts; their :attr:`MacCounts.total` equals :func:`count_macs`.
    """
    counts = {"conv": 0, "depthwise": 0, "dense": 0}
    ops = 0
    for layer in leaf_layers(model):
        kind = type(layer).__name__
        if kind in _KIND_OF_LAYER:
            counts[_KIND_OF_LAYER[kind]] += layer_macs(layer)
            ops += 1
        elif kind in _OPERATOR_LAYERS:
            ops += 1
    return MacCounts(ops=ops, **counts)


def count_macs(model: Any) -> int:
    """Multiply-accumulates of ``model``'s forward pass for one example (see the module docstring).

    Args:
        model: a built Keras functional model (nested models are descended into).

    Returns:
        The total MACs per example.
    """
    return sum(layer_macs(layer) for layer in leaf_layers(model))
