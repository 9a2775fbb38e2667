"""The MLPerf Tiny reference architectures as recipes: ds_cnn, mobilenet_v1, resnet8, autoencoder.

Each builder reproduces one reference model of the MLPerf Tiny benchmark (the training code in
github.com/mlcommons/tiny, ``benchmark/training/``) at its defaults: the same layers, filters, kernels,
strides and padding, biases kept before BatchNorm (as the reference has them, so the parameter counts
match), BatchNorm between each linear layer and its activation, the reference's initializers and its
L2 weight decay (Keras ``l2(1e-4)``: see ``weight_decay`` in :mod:`recipes.config`).

- ``ds_cnn``: keyword spotting (``keyword_spotting/keras_model.py``), 49×10×1 MFCCs, 12 classes.
- ``mobilenet_v1``: visual wake words (``visual_wake_words/vww_model.py``), width 0.25, 96×96×3, 2 classes.
- ``resnet8``: CIFAR-10-size images (``image_classification/keras_model.py``, 16 first filters), 32×32×3,
  10 classes.
- ``autoencoder``: machine anomaly detection (``anomaly_detection/keras_model.py``), 640 inputs,
  128×4 → 8 → 128×4 dense layers.

Two details of the references (written for tf.keras 2) are kept on purpose: their depthwise convolutions
pass ``kernel_initializer``/``kernel_regularizer``, which tf.keras's ``DepthwiseConv2D`` does not apply
to the depthwise kernel, so those kernels are glorot-uniform and not decayed; and only convolution and
hidden dense kernels are regularized, never the output layer.

What differs, deliberately: every model starts with our z-score layer (training-split statistics, no
weights, so parameter counts are unaffected) and so takes raw inputs; the config varies the width
(``width_multiplier``), the depth (``blocks``) and the input shape (from the data); and the autoencoder
ends in its anomaly score (see :func:`build_autoencoder`).
"""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any

from edge.device.errors import UserError
from recipes.config import TrainConfig
from recipes.layers import (
    DataSpec,
    activate,
    batch_norm,
    initializer_for,
    keras_module_or_default,
    kernel_regularizer,
    zscore_input,
)

# The input shape and classes each reference was designed for (what `python cli.py recipes` lists).
REFERENCE_SPECS: dict[str, DataSpec] = {
    "ds_cnn": DataSpec((49, 10, 1), 12),
    "mobilenet_v1": DataSpec((96, 96, 3), 2),
    "resnet8": DataSpec((32, 32, 3), 10),
    "autoencoder": DataSpec((640,), 2),
}

DS_CNN_FILTERS = 64
DS_CNN_BLOCKS = 4
# MobileNetV1's 13 depthwise-separable blocks: (stride, pointwise filters at width 1); the reference
# runs them at width (alpha) 0.25 after a 32-filter (8 at 0.25) stride-2 convolution.
MOBILENET_ALPHA = 0.25
MOBILENET_FIRST_FILTERS = 32
MOBILENET_BLOCKS = (
    (1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
    (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024),
)  # fmt: skip
RESNET_FILTERS = 16
RESNET_STACKS = 3
AUTOENCODER_UNITS = 128
AUTOENCODER_LAYERS = 4
# The reference models' own initializers; the depthwise kernels always got glorot-uniform (see above).
HE = "he"  # Keras's he_normal: VarianceScaling(2, fan_in, truncated normal), our "he"
GLOROT = "glorot_uniform"


def _width(config: TrainConfig, units: float) -> int:
    """``units`` scaled by ``width_multiplier``, rounded, at least 1."""
    return max(1, round(units * config.width_multiplier))


def _initializer(config: TrainConfig, reference: str, keras: ModuleType) -> Any:
    """The reference's initializer when ``initializer`` is auto, else the one the config names."""
    name = reference if config.initializer == "auto" else config.initializer
    return initializer_for(dataclasses.replace(config, initializer=name), config.activation, keras)


def _image_input(spec: DataSpec, recipe: str, example: str) -> None:
    """Refuse data that is not (height, width, channels)."""
    if len(spec.input_shape) != 3:
        raise UserError(
            f"the {recipe} recipe needs inputs shaped (height, width, channels) like {example}; this data "
            f"has shape {spec.input_shape}: use --recipe mlp or autoencoder for tabular data"
        )


def _conv_bn_relu(
    keras: ModuleType,
    x: Any,
    config: TrainConfig,
    spec: DataSpec,
    initializer: str,
    filters: int,
    kernel_size: int | tuple[int, int],
    strides: int | tuple[int, int] = 1,
    activation: bool = True,
) -> Any:
    """Conv2D (with bias, weight decay) → BatchNorm → [activation], as the references stack them."""
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        kernel_initializer=_initializer(config, initializer, keras),
        kernel_regularizer=kernel_regularizer(config, spec, keras),
    )(x)
    x = batch_norm(keras, config)(x)
    return activate(keras, x, config.activation) if activation else x


