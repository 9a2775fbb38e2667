"""Parity of a ``.tflite`` variant with the Keras model it came from, on the run's test split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.runtime import EdgeModel
from edge.variants import Variant


@dataclass
class Parity:
    """How one variant compares with Keras on the same examples.

    Args:
        variant: the variant's name.
        examples: examples compared.
        accuracy: the variant's accuracy.
        keras_accuracy: the Keras model's accuracy on the same examples.
        agreement: share of examples whose argmax equals the Keras model's.
        max_abs_diff: largest absolute difference of any output value from Keras.
        mean_abs_diff: mean absolute difference over all output values.
        max_abs_diff_limit: the variant's stated tolerance on ``max_abs_diff``.
        max_accuracy_drop: the variant's stated tolerance on the accuracy drop, in points.
    """

    variant: str
    examples: int
    accuracy: float
    keras_accuracy: float
    agreement: float
    max_abs_diff: float
    mean_abs_diff: float
    max_abs_diff_limit: float
    max_accuracy_drop: float

    @property
    def accuracy_drop_points(self) -> float:
        """Keras accuracy minus the variant's, in percentage points (negative: the variant is better)."""
        return 100.0 * (self.keras_accuracy - self.accuracy)

    @property
    def within_tolerance(self) -> bool:
        """Whether both the output difference and the accuracy drop are within the stated limits."""
        close = self.max_abs_diff <= self.max_abs_diff_limit
        return close and self.accuracy_drop_points <= self.max_accuracy_drop + 1e-9

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``report.json``."""
        return {**vars(self), "accuracy_drop_points": self.accuracy_drop_points,
                "within_tolerance": self.within_tolerance}


def measure_parity(model: EdgeModel, variant: Variant, x: np.ndarray, y: np.ndarray,
                   keras_outputs: np.ndarray) -> Parity:
    """Run ``model`` on ``x`` and compare its outputs with the Keras model's.

    Args:
        model: the variant loaded in the LiteRT runtime.
        variant: its registry row (for the tolerances).
        x: raw inputs.
        y: class indices of ``x``.
        keras_outputs: the Keras model's probabilities for ``x``.
    """
    outputs = model.predict(x)
    difference = np.abs(outputs - keras_outputs)
    predicted, keras_predicted = outputs.argmax(axis=1), keras_outputs.argmax(axis=1)
    return Parity(
        variant=variant.name,
        examples=len(y),
        accuracy=float(np.mean(predicted == y)),
        keras_accuracy=float(np.mean(keras_predicted == y)),
        agreement=float(np.mean(predicted == keras_predicted)),
        max_abs_diff=float(difference.max()),
        mean_abs_diff=float(difference.mean()),
        max_abs_diff_limit=variant.max_abs_diff,
        max_accuracy_drop=variant.max_accuracy_drop,
    )
