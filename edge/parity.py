"""Parity of a ``.tflite`` variant with the Keras model it came from, on the run's test split.

A classifier is compared by its class probabilities and argmax (:class:`Parity`); an anomaly detector,
whose one output is its anomaly score, by the AUC and by its decisions at the run's threshold
(:class:`AnomalyParity`); a regression by its values in target units and its R² (:class:`RegressionParity`).
Each kind says what Keras scored (``keras_summary``) and how it shows in the export's table (``columns``,
``row``); the task's row of :data:`edge.device.tasks.TASKS` names the kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.device.model import EdgeModel, is_anomaly
from edge.variants import Variant
from recipes.anomaly import CLASS_NAMES as ANOMALY_CLASS_NAMES
from recipes.class_metrics import class_report
from recipes.tasks import regression_metrics


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
        classes: the variant's per-class results (:func:`recipes.class_metrics.class_report`).
        keras_classes: the Keras model's on the same examples.
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
    classes: dict[str, Any] | None = None
    keras_classes: dict[str, Any] | None = None

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
            **{key: value for key, value in vars(self).items() if key != "keras_classes"},
            "accuracy_drop_points": self.accuracy_drop_points,
            "within_tolerance": self.within_tolerance,
        }

    columns = ("accuracy", "agree", "max diff", "mean diff", "limit")

    def row(self) -> list[str]:
        """This variant's cells under :attr:`columns`."""
        return [
            f"{self.accuracy:.2%}",
            f"{self.agreement:.1%}",
            f"{self.max_abs_diff:.1e}",
            f"{self.mean_abs_diff:.1e}",
            f"{self.max_abs_diff_limit:g}",
        ]

    def keras_summary(self) -> dict[str, Any]:
        """What the Keras model scored on the same examples (``report.json``)."""
        return {"keras_accuracy": self.keras_accuracy, "keras_classes": self.keras_classes}

    def title(self) -> str:
        """The export table's title."""
        return f"parity with Keras on {self.examples} test examples (Keras accuracy {self.keras_accuracy:.2%})"


def measure_parity(
    model: EdgeModel,
    variant: Variant,
    x: np.ndarray,
    y: np.ndarray,
    keras_outputs: np.ndarray,
    threshold: float | None = None,
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
        max_abs_diff_limit=variant.tolerance("classification").max_abs_diff,
        max_accuracy_drop=variant.tolerance("classification").max_accuracy_drop,
        classes=class_report(y, predicted, model.class_names),
        keras_classes=class_report(y, keras_predicted, model.class_names),
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
        classes: the per-class results of the variant's decisions, normal against anomaly
            (:func:`recipes.class_metrics.class_report`).
        keras_classes: the Keras model's on the same examples.
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
    classes: dict[str, Any] | None = None
    keras_classes: dict[str, Any] | None = None

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
            **{key: value for key, value in vars(self).items() if key != "keras_classes"},
            "score_range": list(self.score_range),
            "keras_score_range": list(self.keras_score_range),
            "auc_drop": self.auc_drop,
            "within_tolerance": self.within_tolerance,
        }

    columns = ("AUC", "decisions agree", "max score diff", "mean score diff", "score max")

    def row(self) -> list[str]:
        """This variant's cells under :attr:`columns`."""
        return [
            f"{self.auc:.4f}",
            f"{self.agreement:.1%}",
            f"{self.max_abs_diff:.2g}",
            f"{self.mean_abs_diff:.2g}",
            f"{self.score_range[1]:.4g}",
        ]

    def keras_summary(self) -> dict[str, Any]:
        """What the Keras model scored on the same examples (``report.json``)."""
        return {"keras_auc": self.keras_auc, "threshold": self.threshold, "keras_classes": self.keras_classes}

    def title(self) -> str:
        """The export table's title."""
        return (
            f"parity with Keras on {self.examples} test examples (Keras AUC {self.keras_auc:.4f}, "
            f"threshold {self.threshold:.4g})"
        )


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
    decided, keras_decided = is_anomaly(scores, threshold), is_anomaly(keras_scores, threshold)
    agreement = np.mean(decided == keras_decided)
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
        max_auc_drop=variant.tolerance("anomaly").max_auc_drop,
        min_decision_agreement=variant.tolerance("anomaly").min_decision_agreement,
        classes=class_report(y, np.asarray(decided, np.int64), ANOMALY_CLASS_NAMES),
        keras_classes=class_report(y, np.asarray(keras_decided, np.int64), ANOMALY_CLASS_NAMES),
    )


