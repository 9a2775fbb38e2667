"""Learning-rate schedules, one formula per name, evaluated per epoch (0-based).

Pure Python so the formulas can be tested without TensorFlow; training wraps
:func:`learning_rate_at` in a Keras ``LearningRateScheduler``.
"""

from __future__ import annotations

import math

from recipes.config import TrainConfig


def learning_rate_at(config: TrainConfig, epoch: int) -> float:
    """The learning rate for ``epoch`` (0 is the first epoch) under ``config.schedule``.

    Formulas, with alpha0 = ``config.learning_rate``:

    - ``constant``: alpha0
    - ``inverse_time``: alpha0 / (1 + decay_rate * epoch)
    - ``exponential``: alpha0 * exponential_rate ** epoch (the seed's 0.95 ** epoch by default)
    - ``inverse_sqrt``: k * alpha0 / sqrt(epoch + 1); the seed's k / sqrt(epoch_num) * alpha0 with
      epoch_num counted from 1, so the first epoch is defined
    - ``step``: alpha0 * step_factor ** floor(epoch / step_epochs) (discrete staircase)

    Args:
        config: the training config (schedule name and its parameters).
        epoch: 0-based epoch index.

    Returns:
        The learning rate as a float.
    """
    alpha0 = config.learning_rate
    schedule = config.schedule
    if schedule == "constant":
        return alpha0
    if schedule == "inverse_time":
        return alpha0 / (1.0 + config.decay_rate * epoch)
    if schedule == "exponential":
        return alpha0 * config.exponential_rate**epoch
    if schedule == "inverse_sqrt":
        return config.inverse_sqrt_k * alpha0 / math.sqrt(epoch + 1)
    if schedule == "step":
        return alpha0 * config.step_factor ** (epoch // config.step_epochs)
    raise ValueError(f"unknown schedule {schedule!r}")  # validate() rejects it before we get here
