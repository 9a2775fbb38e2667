"""Put a tf_keras twin into the form tfmot's 8-bit scheme quantizes faithfully, without changing its function.

Two rewrites of a functional model, each removing a layer and absorbing it into the linear layer
(``Dense``, ``Conv2D``, ``DepthwiseConv2D``) it follows, when that layer has no activation of its own
and no other consumer:

- **BatchNorm folding.** ``y = γ·(Wx + b − μ)/√(σ² + ε) + β`` is the linear layer with
  ``W' = W·γ/√(σ² + ε)`` and ``b' = (b − μ)·γ/√(σ² + ε) + β`` (per output channel, inference statistics).
  The int8 converter folds BatchNorm the same way, so fine-tuning the folded form prunes and
  fake-quantizes the weights the device will hold; tfmot's own BatchNorm patterns quantize the unfolded
  kernel instead, and refuse BatchNorm after anything but a linear Conv2D/DepthwiseConv2D/Dense.
- **ReLU fusion.** ``Activation("relu")`` after a linear layer becomes that layer's ``activation``.
  tfmot 0.8.1's ``LayerReluActivationQuantize`` transform gives a Dense/Conv2D followed by a separate
  ReLU a no-op quantize config, so its kernel would get no fake quantizer (and no sparsity mask); with
  the ReLU inside the layer, tfmot quantizes the kernel and the ReLU output as TFLite fuses them.

Inference outputs are unchanged; callers prove it with :func:`edge.twin.check_same_outputs`.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LINEAR_LAYERS = ("Dense", "Conv2D", "DepthwiseConv2D")


def fold_batch_norm(
    kernel: np.ndarray,
    bias: np.ndarray | None,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    mean: np.ndarray,
    variance: np.ndarray,
    epsilon: float,
    depthwise: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Fold BatchNorm's inference transform into the kernel and bias of the linear layer before it.

    ``W' = W·γ/√(σ² + ε)`` per output channel and ``b' = (b − μ)·γ/√(σ² + ε) + β``, computed in float64.

    Args:
        kernel: Dense ``(in, out)``, Conv2D ``(h, w, in, out)`` or DepthwiseConv2D ``(h, w, in, multiplier)``
            kernel; output channel ``c`` of a depthwise kernel is ``in_index * multiplier + m``.
        bias: the layer's bias, or None when it has none (zero).
        gamma: BatchNorm's scale, or None when it has none (one).
        beta: BatchNorm's offset, or None when it has none (zero).
        mean: BatchNorm's moving mean.
        variance: BatchNorm's moving variance.
        epsilon: BatchNorm's epsilon.
        depthwise: whether ``kernel`` is a depthwise kernel.

    Returns:
        The folded kernel (shape of ``kernel``) and bias (one per output channel), float32.
    """
    channels = mean.shape[0]
    gamma = np.ones(channels) if gamma is None else np.asarray(gamma, np.float64)
    beta = np.zeros(channels) if beta is None else np.asarray(beta, np.float64)
    bias = np.zeros(channels) if bias is None else np.asarray(bias, np.float64)
    scale = gamma / np.sqrt(np.asarray(variance, np.float64) + epsilon)
    folded = np.asarray(kernel, np.float64) * (scale.reshape(kernel.shape[-2:]) if depthwise else scale)
    return folded.astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)


@dataclass
class FusedModel:
    """A rewritten model and what was absorbed into which layer.

    Args:
        model: the rewritten tf_keras model (the input model itself when nothing was absorbed).
        folded_batch_norms: BatchNorm layer names folded into their linear layer.
        fused_relus: Activation layer names moved into their linear layer.
    """

    model: Any
    folded_batch_norms: list[str] = field(default_factory=list)
    fused_relus: list[str] = field(default_factory=list)


