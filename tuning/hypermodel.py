"""The keras-tuner HyperModel of a recipe: ``hp`` values -> the recipe's config -> its builder.

``build(hp)`` maps the sampled values onto the same :class:`~recipes.config.TrainConfig` and the
same ``build_model`` + ``compile_model`` that ``python cli.py train`` uses; ``fit`` trains with the
recipe's data pipeline, schedule and early stopping (:mod:`tuning.fitting`) on data loaded and
split once for the whole search. Importing this module imports keras-tuner (and TensorFlow).
"""

from __future__ import annotations

import math
import time
from typing import Any

import keras_tuner

from recipes.backend import import_keras
from recipes.config import TrainConfig
from recipes.errors import UserError
from recipes.models import build_model
from recipes.training import PreparedData, compile_model, fit_keras
from tuning.fitting import quiet_retracing
from tuning.report import EPOCHS_METRIC, SECONDS_METRIC
from tuning.spaces import Dimension, Space, config_for

HISTORY_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


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
        data: the data, loaded and split once (z-score statistics from its training split).
        objective: the dev metric a trial is scored by, e.g. ``"val_accuracy"``.
        direction: ``"max"`` or ``"min"``.
    """

    def __init__(self, base: TrainConfig, space: Space, data: PreparedData, objective: str, direction: str) -> None:
        super().__init__(name=f"{base.recipe}-recipe")
        quiet_retracing()
        self.base = base
        self.space = space
        self.data = data
        self.objective = objective
        self.direction = direction

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> None:
        """Register every dimension, so the oracle knows the whole space before the first trial."""
        self.config(hp)

    def config(self, hp: keras_tuner.HyperParameters) -> TrainConfig:
        """The training config of the values in ``hp``."""
        return config_for(self.base, {key: declare(hp, dimension) for key, dimension in self.space.items()})

    def build(self, hp: keras_tuner.HyperParameters) -> Any:
        """Build and compile the recipe's model for ``hp`` (weights seeded by the config's seed)."""
        keras = import_keras()
        config = self.config(hp)
        keras.utils.set_random_seed(config.seed)
        try:
            model = compile_model(build_model(config, self.data.spec), config)
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
            this trial) and ``seconds``.

        Raises:
            keras_tuner.errors.FailedTrialError: training diverged before any usable epoch.
        """
        config = self.config(hp)
        started = time.perf_counter()
        history = fit_keras(
            model, config, self.data, epochs=epochs, initial_epoch=initial_epoch, callbacks=callbacks or ()
        )
        return trial_metrics(history, self.objective, self.direction, time.perf_counter() - started, config)


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
