"""Building blocks every model builder shares: the data spec, the z-score input, initializers, regularizers.

Every builder takes the Keras module to build against (``keras`` by default; ``tf_keras`` for the
tfmot twin), so each architecture exists once. Every model starts with the z-score layer whose
statistics came from the training split, so saved and exported models take raw inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from recipes.config import TrainConfig, weight_decay_of

RELU_FAMILY = ("relu", "leaky_relu", "elu", "selu", "gelu", "swish")
MAX_SPEC_EXAMPLES = 512  # training series a data spec carries (a seeded draw when the split holds more)


@dataclass(frozen=True)
class DataSpec:
    """What a builder needs to know about the data.

    Attributes:
        input_shape: shape of one raw example, e.g. (8, 8, 1) or (13,).
        num_classes: values the model outputs: classes, or a regression's outputs.
        mean: per-feature/per-channel training mean for the z-score layer (None: 0).
        variance: per-feature/per-channel training variance (None: 1).
        num_train_examples: m in the seed's lambda/(2m) regularization term.
        task: what the model learns (:mod:`recipes.tasks`): it builds the output layer.
        target_mean: a regression's training-target mean per output (None otherwise).
        target_variance: a regression's training-target variance per output (None otherwise).
        examples: raw training examples for builders whose fixed weights come from the data (the minirocket
            recipe's biases): up to :data:`MAX_SPEC_EXAMPLES` series (steps, channels) drawn from the training
            split; None for other data (and for a model built without data).
    """

    input_shape: tuple[int, ...]
    num_classes: int
    mean: np.ndarray | None = None
    variance: np.ndarray | None = None
    num_train_examples: int = 1
    task: str = "classification"
    target_mean: np.ndarray | None = None
    target_variance: np.ndarray | None = None
    examples: np.ndarray | None = None


def spec_examples(x: Any, train: np.ndarray) -> np.ndarray | None:
    """Raw training series for :attr:`DataSpec.examples`: all of the training split's, or a draw of
    :data:`MAX_SPEC_EXAMPLES` (seeded, sorted) when it holds more; None unless ``x`` is an in-memory array of
    series (examples, steps, channels)."""
    if not isinstance(x, np.ndarray) or x.ndim != 3 or len(train) == 0:
        return None
    chosen = np.asarray(train)
    if len(chosen) > MAX_SPEC_EXAMPLES:
        chosen = np.sort(np.random.default_rng(0).choice(chosen, MAX_SPEC_EXAMPLES, replace=False))
    return np.asarray(x[chosen], np.float32)


def keras_module_or_default(keras_module: ModuleType | None) -> ModuleType:
    """``keras_module``, or Keras 3 when None."""
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
    keras = keras_module_or_default(keras_module)
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
    whole training set the objective is then exactly the seed's J. The recipe's weight decay c (the
    MLPerf Tiny references' Keras ``l2(1e-4)``, see :func:`recipes.config.weight_decay_of`) adds
    c·Σ‖W‖² per batch on top. Returns None when all are 0.
    """
    decay = weight_decay_of(config)
    if config.l1 == 0 and config.l2 == 0 and decay == 0:
        return None
    keras = keras_module_or_default(keras_module)
    scale = 1.0 / (2.0 * spec.num_train_examples)
    return keras.regularizers.L1L2(l1=config.l1 * scale, l2=config.l2 * scale + decay)


def activate(keras: ModuleType, x: Any, activation: str) -> Any:
    """Apply ``activation`` as its own layer (nothing for ``linear``)."""
    return x if activation == "linear" else keras.layers.Activation(activation)(x)


def batch_norm(keras: ModuleType, config: TrainConfig) -> Any:
    """A BatchNormalization layer whose running statistics average with ``batch_norm_momentum``."""
    return keras.layers.BatchNormalization(momentum=config.batch_norm_momentum)


def zscore_input(keras: ModuleType, spec: DataSpec) -> tuple[Any, Any]:
    """The raw input and its z-scored version (statistics baked into the model)."""
    inputs = keras.Input(shape=spec.input_shape, name="raw_input")
    channels = spec.input_shape[-1]
    mean = np.zeros(channels, np.float32) if spec.mean is None else np.asarray(spec.mean, np.float32)
    variance = np.ones(channels, np.float32) if spec.variance is None else np.asarray(spec.variance, np.float32)
    normalized = keras.layers.Normalization(axis=-1, mean=mean, variance=variance, name="zscore")(inputs)
    return inputs, normalized