@dataclass
class RegressionParity:
    """How one variant of a regression compares with Keras on the same examples, in target units.

    Args:
        variant: the variant's name.
        examples: examples compared.
        target_names: each output's name.
        r2: the variant's R² (averaged over the outputs).
        keras_r2: the Keras model's R² on the same examples.
        mae: the variant's mean absolute error against the targets (averaged over the outputs).
        keras_mae: the Keras model's.
        max_abs_diff: largest absolute difference of a value from Keras's, per output (target units).
        mean_abs_diff: mean absolute difference from Keras's, per output (target units).
        target_std: each target's standard deviation on these examples.
        max_relative_error: the variant's stated limit on the mean difference, in target deviations.
        max_r2_drop: the variant's stated limit on the R² drop.
    """

    variant: str
    examples: int
    target_names: list[str]
    r2: float
    keras_r2: float
    mae: float
    keras_mae: float
    max_abs_diff: list[float]
    mean_abs_diff: list[float]
    target_std: list[float]
    max_relative_error: float
    max_r2_drop: float

    @property
    def relative_error(self) -> float:
        """The largest mean absolute difference from Keras of any output, in units of that target's deviation."""
        return max(
            diff / std if std > 0 else 0.0 for diff, std in zip(self.mean_abs_diff, self.target_std, strict=True)
        )

    @property
    def relative_max_error(self) -> float:
        """The largest absolute difference from Keras of any value, in units of its target's deviation."""
        return max(diff / std if std > 0 else 0.0 for diff, std in zip(self.max_abs_diff, self.target_std, strict=True))

    @property
    def r2_drop(self) -> float:
        """Keras's R² minus the variant's (negative: the variant fits better)."""
        return self.keras_r2 - self.r2

    @property
    def within_tolerance(self) -> bool:
        """Whether the mean difference and the R² drop are within the stated limits."""
        return self.relative_error <= self.max_relative_error + 1e-12 and self.r2_drop <= self.max_r2_drop + 1e-9

    def shortfall(self) -> str:
        """What the tolerance is about, measured against its limits, for a warning."""
        return (
            f"mean |diff| {self.relative_error:.2e} target deviations (limit {self.max_relative_error:g}), R² "
            f"{self.r2:.4f} against Keras {self.keras_r2:.4f} (drop limit {self.max_r2_drop:g})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``report.json``."""
        return {
            **vars(self),
            "relative_error": self.relative_error,
            "relative_max_error": self.relative_max_error,
            "r2_drop": self.r2_drop,
            "within_tolerance": self.within_tolerance,
        }

    columns = ("R²", "MAE", "max diff/σ", "mean diff/σ", "limit", "R² drop")

    def row(self) -> list[str]:
        """This variant's cells under :attr:`columns`."""
        return [
            f"{self.r2:.4f}",
            f"{self.mae:.4g}",
            f"{self.relative_max_error:.1e}",
            f"{self.relative_error:.1e}",
            f"{self.max_relative_error:g}",
            f"{self.r2_drop:+.4f}",
        ]

    def keras_summary(self) -> dict[str, Any]:
        """What the Keras model scored on the same examples (``report.json``)."""
        return {"keras_r2": self.keras_r2, "keras_mae": self.keras_mae, "target_names": self.target_names}

    def title(self) -> str:
        """The export table's title."""
        return (
            f"parity with Keras on {self.examples} test examples (Keras R² {self.keras_r2:.4f}, MAE "
            f"{self.keras_mae:.4g}; σ: each target's deviation)"
        )


def measure_regression_parity(
    model: EdgeModel,
    variant: Variant,
    x: np.ndarray,
    y: np.ndarray,
    keras_values: np.ndarray,
    threshold: float | None = None,
) -> RegressionParity:
    """Run a regression's variant on ``x`` and compare its values with the Keras model's and with the targets.

    Args:
        model: the variant loaded in the LiteRT runtime.
        variant: its registry row (for the tolerances).
        x: raw inputs.
        y: the targets of ``x``, shape ``(n, outputs)``.
        keras_values: the Keras model's values for ``x``.
    """
    values = model.predict(x)
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    keras_values = np.asarray(keras_values, np.float64).reshape(len(y), -1)
    names = model.target_names or [f"y{index}" for index in range(y.shape[1])]
    mine, keras = regression_metrics(y, values, names), regression_metrics(y, keras_values, names)
    difference = np.abs(values - keras_values)
    return RegressionParity(
        variant=variant.name,
        examples=len(y),
        target_names=names,
        r2=float(mine["r2"] if mine["r2"] is not None else float("nan")),
        keras_r2=float(keras["r2"] if keras["r2"] is not None else float("nan")),
        mae=mine["mae"],
        keras_mae=keras["mae"],
        max_abs_diff=[float(value) for value in difference.max(axis=0)],
        mean_abs_diff=[float(value) for value in difference.mean(axis=0)],
        target_std=[float(value) for value in y.std(axis=0)],
        max_relative_error=variant.tolerance("regression").max_relative_error,
        max_r2_drop=variant.tolerance("regression").max_r2_drop,
    )
