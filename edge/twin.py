"""The tf_keras twin of a run's Keras 3 model: the same recipe builder, the same weights, proven equal.

tensorflow-model-optimization 0.8.1 prunes and quantizes only tf_keras models (see NOTES.md),
while the recipes train Keras 3 models. Every builder takes the Keras module to build against, so the
twin is ``build_model(config, spec, keras_module=tf_keras)``: no second copy of any architecture. The
z-score statistics are read back from the Keras 3 model's ``zscore`` layer, the weights are copied in
``get_weights()`` order, and both models must give the same outputs (within :data:`TWIN_TOLERANCE`)
before anything is fine-tuned.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.device.errors import UserError
from recipes.config import TrainConfig
from recipes.layers import DataSpec
from recipes.training import EVALUATION_BATCH

TWIN_TOLERANCE = 1e-5
ZSCORE_LAYER = "zscore"


class TwinMismatchError(RuntimeError):
    """Two models that must compute the same function do not (a bug, not a user mistake)."""


def data_spec_of(model: Any, input_shape: tuple[int, ...], num_classes: int, num_train_examples: int) -> DataSpec:
    """The :class:`DataSpec` a run's model was built with, its z-score statistics read from the model.

    Args:
        model: the run's Keras 3 model (its first layer after the input is the ``zscore`` layer).
        input_shape: shape of one raw example (the run's ``data.json``).
        num_classes: classes of the run's data.
        num_train_examples: size of the run's training split (the m of the L1/L2 terms).

    Raises:
        UserError: the model has no ``zscore`` layer with statistics (it was not built by a recipe).
    """
    try:
        config = model.get_layer(ZSCORE_LAYER).get_config()
        mean = np.asarray(config["mean"], np.float32).reshape(-1)
        variance = np.asarray(config["variance"], np.float32).reshape(-1)
    except (ValueError, KeyError, TypeError):
        raise UserError(
            f"the run's model has no '{ZSCORE_LAYER}' layer with statistics, so it was not built by a recipe; "
            "train it with 'python cli.py train'"
        ) from None
    return DataSpec(tuple(input_shape), num_classes, mean, variance, num_train_examples)


def max_output_difference(reference: Any, candidate: Any, x: np.ndarray) -> float:
    """Largest absolute difference between two models' outputs on ``x`` (inference mode)."""
    expected = np.asarray(reference.predict(x, batch_size=EVALUATION_BATCH, verbose=0), np.float64)
    actual = np.asarray(candidate.predict(x, batch_size=EVALUATION_BATCH, verbose=0), np.float64)
    return float(np.max(np.abs(expected - actual)))


def check_same_outputs(reference: Any, candidate: Any, x: np.ndarray, what: str) -> float:
    """Measure :func:`max_output_difference` and refuse anything above :data:`TWIN_TOLERANCE`.

    Returns:
        The largest absolute difference.

    Raises:
        TwinMismatchError: the difference exceeds the tolerance.
    """
    difference = max_output_difference(reference, candidate, x)
    if not difference <= TWIN_TOLERANCE:
        raise TwinMismatchError(
            f"{what} differs from the model it was made from by {difference:.2e} "
            f"(limit {TWIN_TOLERANCE:g}) on {len(x)} examples"
        )
    return difference


def build_twin(model: Any, config: TrainConfig, spec: DataSpec, x_check: np.ndarray) -> tuple[Any, float]:
    """Build the tf_keras twin of a Keras 3 recipe model and prove it computes the same function.

    Args:
        model: the run's Keras 3 model.
        config: the run's resolved config.
        spec: the run's data spec (see :func:`data_spec_of`).
        x_check: raw inputs on which both models' outputs are compared.

    Returns:
        The twin (a tf_keras model holding the same weights) and the largest output difference.

    Raises:
        UserError: the run's weights do not fit the recipe's architecture (it was trained by another
            version of the recipe).
        TwinMismatchError: the outputs differ by more than :data:`TWIN_TOLERANCE`.
    """
    import tf_keras

    from recipes.models import build_model

    built = build_model(config, spec, keras_module=tf_keras)
    weights = model.get_weights()
    kinds = [type(layer).__name__ for layer in built.layers]
    if kinds != [type(layer).__name__ for layer in model.layers] or [tuple(weight.shape) for weight in weights] != [
        tuple(weight.shape) for weight in built.get_weights()
    ]:
        raise UserError(
            f"the run's model does not match the current {config.recipe} recipe (other layers or weight "
            "shapes): it was trained by another version of the recipe; train again"
        )
    twin = _renamed(built, [layer.name for layer in model.layers])
    twin.set_weights(weights)
    return twin, check_same_outputs(model, twin, x_check, f"the tf_keras twin of {config.recipe}")


def _renamed(model: Any, names: list[str]) -> Any:
    """A copy of a functional model whose layers (in ``model.layers`` order) are called ``names``.

    The twin's layers get the names they have in the run's Keras 3 model, so messages and reports name the
    layers a user finds in ``model.keras`` (tf_keras would number them by its own counters).
    """
    config = model.get_config()
    mapping = {layer.name: name for layer, name in zip(model.layers, names, strict=True)}
    for entry in config["layers"]:
        entry["name"] = entry["config"]["name"] = mapping[entry["name"]]
        for node in entry.get("inbound_nodes") or []:
            for reference in node:
                reference[0] = mapping[reference[0]]
    for reference in (*config["input_layers"], *config["output_layers"]):
        reference[0] = mapping[reference[0]]
    return model.__class__.from_config(config)
