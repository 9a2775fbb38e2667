"""Model builders: one pure function per architecture, config in, uncompiled model out.

Every builder takes the Keras module to build against (``keras`` by default; ``tf_keras`` for the
tfmot twin), so each architecture exists once. Every model starts with the z-score layer whose
statistics came from the training split, so saved and exported models take raw inputs, and ends
in the task's output layer: a softmax over the classes, or a regression's values in
target units.

Hidden layers follow the seed: the initializer is picked from the activation (He for the ReLU
family, Xavier for tanh/sigmoid/linear) unless the config names one; L1/L2 with the seed's
lambda/(2m) scaling; BatchNorm between the linear layer and its activation (the linear layer then
has no bias: BN's beta replaces it); inverted dropout after the activation. The shared building
blocks live in :mod:`recipes.layers`; the MLPerf Tiny reference architectures (ds_cnn,
mobilenet_v1, resnet8, autoencoder) in :mod:`recipes.reference_models`, registered here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from types import ModuleType
from typing import Any

from edge.device.errors import UserError
from recipes.adaptive_defaults import adapt_to_data
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
from recipes.registry import recipe_named
from recipes.tasks import task_named

__all__ = ["DataSpec", "build_model", "initializer_for", "kernel_regularizer"]


def _hidden(
    keras: ModuleType, x: Any, layer: Callable[..., Any], config: TrainConfig, spec: DataSpec, **kwargs: Any
) -> Any:
    """linear layer → [BatchNorm] → activation, with the seed's initializer and regularizer."""
    x = layer(
        use_bias=not config.batch_norm,
        kernel_initializer=initializer_for(config, config.activation, keras),
        kernel_regularizer=kernel_regularizer(config, spec, keras),
        **kwargs,
    )(x)
    if config.batch_norm:
        x = batch_norm(keras, config)(x)
    return activate(keras, x, config.activation)


def _dense_head(keras: ModuleType, x: Any, config: TrainConfig, spec: DataSpec) -> Any:
    """Hidden dense layers with dropout, then the task's output layer (a softmax, or a regression's values)."""
    for units in config.hidden_units:
        x = _hidden(keras, x, keras.layers.Dense, config, spec, units=units)
        if config.dropout > 0:
            x = keras.layers.Dropout(config.dropout)(x)
    return task_named(spec.task).output_layer(keras, x, config, spec)


def build_mlp(config: TrainConfig, spec: DataSpec, keras_module: ModuleType | None = None) -> Any:
    """Multilayer perceptron: z-score → flatten → ``hidden_units`` dense layers → softmax.

    Args:
        config: training config (hidden_units, activation, initializer, batch_norm, dropout, l1, l2).
        spec: input shape, classes, normalization statistics, training-set size.
        keras_module: ``keras`` (default) or ``tf_keras``.

    Returns:
        An uncompiled model taking raw inputs and returning class probabilities.
    """
    keras = keras_module_or_default(keras_module)
    inputs, x = zscore_input(keras, spec)
    if len(spec.input_shape) > 1:
        x = keras.layers.Flatten()(x)
    return keras.Model(inputs, _dense_head(keras, x, config, spec), name="mlp")


def _conv_blocks(
    keras: ModuleType,
    x: Any,
    conv: Callable[..., Any],
    pool: Callable[..., Any],
    config: TrainConfig,
    spec: DataSpec,
    pool_last: bool,
) -> Any:
    """One block per ``conv_filters`` entry: ``convs_per_block`` × (conv → [BN] → activation), then max pooling
    (after the last block only when ``pool_last``)."""
    for block, filters in enumerate(config.conv_filters):
        for _ in range(config.convs_per_block):
            x = _hidden(keras, x, conv, config, spec, filters=filters, kernel_size=config.kernel_size, padding="same")
        if pool_last or block < len(config.conv_filters) - 1:
            x = pool(config.pool_size)(x)
    return x


