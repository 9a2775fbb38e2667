"""Model builders: one pure function per architecture, config in, uncompiled model out.

Every builder takes the Keras module to build against (``keras`` by default; ``tf_keras`` for the
tfmot twin), so each architecture exists once. Every model starts with the z-score layer whose
statistics came from the training split, so saved and exported models take raw inputs, and ends
in a softmax over the classes.

Hidden layers follow the seed: the initializer is picked from the activation (He for the ReLU
family, Xavier for tanh/sigmoid/linear) unless the config names one; L1/L2 with the seed's
lambda/(2m) scaling; BatchNorm between the linear layer and its activation (the linear layer then
has no bias: BN's beta replaces it); inverted dropout after the activation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from recipes.config import TrainConfig
from recipes.errors import UserError, unknown_choice

RELU_FAMILY = ("relu", "leaky_relu", "elu", "selu", "gelu", "swish")


@dataclass(frozen=True)
class DataSpec:
    """What a builder needs to know about the data.

    Attributes:
        input_shape: shape of one raw example, e.g. (8, 8, 1) or (13,).
        num_classes: number of output classes.
        mean: per-feature/per-channel training mean for the z-score layer (None: 0).
        variance: per-feature/per-channel training variance (None: 1).
        num_train_examples: m in the seed's lambda/(2m) regularization term.
    """

    input_shape: tuple[int, ...]
    num_classes: int
    mean: np.ndarray | None = None
    variance: np.ndarray | None = None
    num_train_examples: int = 1


def _keras(keras_module: ModuleType | None) -> ModuleType:
    if keras_module is not None:
        return keras_module
    import keras

    return keras


def initializer_for(config: TrainConfig, activation: str, keras_module: ModuleType | None = None) -> Any:
    """The kernel initializer for a layer followed by ``activation``.

    ``he`` draws with Var(w) = 2/n_in and ``xavier`` with Var(w) = 1/n_in (the seed's definitions,
    truncated normal rescaled so the variance is exact); ``auto`` picks he for the ReLU family and
    xavier otherwise; any other name is a Keras initializer.
    """
    keras = _keras(keras_module)
    name = config.initializer
    if name == "auto":
        name = "he" if activation in RELU_FAMILY else "xavier"
    if name in ("he", "xavier"):
        scale = 2.0 if name == "he" else 1.0
        return keras.initializers.VarianceScaling(scale=scale, mode="fan_in", distribution="truncated_normal")
    return keras.initializers.get(name)


def kernel_regularizer(config: TrainConfig, spec: DataSpec, keras_module: ModuleType | None = None) -> Any:
    """L1/L2 on kernels: the cost gains lambda/(2m)·Σ‖W‖² and lambda/(2m)·Σ|W| (m = training examples).

    Keras adds ``l2 * Σw²`` to the mean loss of a batch, so the coefficient is lambda/(2m): over the
    whole training set the objective is then exactly the seed's J. Returns None when both are 0.
    """
    if config.l1 == 0 and config.l2 == 0:
        return None
    keras = _keras(keras_module)
    scale = 1.0 / (2.0 * spec.num_train_examples)
    return keras.regularizers.L1L2(l1=config.l1 * scale, l2=config.l2 * scale)


def _activate(keras: ModuleType, x: Any, activation: str) -> Any:
    return x if activation == "linear" else keras.layers.Activation(activation)(x)


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
        x = keras.layers.BatchNormalization()(x)
    return _activate(keras, x, config.activation)


def _inputs(keras: ModuleType, spec: DataSpec) -> tuple[Any, Any]:
    """The raw input and its z-scored version (statistics baked into the model)."""
    inputs = keras.Input(shape=spec.input_shape, name="raw_input")
    channels = spec.input_shape[-1]
    mean = np.zeros(channels, np.float32) if spec.mean is None else np.asarray(spec.mean, np.float32)
    variance = (
        np.ones(channels, np.float32) if spec.variance is None else np.asarray(spec.variance, np.float32)
    )
    normalized = keras.layers.Normalization(axis=-1, mean=mean, variance=variance, name="zscore")(inputs)
    return inputs, normalized


def _dense_head(keras: ModuleType, x: Any, config: TrainConfig, spec: DataSpec) -> Any:
    """Hidden dense layers with dropout, then the softmax output layer."""
    for units in config.hidden_units:
        x = _hidden(keras, x, keras.layers.Dense, config, spec, units=units)
        if config.dropout > 0:
            x = keras.layers.Dropout(config.dropout)(x)
    return keras.layers.Dense(
        spec.num_classes,
        activation="softmax",
        kernel_initializer=initializer_for(config, "linear", keras),
        kernel_regularizer=kernel_regularizer(config, spec, keras),
        name="probabilities",
    )(x)


def build_mlp(config: TrainConfig, spec: DataSpec, keras_module: ModuleType | None = None) -> Any:
    """Multilayer perceptron: z-score → flatten → ``hidden_units`` dense layers → softmax.

    Args:
        config: training config (hidden_units, activation, initializer, batch_norm, dropout, l1, l2).
        spec: input shape, classes, normalization statistics, training-set size.
        keras_module: ``keras`` (default) or ``tf_keras``.

    Returns:
        An uncompiled model taking raw inputs and returning class probabilities.
    """
    keras = _keras(keras_module)
    inputs, x = _inputs(keras, spec)
    if len(spec.input_shape) > 1:
        x = keras.layers.Flatten()(x)
    return keras.Model(inputs, _dense_head(keras, x, config, spec), name="mlp")


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
    keras = _keras(keras_module)
    inputs, x = _inputs(keras, spec)
    for filters in config.conv_filters:
        for _ in range(config.convs_per_block):
            x = _hidden(
                keras,
                x,
                keras.layers.Conv2D,
                config,
                spec,
                filters=filters,
                kernel_size=config.kernel_size,
                padding="same",
            )
        x = keras.layers.MaxPooling2D(config.pool_size)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, _dense_head(keras, x, config, spec), name="cnn")


BUILDERS: dict[str, Callable[..., Any]] = {"mlp": build_mlp, "cnn": build_cnn}


def build_model(config: TrainConfig, spec: DataSpec, keras_module: ModuleType | None = None) -> Any:
    """Build ``config.recipe`` for ``spec`` (see :data:`BUILDERS`)."""
    if config.recipe not in BUILDERS:
        raise unknown_choice("recipe", config.recipe, BUILDERS)
    return BUILDERS[config.recipe](config, spec, keras_module)
