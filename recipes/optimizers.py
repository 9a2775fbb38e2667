"""The optimizers of the seed, with their beta/epsilon parameters named as in the config."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from edge.device.errors import unknown_choice
from recipes.config import TrainConfig
from recipes.layers import keras_module_or_default


def make_optimizer(config: TrainConfig, keras_module: ModuleType | None = None) -> Any:
    """A Keras 3 optimizer (or, with ``keras_module=tf_keras``, a tf_keras one for the tfmot twin) for
    ``config.optimizer`` starting at ``config.learning_rate``.

    - ``sgd``: w -= alpha * dw
    - ``momentum``: v = beta * v - alpha * dw; w += v (Keras's form: the seed's
      v = beta * v + (1 - beta) * dw with the learning rate scaled by 1 / (1 - beta))
    - ``rmsprop``: s = rho * s + (1 - rho) * dw²; w -= alpha * dw / sqrt(s + epsilon)
    - ``adam``: bias-corrected moments with ``beta_1``, ``beta_2``, ``epsilon``

    The learning rate is a plain variable so the per-epoch schedule can set it.
    """
    keras = keras_module_or_default(keras_module)
    rate = config.learning_rate
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=rate)
    if config.optimizer == "momentum":
        return keras.optimizers.SGD(learning_rate=rate, momentum=config.momentum)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=rate, rho=config.rho, epsilon=config.epsilon)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(
            learning_rate=rate, beta_1=config.beta_1, beta_2=config.beta_2, epsilon=config.epsilon
        )
    raise unknown_choice("optimizer", config.optimizer, ("sgd", "momentum", "rmsprop", "adam"))
