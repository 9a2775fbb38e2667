"""The keras-tuner HyperModel of a recipe: ``hp`` values -> the recipe's config -> its builder.

``build(hp)`` maps the sampled values onto the same :class:`~recipes.config.TrainConfig` and the
same ``build_model`` + ``compile_model`` that ``python cli.py train`` uses; ``fit`` trains with the
recipe's data pipeline, schedule and early stopping (``recipes.training.fit_keras``) on data loaded and
split once for the whole search (once per front end, when the search tries several). A search over
recipes declares each recipe-specific key under a conditional scope of ``recipe``. With a hardware
budget, ``fit`` then converts the trained model to int8 and measures it (:mod:`tuning.hardware`); a
trial over budget fails with :class:`InfeasibleTrialError`. Importing this module imports keras-tuner (and TensorFlow).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import keras_tuner
import numpy as np

from edge.device.errors import UserError
from recipes.backend import import_keras, quiet_retracing
from recipes.config import TrainConfig
from recipes.input_pipeline import PreparedData
from recipes.models import build_model
from recipes.training import compile_model, fit_keras
from tuning.hardware import FEASIBLE_METRIC, Budget, measure_candidate, representative_inputs, violations
from tuning.report import EPOCHS_METRIC, SECONDS_METRIC
from tuning.spaces import Dimension, Space, applies, config_for, searched_recipes

if TYPE_CHECKING:
    from tuning.search import SearchData

HISTORY_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


class InfeasibleTrialError(keras_tuner.errors.FailedTrialError):
    """A trial that trained but whose int8 model breaks the hardware budget.

    keras-tuner records no metrics of a failed trial; the tuners in :mod:`tuning.tuners` record
    ``metrics`` before the trial fails, so trials.csv and the Pareto plot show what it scored and cost.

    Args:
        reason: the limits it breaks, e.g. ``int8 model 24.93 KB > 20 KB (--max-int8-kb)``.
        metrics: the trial's metrics, measurements included, with ``feasible`` 0.
    """

    def __init__(self, reason: str, metrics: dict[str, float]) -> None:
        super().__init__(reason)
        self.metrics = metrics


def declare(hp: keras_tuner.HyperParameters, dimension: Dimension) -> Any:
    """Register ``dimension`` in ``hp`` (once) and return its current value."""
    if dimension.kind == "choice":
        return hp.Choice(dimension.key, list(dimension.values or ()))
    sampling = "log" if dimension.log else "linear"
    if dimension.kind == "int":
        return hp.Int(dimension.key, int(dimension.low), int(dimension.high), step=dimension.step, sampling=sampling)
    return hp.Float(dimension.key, dimension.low, dimension.high, step=dimension.step, sampling=sampling)


class RecipeHyperModel(keras_tuner.HyperModel):
    """A recipe as a keras-tuner HyperModel.

    Args:
        base: the fixed part of every trial's config.
        space: the searched dimensions.
        data: the data, loaded and split once per front end (z-score statistics from its training split).
        objective: the dev metric a trial is scored by, e.g. ``"val_accuracy"``.
        direction: ``"max"`` or ``"min"``.
        budget: the hardware budget each trained model is measured against; None measures nothing.
    """

    def __init__(
        self,
        base: TrainConfig,
        space: Space,
        data: SearchData,
        objective: str,
        direction: str,
        budget: Budget | None = None,
    ) -> None:
        super().__init__(name=f"{base.recipe}-recipe")
        quiet_retracing()
        self.base = base
        self.space = space
        self.data = data
        self.objective = objective
        self.direction = direction
        self.budget = budget
        self.measuring: dict[str, tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]] = {}

    def measuring_data(self, data: PreparedData) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """The calibration inputs of the int8 conversion and, for a classifier, the dev split its int8 model is
        scored on (a trial export would refuse is infeasible), of ``data`` (one front end's)."""
        key = id(data)
        if key not in self.measuring:
            x_train, y_train = data.part("train")
            dev = data.validation() if "accuracy" in data.task.history_metrics else None
            self.measuring[key] = (representative_inputs(x_train, self.base.seed, y_train), dev)
        return self.measuring[key]

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> None:
        """Register every dimension, so the oracle knows the whole space before the first trial."""
        self.config(hp)

    def config(self, hp: keras_tuner.HyperParameters) -> TrainConfig:
        """The training config of the values in ``hp`` (``recipe`` declared first, the keys only some of the
        searched recipes have inside a conditional scope of it)."""
        recipes = searched_recipes(self.space, self.base.recipe)
        values = {}
        for key in sorted(self.space, key=lambda name: name != "recipe"):
            users = [recipe for recipe in recipes if applies(key, recipe)]
            if not users:  # a narrowed round dropped every recipe that has this key
                continue
            if len(users) < len(recipes):
                with hp.conditional_scope("recipe", users):
                    values[key] = declare(hp, self.space[key])
            else:
                values[key] = declare(hp, self.space[key])
        return config_for(self.base, values)

    def build(self, hp: keras_tuner.HyperParameters) -> Any:
        """Build and compile the recipe's model for ``hp`` (weights seeded by the config's seed)."""
        keras = import_keras()
        config = self.config(hp)
        data = self.data.for_config(config)
        keras.utils.set_random_seed(config.seed)
        try:
            model = compile_model(build_model(config, data.spec), config, data.task)
        except UserError as error:  # e.g. more pooling blocks than the input allows
            raise keras_tuner.errors.FailedTrialError(str(error)) from None
        # Built optimizer variables let Hyperband's continuation restore the optimizer state
        # (moments, step count) from the earlier round's checkpoint along with the weights.
        model.optimizer.build(model.trainable_variables)
        return model

    def fit(
        self,
        hp: keras_tuner.HyperParameters,
        model: Any,
        *args: Any,
        epochs: int | None = None,
        initial_epoch: int = 0,
        callbacks: list[Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, float]:
        """Train one trial; keras-tuner passes Hyperband's ``epochs``/``initial_epoch`` and its callbacks.

        Returns:
            The metrics of the best epoch by the objective, plus ``epochs_run`` (epochs trained in
            this trial) and ``seconds``; with a budget, also the int8 measurements and ``feasible``.

        Raises:
            keras_tuner.errors.FailedTrialError: training diverged before any usable epoch, or the
                converter rejected the model.
            InfeasibleTrialError: the int8 model breaks the budget.
        """
        config = self.config(hp)
        data = self.data.for_config(config)
        started = time.perf_counter()
        history = fit_keras(model, config, data, epochs=epochs, initial_epoch=initial_epoch, callbacks=callbacks or ())
        metrics = trial_metrics(history, self.objective, self.direction, time.perf_counter() - started, config)
        if self.budget is None:
            return metrics
        calibration, dev = self.measuring_data(data)
        return measured_metrics(model, calibration, self.budget, metrics, dev)


def trial_metrics(
    history: dict[str, list[float]], objective: str, direction: str, seconds: float, config: TrainConfig
) -> dict[str, float]:
    """The best epoch's metrics by ``objective`` (NaN epochs skipped), epochs trained and time.

    Raises:
        keras_tuner.errors.FailedTrialError: the model does not report ``objective``, or training
            diverged (the last epoch's loss is not finite, so the weights are not usable).
    """
    if objective not in history:
        raise keras_tuner.errors.FailedTrialError(
            f"the {config.recipe} model reports no {objective} (it reports {', '.join(sorted(history))}); "
            "pick another --objective"
        )
    losses, scores = history.get("loss", []), history[objective]
    finite = [epoch for epoch, value in enumerate(scores) if math.isfinite(value)]
    if not finite or (losses and not math.isfinite(losses[-1])):
        raise keras_tuner.errors.FailedTrialError(
            f"training diverged in epoch {len(scores)} at learning_rate {config.learning_rate:g}; "
            "lower the top of the learning_rate range"
        )
    pick = max if direction == "max" else min
    best = pick(finite, key=lambda epoch: scores[epoch])
    metrics = {name: float(history[name][best]) for name in HISTORY_METRICS if name in history}
    metrics[EPOCHS_METRIC] = float(len(scores))
    metrics[SECONDS_METRIC] = float(seconds)
    return metrics


def measured_metrics(
    model: Any,
    calibration: np.ndarray,
    budget: Budget,
    metrics: dict[str, float],
    dev: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, float]:
    """``metrics`` plus the int8 model's measurements (with ``dev``, its dev accuracy) and ``feasible`` 1.

    Raises:
        keras_tuner.errors.FailedTrialError: the converter rejected the model.
        InfeasibleTrialError: the model breaks the budget (its metrics ride along, ``feasible`` 0).
    """
    try:
        measurement = measure_candidate(model, calibration, budget, dev)
    except UserError as error:
        raise keras_tuner.errors.FailedTrialError(str(error)) from None
    measured = {**metrics, **measurement.metrics()}
    reasons = violations(measurement, budget)
    if reasons:
        raise InfeasibleTrialError("; ".join(reasons), {**measured, FEASIBLE_METRIC: 0.0})
    return {**measured, FEASIBLE_METRIC: 1.0}