def build_cnn(config: TrainConfig, spec: DataSpec, keras_module: ModuleType | None = None) -> Any:
    """Convolutional network: z-score → conv blocks (each ``convs_per_block`` × conv → [BN] →
    activation, then max pooling) → flatten → dense head (``hidden_units``, dropout) → softmax.

    Args:
        config: training config (conv_filters, convs_per_block, kernel_size, pool_size, plus the
            dense-head fields of :func:`build_mlp`).
        spec: input shape (height, width, channels), classes, statistics, training-set size.
        keras_module: ``keras`` (default) or ``tf_keras``.

    Returns:
        An uncompiled model taking raw images and returning class probabilities.
    """
    if len(spec.input_shape) != 3:
        raise UserError(
            f"the cnn recipe needs images (height, width, channels); this data has shape "
            f"{spec.input_shape}: use --recipe mlp for tabular data"
        )
    side = min(spec.input_shape[:2])
    if side // config.pool_size ** len(config.conv_filters) < 1:
        raise UserError(
            f"a {spec.input_shape[0]}x{spec.input_shape[1]} input is too small for "
            f"{len(config.conv_filters)} pooling blocks of size {config.pool_size}; use fewer conv_filters"
        )
    keras = keras_module_or_default(keras_module)
    inputs, x = zscore_input(keras, spec)
    x = _conv_blocks(keras, x, keras.layers.Conv2D, keras.layers.MaxPooling2D, config, spec, pool_last=True)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, _dense_head(keras, x, config, spec), name="cnn")


def build_cnn1d(config: TrainConfig, spec: DataSpec, keras_module: ModuleType | None = None) -> Any:
    """1-D convnet for windows of a sensor stream: z-score per channel → conv blocks (each ``convs_per_block`` ×
    Conv1D → BatchNorm → activation, then max pooling, the last block without pooling) → global average pooling
    over time → dense head (``hidden_units``, dropout) → the task's output.

    BatchNorm sits between every convolution and its activation (the convolution then has no bias), whatever
    ``batch_norm`` says: a stream's windows vary in amplitude from person to person. He initialization for the
    ReLU family, as every recipe. The int8 export maps Conv1D to CONV_2D and the pooling to MEAN, kernels TFLite
    Micro has.

    Args:
        config: training config (conv_filters, convs_per_block, kernel_size, pool_size, the dense head's fields).
        spec: input shape (steps, channels), outputs, statistics, training-set size.
        keras_module: ``keras`` (default) or ``tf_keras``.

    Returns:
        An uncompiled model taking raw windows and returning class probabilities (or a regression's values).
    """
    if len(spec.input_shape) != 2:
        raise UserError(
            f"the cnn1d recipe needs windows of a stream (steps, channels); this data has shape {spec.input_shape}: "
            "give a CSV stream with --set window_seconds=S, an .npz of series (x of shape (n, steps, channels)), a .ts "
            "file or --data motion; or use --recipe mlp"
        )
    if spec.input_shape[0] // config.pool_size ** max(len(config.conv_filters) - 1, 0) < config.kernel_size:
        raise UserError(
            f"a window of {spec.input_shape[0]} steps is too short for {len(config.conv_filters)} conv blocks with "
            f"pooling {config.pool_size}; use fewer conv_filters or longer windows"
        )
    keras = keras_module_or_default(keras_module)
    inputs, x = zscore_input(keras, spec)
    conv = replace(config, batch_norm=True)
    x = _conv_blocks(keras, x, keras.layers.Conv1D, keras.layers.MaxPooling1D, conv, spec, pool_last=False)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, _dense_head(keras, x, config, spec), name="cnn1d")


def build_model(config: TrainConfig, spec: DataSpec, keras_module: ModuleType | None = None) -> Any:
    """Build ``config.recipe`` for ``spec`` with the builder its registry row names (:mod:`recipes.registry`); keys
    left ``auto`` (BatchNorm's momentum) follow the training-split size (:mod:`recipes.adaptive_defaults`)."""
    config, _ = adapt_to_data(config, spec.num_train_examples)
    return recipe_named(config.recipe).build_function()(config, spec, keras_module)
