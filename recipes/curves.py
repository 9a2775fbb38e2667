"""Smoothing of training curves with the exponentially weighted moving average (EWMA).

The seed's formula: ``v_t = beta * v_{t-1} + (1 - beta) * theta_t`` with ``v_0 = 0``, and the bias
correction ``v_t / (1 - beta**t)`` (``t`` counted from 1) that removes the pull towards zero in the
first steps. ``beta = 0.9`` averages over roughly the last ``1 / (1 - beta) = 10`` values.
This module imports no TensorFlow and no matplotlib.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np

from edge.device.errors import UserError


def ewma(values: Iterable[float], beta: float = 0.9, bias_correction: bool = True) -> np.ndarray:
    """Exponentially weighted moving average of a sequence, optionally bias-corrected.

    Computes ``v_t = beta * v_{t-1} + (1 - beta) * theta_t`` from ``v_0 = 0`` and, with
    ``bias_correction``, returns ``v_t / (1 - beta**t)`` with ``t`` starting at 1.

    Missing values (NaN) are skipped: they do not update the average and do not advance ``t``, and
    the output at their position repeats the last smoothed value (NaN while there is none yet). A
    constant sequence with gaps therefore still smooths to the constant. Infinite values are kept
    as they are (a diverged loss stays visible).

    Args:
        values: The raw sequence, one value per step (list, tuple or 1-D array).
        beta: The weight of the past, in ``[0, 1)``; ``0`` returns the values unchanged.
        bias_correction: Divide by ``1 - beta**t`` so early values are not biased towards zero.

    Returns:
        A float64 array of the same length as ``values``.

    Raises:
        UserError: If ``beta`` is outside ``[0, 1)`` or ``values`` is not a one-dimensional
            sequence of numbers.
    """
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0.0 <= beta < 1.0:
        raise UserError(f"EWMA beta must be a number in [0, 1), got {beta!r}")
    try:
        array = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise UserError(f"EWMA needs a sequence of numbers: {error}") from error
    if array.ndim != 1:
        raise UserError(f"EWMA needs a one-dimensional sequence, got shape {array.shape}")

    smoothed = np.empty_like(array)
    average = 0.0
    step = 0
    last_output = math.nan
    for index, value in enumerate(array):
        if not math.isnan(value):
            step += 1
            average = beta * average + (1.0 - beta) * value
            last_output = average / (1.0 - beta**step) if bias_correction else average
        smoothed[index] = last_output
    return smoothed