def _depthwise_separable(
    keras: ModuleType, x: Any, config: TrainConfig, spec: DataSpec, initializer: str, filters: int, strides: int
) -> Any:
    """3×3 depthwise → BN → activation → 1×1 pointwise → BN → activation (MobileNet's block)."""
    x = keras.layers.DepthwiseConv2D(
        3, strides=strides, padding="same", depthwise_initializer=_initializer(config, GLOROT, keras)
    )(x)
    x = batch_norm(keras, config)(x)
    x = activate(keras, x, config.activation)
    return _conv_bn_relu(keras, x, config, spec, initializer, filters, 1)


def _classifier(keras: ModuleType, x: Any, config: TrainConfig, spec: DataSpec, initializer: str) -> Any:
    """Flatten → softmax over the classes (not regularized, as in the references)."""
    x = keras.layers.Flatten()(x)
    return keras.layers.Dense(
        spec.num_classes,
        activation="softmax",
        kernel_initializer=_initializer(config, initializer, keras),
        name="probabilities",
    )(x)


def build_ds_cnn(config: TrainConfig, spec: DataSpec, keras_module: ModuleType | None = None) -> Any:
    """Depthwise-separable CNN for keyword spotting (MLPerf Tiny KWS reference, 24,908 parameters).

    z-score → Conv2D(64, 10×4, stride 2) → BN → activation → dropout → ``blocks`` × [depthwise 3×3 → BN →
    activation → pointwise 64 → BN → activation] → dropout (2 × ``dropout``) → average pooling over
    (height // 2, width // 2) of the input → softmax. Weight decay on the full and pointwise kernels.

    Args:
        config: training config (width_multiplier scales the 64 filters, blocks the 4 depthwise-separable
            blocks; dropout, activation, initializer, weight_decay, l1/l2).
        spec: input shape (time frames, coefficients, channels), e.g. (49, 10, 1) MFCCs; classes.
        keras_module: ``keras`` (default) or ``tf_keras``.

    Returns:
        An uncompiled model taking raw features and returning class probabilities.
    """
    _image_input(spec, "ds_cnn", "MFCCs (49, 10, 1)")
    keras = keras_module_or_default(keras_module)
    filters = _width(config, DS_CNN_FILTERS)
    inputs, x = zscore_input(keras, spec)
    x = _conv_bn_relu(keras, x, config, spec, GLOROT, filters, (10, 4), strides=2)
    if config.dropout > 0:
        x = keras.layers.Dropout(config.dropout)(x)
    for _ in range(config.blocks or DS_CNN_BLOCKS):
        x = _depthwise_separable(keras, x, config, spec, GLOROT, filters, 1)
    if config.dropout > 0:
        x = keras.layers.Dropout(2 * config.dropout)(x)
    height, width = spec.input_shape[:2]
    x = keras.layers.AveragePooling2D((max(1, height // 2), max(1, width // 2)))(x)
    return keras.Model(inputs, _classifier(keras, x, config, spec, GLOROT), name="ds_cnn")


def build_mobilenet_v1(config: TrainConfig, spec: DataSpec, keras_module: ModuleType | None = None) -> Any:
    """MobileNetV1 at width 0.25 for visual wake words (MLPerf Tiny VWW reference, 221,794 parameters at 96×96×3).

    z-score → Conv2D(32α, 3×3, stride 2) → BN → activation → the first ``blocks`` of MobileNetV1's 13
    depthwise-separable blocks (strides and widths of :data:`MOBILENET_BLOCKS`, times α) → average
    pooling over the whole map → softmax; α = 0.25 × ``width_multiplier``. Weight decay on the full and
    pointwise kernels; He initialization.

    Args:
        config: training config (width_multiplier, blocks ≤ 13, activation, initializer, weight_decay, l1/l2).
        spec: input shape (height, width, channels), e.g. (96, 96, 3); classes.
        keras_module: ``keras`` (default) or ``tf_keras``.

    Returns:
        An uncompiled model taking raw images and returning class probabilities.
    """
    _image_input(spec, "mobilenet_v1", "images (96, 96, 3)")
    blocks = config.blocks or len(MOBILENET_BLOCKS)
    if blocks > len(MOBILENET_BLOCKS):
        raise UserError(
            f"mobilenet_v1 has at most {len(MOBILENET_BLOCKS)} depthwise-separable blocks, got blocks={blocks}; "
            "e.g. --set blocks=7"
        )
    keras = keras_module_or_default(keras_module)
    alpha = MOBILENET_ALPHA * config.width_multiplier
    inputs, x = zscore_input(keras, spec)
    x = _conv_bn_relu(keras, x, config, spec, HE, max(1, round(MOBILENET_FIRST_FILTERS * alpha)), 3, strides=2)
    for strides, filters in MOBILENET_BLOCKS[:blocks]:
        x = _depthwise_separable(keras, x, config, spec, HE, max(1, round(filters * alpha)), strides)
    x = keras.layers.AveragePooling2D(tuple(x.shape[1:3]))(x)
    return keras.Model(inputs, _classifier(keras, x, config, spec, GLOROT), name="mobilenet_v1")


def build_resnet8(config: TrainConfig, spec: DataSpec, keras_module: ModuleType | None = None) -> Any:
    """ResNet-8 for small images (MLPerf Tiny image-classification reference, 78,666 parameters).

    z-score → Conv2D(16, 3×3) → BN → activation → ``blocks`` residual stacks, each two 3×3 convolutions
    (the second without activation) added to the shortcut, then activation; stack k ≥ 2 doubles the
    filters and halves the map (stride 2, with a 1×1 stride-2 convolution on the shortcut) → average
    pooling over the map → softmax. Weight decay on every convolution; He initialization.

    Args:
        config: training config (width_multiplier scales the 16 first filters, blocks the 3 stacks;
            activation, initializer, weight_decay, l1/l2).
        spec: input shape (height, width, channels), e.g. (32, 32, 3); classes.
        keras_module: ``keras`` (default) or ``tf_keras``.

    Returns:
        An uncompiled model taking raw images and returning class probabilities.
    """
    _image_input(spec, "resnet8", "images (32, 32, 3)")
    keras = keras_module_or_default(keras_module)
    filters = _width(config, RESNET_FILTERS)
    inputs, x = zscore_input(keras, spec)
    x = _conv_bn_relu(keras, x, config, spec, HE, filters, 3)
    for stack in range(config.blocks or RESNET_STACKS):
        strides = 1 if stack == 0 else 2
        stack_filters = filters * 2**stack
        y = _conv_bn_relu(keras, x, config, spec, HE, stack_filters, 3, strides=strides)
        y = _conv_bn_relu(keras, y, config, spec, HE, stack_filters, 3, activation=False)
        if stack > 0:  # the shortcut must change shape with the stack: 1×1 convolution, no BN
            x = keras.layers.Conv2D(
                stack_filters,
                1,
                strides=strides,
                padding="same",
                kernel_initializer=_initializer(config, HE, keras),
                kernel_regularizer=kernel_regularizer(config, spec, keras),
            )(x)
        x = activate(keras, keras.layers.Add()([x, y]), config.activation)
    x = keras.layers.AveragePooling2D(min(x.shape[1:3]))(x)
    return keras.Model(inputs, _classifier(keras, x, config, spec, HE), name="resnet8")


def build_autoencoder(config: TrainConfig, spec: DataSpec, keras_module: ModuleType | None = None) -> Any:
    """Dense autoencoder for anomaly detection (MLPerf Tiny AD reference, 269,992 parameters at 640 inputs).

    z-score → flatten → ``blocks`` × Dense(128) → bottleneck Dense(8) → ``blocks`` × Dense(128), each
    followed by BN and activation → Dense(inputs) = the reconstruction of the z-scored input. The model
    then outputs the anomaly score, the mean squared reconstruction error per example, shape (n, 1):
    the score head (subtract, square, average) has no weights, runs on TFLite Micro, and lets an
    exported model report the score directly. Training minimizes the score of normal examples.

    Args:
        config: training config (width_multiplier scales the 128 units, blocks the 4 layers per side,
            bottleneck_units the 8; activation, initializer, weight_decay, l1/l2 on the hidden layers).
        spec: input shape, e.g. (640,) = 5 frames × 128 bands; its statistics.
        keras_module: ``keras`` (default) or ``tf_keras``.

    Returns:
        An uncompiled model taking raw features and returning the anomaly score.
    """
    keras = keras_module_or_default(keras_module)
    inputs, normalized = zscore_input(keras, spec)
    if len(spec.input_shape) > 1:
        normalized = keras.layers.Flatten()(normalized)
    features = int(normalized.shape[-1])
    layers = config.blocks or AUTOENCODER_LAYERS
    hidden = _width(config, AUTOENCODER_UNITS)
    x = normalized
    for units in [hidden] * layers + [config.bottleneck_units] + [hidden] * layers:
        x = keras.layers.Dense(
            units,
            kernel_initializer=_initializer(config, GLOROT, keras),
            kernel_regularizer=kernel_regularizer(config, spec, keras),
        )(x)
        x = batch_norm(keras, config)(x)
        x = activate(keras, x, config.activation)
    reconstruction = keras.layers.Dense(
        features, kernel_initializer=_initializer(config, GLOROT, keras), name="reconstruction"
    )(x)
    error = keras.layers.Subtract()([reconstruction, normalized])
    squared = keras.layers.Multiply()([error, error])
    score = keras.layers.GlobalAveragePooling1D(name="anomaly_score")(keras.layers.Reshape((features, 1))(squared))
    return keras.Model(inputs, score, name="autoencoder")
