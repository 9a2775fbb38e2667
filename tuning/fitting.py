"""One training loop for a tuner trial and for the scikit-learn estimator.

It is ``recipes.training.fit`` with what a search needs on top: a start epoch (Hyperband continues
a model from an earlier round), extra callbacks (keras-tuner's checkpointing) and an optional dev
split. The pieces are the recipe's own: its ``tf.data`` pipeline (batch size, per-epoch shuffle,
augmentation), its learning-rate schedule and its early stopping on dev loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from recipes.config import TrainConfig
from recipes.schedules import learning_rate_at
from recipes.training import EVALUATION_BATCH, PreparedData, training_dataset


def quiet_retracing() -> None:
    """Silence TensorFlow's "retracing" warning: a search builds a new model per trial by design."""
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")


def fit_callbacks(config: TrainConfig, validating: bool) -> list[Any]:
    """The recipe's callbacks: per-epoch learning-rate schedule, stop on NaN, early stopping.

    Args:
        config: the trial's config (schedule, early stopping, patience, min_delta).
        validating: whether dev data are evaluated each epoch (early stopping needs them).

    Returns:
        Fresh Keras callbacks.
    """
    import keras

    callbacks = [
        keras.callbacks.LearningRateScheduler(lambda epoch: learning_rate_at(config, epoch)),
        keras.callbacks.TerminateOnNaN(),
    ]
    if config.early_stopping and validating:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, min_delta=config.min_delta, restore_best_weights=True
            )
        )
    return callbacks


def fit_model(
    model: Any,
    config: TrainConfig,
    data: PreparedData,
    epochs: int | None = None,
    initial_epoch: int = 0,
    callbacks: Sequence[Any] = (),
) -> dict[str, list[float]]:
    """Train a compiled recipe model on ``data``'s training split.

    Args:
        model: a compiled model from ``build_model`` + ``compile_model``.
        config: the config it was built from.
        data: the prepared data; its dev split (when not empty) is evaluated every epoch.
        epochs: the epoch to stop after. Defaults to ``config.epochs``.
        initial_epoch: the epoch to start from (Hyperband's continuation). Defaults to 0.
        callbacks: callbacks run after the recipe's own.

    Returns:
        Keras's history: per-epoch ``loss``, ``accuracy`` and, with dev data, ``val_loss``,
        ``val_accuracy``.
    """
    validating = len(data.split.dev) > 0
    return model.fit(
        training_dataset(config, data),
        validation_data=data.part("dev") if validating else None,
        validation_batch_size=EVALUATION_BATCH,
        epochs=epochs or config.epochs,
        initial_epoch=initial_epoch,
        shuffle=False,  # the pipeline reshuffles every epoch itself
        callbacks=[*fit_callbacks(config, validating), *callbacks],
        verbose=0,
    ).history