def _entry(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The entry of layer ``name`` in a functional config."""
    return next(entry for entry in config["layers"] if entry["name"] == name)


def _single_producer(entry: dict[str, Any]) -> str | None:
    """The name of the one layer feeding ``entry`` (a layer of a functional config), if it has exactly one."""
    nodes = entry.get("inbound_nodes") or []
    return nodes[0][0][0] if len(nodes) == 1 and len(nodes[0]) == 1 else None


def _consumers(config: dict[str, Any]) -> Counter[str]:
    """How many times each layer's output is used (by other layers or as a model output)."""
    counts: Counter[str] = Counter(reference[0] for reference in config["output_layers"])
    for entry in config["layers"]:
        for node in entry.get("inbound_nodes") or []:
            counts.update(reference[0] for reference in node)
    return counts


def _absorbable(config: dict[str, Any], entry: dict[str, Any]) -> str | None:
    """The linear layer ``entry`` can be absorbed into: its only input, with no activation and no other consumer."""
    producer = _single_producer(entry)
    if producer is None:
        return None
    source = _entry(config, producer)
    linear = source["class_name"] in LINEAR_LAYERS and source["config"].get("activation") == "linear"
    return producer if linear and _consumers(config)[producer] == 1 else None


def _remove(config: dict[str, Any], name: str, producer: str) -> None:
    """Drop layer ``name`` from a functional config and feed its consumers from ``producer`` instead."""
    config["layers"] = [entry for entry in config["layers"] if entry["name"] != name]
    for entry in config["layers"]:
        for node in entry.get("inbound_nodes") or []:
            for reference in node:
                if reference[0] == name:
                    reference[0], reference[1], reference[2] = producer, 0, 0
    for reference in config["output_layers"]:
        if reference[0] == name:
            reference[0], reference[1], reference[2] = producer, 0, 0


def _last_axis(batch_norm: Any) -> bool:
    """Whether a BatchNormalization layer normalizes the last (channel) axis only."""
    return list(batch_norm.axis) == [len(batch_norm.input_shape) - 1]


def fuse_for_quantization(model: Any) -> FusedModel:
    """Fold every foldable BatchNorm, then move every ReLU after a linear layer into that layer.

    Args:
        model: a functional tf_keras model.

    Returns:
        The rewritten model with the weights of the original (folded where BatchNorm was absorbed) and
        the names of the absorbed layers. Layers that cannot be absorbed stay as they are.
    """
    config = copy.deepcopy(model.get_config())
    result = FusedModel(model)
    weights = _fold_batch_norms(model, config, result.folded_batch_norms)
    _fuse_relus(config, result.fused_relus)
    if not result.folded_batch_norms and not result.fused_relus:
        return result
    result.model = model.__class__.from_config(config)
    for layer in result.model.layers:
        if layer.weights:
            layer.set_weights(weights.get(layer.name) or model.get_layer(layer.name).get_weights())
    return result


def _fold_batch_norms(model: Any, config: dict[str, Any], folded: list[str]) -> dict[str, list[np.ndarray]]:
    """Remove every foldable BatchNorm from ``config`` (appending its name to ``folded``); return the folded
    weights of the linear layers that absorbed one."""
    weights: dict[str, list[np.ndarray]] = {}
    for entry in list(config["layers"]):
        if entry["class_name"] != "BatchNormalization":
            continue
        producer = _absorbable(config, entry)
        norm = model.get_layer(entry["name"])
        if producer is None or not _last_axis(norm):
            continue
        linear = model.get_layer(producer)
        kernel, bias = linear.get_weights()[0], (linear.get_weights()[1] if linear.use_bias else None)
        weights[producer] = list(
            fold_batch_norm(
                kernel,
                bias,
                None if norm.gamma is None else norm.gamma.numpy(),
                None if norm.beta is None else norm.beta.numpy(),
                norm.moving_mean.numpy(),
                norm.moving_variance.numpy(),
                norm.epsilon,
                type(linear).__name__ == "DepthwiseConv2D",
            )
        )
        _entry(config, producer)["config"]["use_bias"] = True
        _remove(config, entry["name"], producer)
        folded.append(entry["name"])
    return weights


def _fuse_relus(config: dict[str, Any], fused: list[str]) -> None:
    """Move every ``Activation("relu")`` that follows a linear layer into it (appending its name to ``fused``)."""
    for entry in list(config["layers"]):
        if entry["class_name"] != "Activation" or entry["config"].get("activation") != "relu":
            continue
        producer = _absorbable(config, entry)
        if producer is not None:
            _entry(config, producer)["config"]["activation"] = "relu"
            _remove(config, entry["name"], producer)
            fused.append(entry["name"])
