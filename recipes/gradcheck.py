"""Gradient checking: autodiff gradients against two-sided finite differences (the seed's check).

For a sample of coordinates i of every trainable tensor the check computes, in float64,

    dθ_approx[i] = (J(θ + ε·e_i) − J(θ − ε·e_i)) / (2ε)

where J is the cost the optimizer minimizes (mean sparse categorical cross-entropy plus the
regularization term, dropout off, BatchNorm on batch statistics), and compares it with the analytic
gradient dθ through

    relative error = ‖dθ_approx − dθ‖₂ / (‖dθ_approx‖₂ + ‖dθ‖₂)

over all checked coordinates together and per weight tensor, naming the coordinate that differs
most. Verdict bands on the seed's scale (~1e-7 good, ~1e-5 suspicious, ≥1e-3 a bug):

* ``good``:       relative error < 1e-7 (:data:`GOOD_BELOW`)
* ``suspicious``: 1e-7 <= relative error < 1e-3
* ``bug``:        relative error >= 1e-3 (:data:`BUG_FROM`)

Debugging only: it never runs during training. TensorFlow and Keras are imported inside the
functions so importing this module stays cheap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.device.errors import UserError
from recipes.config import TrainConfig
from recipes.registry import recipe_named
from recipes.tasks import CLASSIFICATION, choose_task

GOOD_BELOW = 1e-7
BUG_FROM = 1e-3

AnalyticGradients = Callable[[Any, np.ndarray, np.ndarray], list[np.ndarray]]


@dataclass
class TensorCheck:
    """The check of one trainable weight tensor.

    Attributes:
        name: weight path, e.g. ``"dense/kernel"``.
        checked: coordinates checked.
        size: total coordinates in the tensor.
        relative_error: the seed's relative error over the checked coordinates of this tensor.
        worst_index: coordinate (in the tensor's shape) with the largest |approx − analytic|.
        worst_difference: that largest |approx − analytic|.
    """

    name: str
    checked: int
    size: int
    relative_error: float
    worst_index: tuple[int, ...]
    worst_difference: float


@dataclass
class GradCheckResult:
    """The outcome of :func:`check_gradients`.

    Attributes:
        relative_error: the seed's relative error over all checked coordinates together.
        tensors: one :class:`TensorCheck` per trainable variable, in the model's order.
        epsilon: the finite-difference step ε.
        threshold: largest relative error that passes.
        verdict: ``"good"`` (< 1e-7), ``"suspicious"`` (< 1e-3) or ``"bug"`` (>= 1e-3).
        passed: ``relative_error <= threshold``.
    """

    relative_error: float
    tensors: list[TensorCheck]
    epsilon: float
    threshold: float
    verdict: str
    passed: bool

    def to_table_rows(self) -> list[tuple[str, str, str, str]]:
        """Rows for printing, worst tensor first: name, checked/size, relative error, worst coordinate.

        Returns:
            One ``(name, "checked/size", "relative error", "index (difference)")`` per tensor,
            sorted by decreasing relative error so the parameters that differ most come first.
        """
        rows = []
        for tensor in sorted(self.tensors, key=lambda check: check.relative_error, reverse=True):
            index = ",".join(str(part) for part in tensor.worst_index)
            rows.append(
                (
                    tensor.name,
                    f"{tensor.checked}/{tensor.size}",
                    f"{tensor.relative_error:.2e}",
                    f"[{index}] (|diff| {tensor.worst_difference:.2e})",
                )
            )
        return rows


def verdict_for(relative_error: float) -> str:
    """The seed's reading of a relative error: ``"good"``, ``"suspicious"`` or ``"bug"``.

    Args:
        relative_error: ‖dθ_approx − dθ‖₂ / (‖dθ_approx‖₂ + ‖dθ‖₂).

    Returns:
        ``"good"`` below 1e-7, ``"bug"`` from 1e-3 (or not finite), ``"suspicious"`` in between.
    """
    if not np.isfinite(relative_error) or relative_error >= BUG_FROM:
        return "bug"
    return "good" if relative_error < GOOD_BELOW else "suspicious"


def relative_error(approximate: np.ndarray, analytic: np.ndarray) -> float:
    """‖approximate − analytic‖₂ / (‖approximate‖₂ + ‖analytic‖₂); 0 when both are zero."""
    approximate = np.asarray(approximate, np.float64).ravel()
    analytic = np.asarray(analytic, np.float64).ravel()
    denominator = np.linalg.norm(approximate) + np.linalg.norm(analytic)
    if denominator == 0.0:
        return 0.0
    return float(np.linalg.norm(approximate - analytic) / denominator)


def _import_keras() -> tuple[Any, Any]:
    from recipes.backend import import_keras

    keras = import_keras()
    import tensorflow as tf

    return keras, tf


def _all_layers(layer: Any) -> Iterator[Any]:
    """``layer`` and every layer nested inside it (sub-models included)."""
    yield layer
    for child in getattr(layer, "layers", None) or []:
        if child is not layer:
            yield from _all_layers(child)


def _reject_stochastic_layers(model: Any, keras: Any) -> None:
    """Raise UserError for layers that make J random in training mode (dropout must be off)."""
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.Dropout | keras.layers.GaussianDropout | keras.layers.AlphaDropout):
            if float(getattr(layer, "rate", 0.0)) > 0:
                raise UserError(
                    f"layer '{layer.name}' drops units with rate {layer.rate}: gradient checking needs "
                    "dropout off (build the model with dropout=0)"
                )
        if isinstance(layer, keras.layers.GaussianNoise) and float(layer.stddev) > 0:
            raise UserError(
                f"layer '{layer.name}' adds random noise (stddev {layer.stddev}): gradient checking needs "
                "a deterministic cost; build the model without noise"
            )


def check_gradients(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epsilon: float = 1e-6,
    threshold: float = 1e-5,
    samples_per_tensor: int | None = 20,
    seed: int = 0,
    analytic_gradients: AnalyticGradients | None = None,
) -> GradCheckResult:
    """Compare the gradient of J with two-sided finite differences on sampled coordinates.

    J(θ) = mean sparse categorical cross-entropy of ``model(x, training=True)`` + ``sum(model.losses)``
    (the regularization term included; BatchNorm uses batch statistics). Each coordinate is
    perturbed by assigning its variable; every variable (BatchNorm moving statistics included) is
    restored exactly afterwards, also on error.

    Args:
        model: a Keras 3 model with float64 weights that outputs class probabilities and has no
            Dropout with rate > 0.
        x: inputs (cast to float64).
        y: integer class indices, shape (n,).
        epsilon: finite-difference step ε.
        threshold: largest overall relative error that passes.
        samples_per_tensor: coordinates checked per trainable tensor, min(size, this), drawn
            without replacement with ``numpy.random.default_rng(seed)``; None checks all.
        seed: seed of the coordinate sampling.
        analytic_gradients: optional ``(model, x, y) -> list of arrays`` (one per trainable
            variable) replacing autodiff, e.g. to show what a wrong gradient looks like.

    Returns:
        The overall and per-tensor relative errors, the verdict and whether it passed.

    Raises:
        UserError: a non-positive epsilon or sample count, or a Dropout (or other random) layer active in
            training.
        ValueError: weights that are not float64, an empty sample, or gradients of the wrong number or shape
            (a caller's bug, not the user's input).
    """
    keras, tf = _import_keras()
    if epsilon <= 0:
        raise UserError(f"epsilon must be > 0, got {epsilon}")
    if samples_per_tensor is not None and samples_per_tensor < 1:
        raise UserError(f"samples_per_tensor must be at least 1 (or None for all), got {samples_per_tensor}")
    _reject_stochastic_layers(model, keras)
    variables = list(model.trainable_variables)
    if not variables:
        raise ValueError("the model has no trainable variables to check")
    not_float64 = [variable.path for variable in variables if variable.dtype != "float64"]
    if not_float64:
        raise ValueError(
            f"gradient checking needs float64 weights; {', '.join(not_float64)} are not float64 "
            "(build the model under keras.config.set_dtype_policy('float64'))"
        )
    x = np.asarray(x, np.float64)
    y = np.asarray(y).astype(np.int64).reshape(-1)
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"x and y must hold the same number (>= 1) of examples, got {len(x)} and {len(y)}")
    x_tensor = tf.constant(x)
    y_tensor = tf.constant(y)

    def cost() -> Any:
        probabilities = model(x_tensor, training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y_tensor, probabilities))
        for extra in model.losses:
            loss = loss + tf.cast(extra, loss.dtype)
        return loss

    # One traced graph for the many finite-difference evaluations: an eager Keras call costs
    # milliseconds of Python per layer, the graph a fraction of that. It reads the variables, so
    # assignments made between calls are seen.
    compiled_cost = tf.function(cost, reduce_retracing=True)

    saved = [(variable, np.array(variable.numpy(), copy=True)) for variable in model.variables]
    try:
        if analytic_gradients is None:
            with tf.GradientTape() as tape:
                loss = cost()
            gradients = tape.gradient(loss, variables)
            analytic = [
                np.zeros(variable.shape, np.float64)
                if gradient is None
                else np.asarray(tf.convert_to_tensor(gradient).numpy(), np.float64)
                for variable, gradient in zip(variables, gradients, strict=True)
            ]
        else:
            analytic = [np.asarray(gradient, np.float64) for gradient in analytic_gradients(model, x, y)]
        if len(analytic) != len(variables):
            raise ValueError(
                f"analytic_gradients returned {len(analytic)} arrays for {len(variables)} trainable variables"
            )
        for variable, gradient in zip(variables, analytic, strict=True):
            if tuple(gradient.shape) != tuple(variable.shape):
                raise ValueError(
                    f"gradient for {variable.path} has shape {gradient.shape}, expected {tuple(variable.shape)}"
                )
        first, second = float(compiled_cost()), float(compiled_cost())
        if first != second:
            raise ValueError(
                f"the cost is not deterministic in training mode ({first!r} then {second!r}); gradient "
                "checking needs dropout and other random layers off"
            )

        rng = np.random.default_rng(seed)
        tensors: list[TensorCheck] = []
        all_approximate: list[np.ndarray] = []
        all_analytic: list[np.ndarray] = []
        for variable, gradient in zip(variables, analytic, strict=True):
            original = np.array(variable.numpy(), np.float64, copy=True)
            size = int(original.size)
            if samples_per_tensor is None or samples_per_tensor >= size:
                coordinates = np.arange(size)
            else:
                coordinates = np.sort(rng.choice(size, size=samples_per_tensor, replace=False))
            approximate = np.empty(len(coordinates), np.float64)
            flat = original.reshape(-1)
            try:
                for position, coordinate in enumerate(coordinates):
                    plus = flat.copy()
                    plus[coordinate] += epsilon
                    minus = flat.copy()
                    minus[coordinate] -= epsilon
                    variable.assign(plus.reshape(original.shape))
                    cost_plus = float(compiled_cost())
                    variable.assign(minus.reshape(original.shape))
                    cost_minus = float(compiled_cost())
                    # The step actually taken in float64 (θ ± ε rounds), not the nominal 2ε.
                    step = plus[coordinate] - minus[coordinate]
                    approximate[position] = (cost_plus - cost_minus) / step
            finally:
                variable.assign(original)
            checked_analytic = gradient.reshape(-1)[coordinates]
            differences = np.abs(approximate - checked_analytic)
            worst = int(np.argmax(differences)) if len(differences) else 0
            worst_index = (
                tuple(int(part) for part in np.unravel_index(int(coordinates[worst]), original.shape))
                if len(coordinates)
                else ()
            )
            tensors.append(
                TensorCheck(
                    name=variable.path,
                    checked=len(coordinates),
                    size=size,
                    relative_error=relative_error(approximate, checked_analytic),
                    worst_index=worst_index,
                    worst_difference=float(differences[worst]) if len(differences) else 0.0,
                )
            )
            all_approximate.append(approximate)
            all_analytic.append(checked_analytic)
    finally:
        for variable, value in saved:
            variable.assign(value)

    overall = relative_error(np.concatenate(all_approximate), np.concatenate(all_analytic))
    return GradCheckResult(
        relative_error=overall,
        tensors=tensors,
        epsilon=epsilon,
        threshold=threshold,
        verdict=verdict_for(overall),
        passed=bool(overall <= threshold),
    )


def gradcheck_config(
    config: TrainConfig,
    *,
    examples: int = 16,
    epsilon: float = 1e-6,
    threshold: float = 1e-5,
    samples_per_tensor: int | None = 20,
) -> GradCheckResult:
    """Gradient-check the model ``config`` builds, in float64 with dropout off, on a few examples.

    Loads ``config.data``, takes the first ``examples`` examples after a shuffle seeded with
    ``config.seed``, z-scores with their statistics and builds ``config.recipe`` with ``dropout=0``
    under float64 (floatx and the dtype policy are restored afterwards, also on error). The L1/L2
    term uses m = ``examples``.

    Args:
        config: the training config (recipe, architecture, l1/l2, batch_norm, seed, data).
        examples: examples in the batch J is computed on.
        epsilon: finite-difference step ε.
        threshold: largest overall relative error that passes.
        samples_per_tensor: coordinates checked per trainable tensor (None: all).

    Returns:
        The :class:`GradCheckResult` of :func:`check_gradients`.

    Raises:
        UserError: ``examples`` < 1, a threshold or epsilon <= 0, or ``samples_per_tensor`` < 1.
        UserError: the recipe is not a classifier (e.g. the autoencoder).
    """
    if examples < 1:
        raise UserError(f"--examples must be at least 1, got {examples}")
    if not threshold > 0:
        raise UserError(f"--threshold must be > 0, got {threshold:g}")
    if not epsilon > 0:
        raise UserError(f"--epsilon must be > 0, got {epsilon:g}")
    if samples_per_tensor is not None and samples_per_tensor < 1:
        raise UserError(f"--samples-per-tensor must be at least 1, got {samples_per_tensor}")
    if "classification" not in recipe_named(config.recipe).tasks:
        raise UserError(
            f"gradcheck checks a classifier's cross-entropy cost; {config.recipe} is an "
            f"{recipe_named(config.recipe).tasks[0]} recipe: check a classification recipe, e.g. --recipe mlp"
        )
    from recipes.data import load_config_data
    from recipes.models import DataSpec, build_model
    from recipes.normalization import normalization_statistics

    dataset = load_config_data(config)
    task = choose_task(config, dataset)[0]
    if task.name != CLASSIFICATION:
        raise UserError(
            f"gradcheck checks a classifier's cross-entropy cost; {config.data} is a {task.name} data set: check "
            "classification data, e.g. --data digits"
        )
    dataset = task.prepare(dataset, config)
    order = np.random.default_rng(config.seed).permutation(len(dataset.y))[:examples]
    x = np.asarray(dataset.x[order]).astype(np.float64)
    y = np.asarray(dataset.y)[order].astype(np.int64)
    mean, variance = normalization_statistics(x)
    spec = DataSpec(
        input_shape=tuple(int(side) for side in dataset.input_shape),
        num_classes=int(dataset.num_classes),
        mean=mean,
        variance=variance,
        num_train_examples=len(y),
    )

    keras, _ = _import_keras()
    previous_floatx = keras.config.floatx()
    previous_policy = keras.config.dtype_policy()
    try:
        keras.config.set_floatx("float64")
        keras.config.set_dtype_policy("float64")
        keras.utils.set_random_seed(config.seed)
        model = build_model(dataclasses.replace(config, dropout=0.0), spec)
        return check_gradients(
            model,
            x,
            y,
            epsilon=epsilon,
            threshold=threshold,
            samples_per_tensor=samples_per_tensor,
            seed=config.seed,
        )
    finally:
        keras.config.set_floatx(previous_floatx)
        keras.config.set_dtype_policy(previous_policy)
