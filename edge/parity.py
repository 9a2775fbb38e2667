"""Parity of a ``.tflite`` variant with the Keras model it came from, on the run's test split.

A classifier is compared by its class probabilities and argmax (:class:`Parity`); an anomaly detector,
whose one output is its anomaly score, by the AUC and by its decisions at the run's threshold
(:class:`AnomalyParity`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.runtime import EdgeModel, is_anomaly
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

    def shortfall(self) -> str:
        """What the tolerance is about, measured against its limits, for a warning."""
        return (
            f"max |diff| {self.max_abs_diff:.2e} (limit {self.max_abs_diff_limit:g}), accuracy drop "
            f"{self.accuracy_drop_points:.2f} points (limit {self.max_accuracy_drop:g})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``report.json``."""
        return {
            **vars(self),
            "accuracy_drop_points": self.accuracy_drop_points,
            "within_tolerance": self.within_tolerance,
        }


def measure_parity(
    model: EdgeModel, variant: Variant, x: np.ndarray, y: np.ndarray, keras_outputs: np.ndarray
) -> Parity:
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


@dataclass
class AnomalyParity:
    """How one variant of an anomaly detector compares with Keras on the same examples.

    Args:
        variant: the variant's name.
        examples: examples compared.
        threshold: the run's threshold; a score at or above it is an anomaly.
        auc: the variant's AUC (anomalies against normal examples, by score).
        keras_auc: the Keras model's AUC on the same examples.
        agreement: share of examples whose decision (anomaly or normal) equals the Keras model's.
        max_abs_diff: largest absolute difference of a score from Keras's.
        mean_abs_diff: mean absolute difference of the scores.
        score_range: the variant's smallest and largest score.
        keras_score_range: the Keras model's smallest and largest score.
        max_auc_drop: the variant's stated tolerance on the AUC drop.
        min_decision_agreement: the variant's stated floor on ``agreement``.
    """

    variant: str
    examples: int
    threshold: float
    auc: float
    keras_auc: float
    agreement: float
    max_abs_diff: float
    mean_abs_diff: float
    score_range: tuple[float, float]
    keras_score_range: tuple[float, float]
    max_auc_drop: float
    min_decision_agreement: float

    @property
    def auc_drop(self) -> float:
        """Keras AUC minus the variant's (negative: the variant ranks better)."""
        return self.keras_auc - self.auc

    @property
    def within_tolerance(self) -> bool:
        """Whether the AUC drop and the decision agreement are within the stated limits."""
        return self.auc_drop <= self.max_auc_drop + 1e-9 and self.agreement >= self.min_decision_agreement

    def shortfall(self) -> str:
        """What the tolerance is about, measured against its limits, for a warning."""
        return (
            f"AUC {self.auc:.4f} against Keras {self.keras_auc:.4f} (drop limit {self.max_auc_drop:g}), decisions "
            f"agree on {self.agreement:.1%} (floor {self.min_decision_agreement:.0%})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``report.json``."""
        return {
            **vars(self),
            "score_range": list(self.score_range),
            "keras_score_range": list(self.keras_score_range),
            "auc_drop": self.auc_drop,
            "within_tolerance": self.within_tolerance,
        }


def measure_anomaly_parity(
    model: EdgeModel, variant: Variant, x: np.ndarray, y: np.ndarray, keras_scores: np.ndarray, threshold: float
) -> AnomalyParity:
    """Run an anomaly detector's variant on ``x`` and compare its scores and decisions with the Keras model's.

    Args:
        model: the variant loaded in the LiteRT runtime.
        variant: its registry row (for the tolerances).
        x: raw inputs holding normal and anomalous examples.
        y: 0 (normal) or 1 (anomaly) per example.
        keras_scores: the Keras model's anomaly scores for ``x``.
        threshold: the run's threshold.
    """
    from sklearn.metrics import roc_auc_score

    scores = model.predict(x).reshape(-1)
    keras_scores = np.asarray(keras_scores, np.float32).reshape(-1)
    difference = np.abs(scores - keras_scores)
    agreement = np.mean(is_anomaly(scores, threshold) == is_anomaly(keras_scores, threshold))
    return AnomalyParity(
        variant=variant.name,
        examples=len(y),
        threshold=threshold,
        auc=float(roc_auc_score(y, scores)),
        keras_auc=float(roc_auc_score(y, keras_scores)),
        agreement=float(agreement),
        max_abs_diff=float(difference.max()),
        mean_abs_diff=float(difference.mean()),
        score_range=(float(scores.min()), float(scores.max())),
        keras_score_range=(float(keras_scores.min()), float(keras_scores.max())),
        max_auc_drop=variant.max_auc_drop,
        min_decision_agreement=variant.min_decision_agreement,
    )
