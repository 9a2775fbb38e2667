"""Bias and variance diagnosis from training, dev and optimal (Bayes / human-level) error.

The seed's rule: the gap between training error and the optimal error is the *avoidable bias*; the gap
between dev error and training error is the *variance*. Either is "high" when it exceeds a tolerance,
so "high" is always relative to the optimal error, never an absolute number. Each verdict comes with
the seed's remedies. This module imports no TensorFlow.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from edge.device.errors import UserError

HIGH_BIAS = "high bias"
HIGH_VARIANCE = "high variance"
HIGH_BIAS_AND_VARIANCE = "high bias and high variance"
FINE = "fine"

BIAS_REMEDIES = (
    "bigger network (more hidden units or more layers)",
    "train longer",
    "less regularization (smaller L2 lambda, lower dropout rate)",
    "better optimizer (momentum, RMSprop, Adam) or a different architecture",
)
EARLY_STOPPING_REMEDY = (
    "early stopping is already on and restored the epoch of the lowest dev loss: lower `patience` only if the dev "
    "cost turns up early, and reach for the remedies above first"
)
VARIANCE_REMEDIES = (
    "more training data",
    "regularization (L2, dropout)",
    "data augmentation",
    "early stopping (stop when the dev cost curve parts from the train cost curve)",
)
FINE_REMEDIES = ("nothing needed: check the test error, then deploy",)


@dataclass
class Diagnosis:
    """The outcome of :func:`diagnose`: the errors, the two gaps, the verdict and what to do.

    Attributes:
        train_error: Error on the training split, a fraction in ``[0, 1]``.
        dev_error: Error on the dev split, a fraction in ``[0, 1]``.
        bayes_error: Estimate of the optimal (Bayes / human-level) error, a fraction in ``[0, 1]``.
        avoidable_bias: ``train_error - bayes_error`` (negative when the estimate is above the
            training error).
        variance: ``dev_error - train_error``.
        verdict: ``"high bias"``, ``"high variance"``, ``"high bias and high variance"`` or
            ``"fine"``.
        remedies: The seed's remedies for the verdict, bias remedies first when both are high.
        tolerance: The gap above which bias or variance counts as high.
        measure: What the errors are: None for error rates (fractions, shown as percentages), else its name
            with its unit, e.g. ``"RMSE (target units)"`` (a regression's, shown as numbers).
        findings: What the training history shows that the errors alone do not (:func:`training_findings`),
            each a sentence; their remedies come first in ``remedies``.
    """

    train_error: float
    dev_error: float
    bayes_error: float
    avoidable_bias: float
    variance: float
    verdict: str
    remedies: list[str] = field(default_factory=list)
    tolerance: float = 0.02
    measure: str | None = None
    findings: list[str] = field(default_factory=list)

    def _show(self, value: float, signed: bool = False) -> str:
        """A value as this diagnosis writes it: a percentage for error rates, else a number."""
        if self.measure is None:
            return f"{value:+.2%}" if signed else f"{value:.2%}"
        return f"{value:+.4g}" if signed else f"{value:.4g}"

    @property
    def _assumed(self) -> str:
        """For a measure in units (a regression's RMSE) with no optimal error given: that 0 is an assumption. No
        regression of noisy targets reaches 0, so the avoidable bias then holds the targets' noise too."""
        if self.measure is None or self.bayes_error != 0:
            return ""
        return ", assumed (give --bayes-error, e.g. the targets' noise)"

    @property
    def _error(self) -> str:
        return "error" if self.measure is None else self.measure.split(" (")[0]

    def summary_line(self) -> str:
        """One line for the console, e.g. ``high variance: dev error 8.1% vs train 0.5% (optimal ≈ 0.0%)``.

        Returns:
            The verdict followed by the numbers that led to it.
        """

        def show(value: float) -> str:
            return f"{value:.1%}" if self.measure is None else f"{value:.4g}"

        optimal, error = f"optimal ≈ {show(self.bayes_error)}{self._assumed}", self._error
        train, dev = show(self.train_error), show(self.dev_error)
        if self.verdict == HIGH_BIAS:
            return f"{self.verdict}: train {error} {train} vs {optimal} (dev {dev})"
        if self.verdict == HIGH_BIAS_AND_VARIANCE:
            return f"{self.verdict}: train {error} {train} vs {optimal}, dev {error} {dev}"
        return f"{self.verdict}: dev {error} {dev} vs train {train} ({optimal})"

    def to_markdown(self, title: str = "Diagnosis") -> str:
        """Render the diagnosis as the ``diagnosis.md`` of a run.

        Args:
            title: The level-one heading. Defaults to ``"Diagnosis"``.

        Returns:
            Markdown text: the three errors as a table, the two gaps, the verdict in bold, the
            remedies as bullets and how "high" is judged. Ends with a newline.
        """
        lines = [
            f"# {title}",
            "",
            f"| {self.measure or 'error'} | value |",
            "| --- | ---: |",
            f"| train | {self._show(self.train_error)} |",
            f"| dev | {self._show(self.dev_error)} |",
            f"| optimal (Bayes / human-level estimate) | {self._show(self.bayes_error)}{self._assumed} |",
            "",
            f"- avoidable bias (train − optimal): {self._show(self.avoidable_bias, True)}",
            f"- variance (dev − train): {self._show(self.variance, True)}",
            "",
            f"Verdict: **{self.verdict}**",
            "",
            *(line for finding in self.findings for line in (f"Found in training: {finding}", "")),
            "What to try:",
            "",
            *(f"- {remedy}" for remedy in self.remedies),
            "",
            f'"High" is judged relative to the optimal error estimate ({self._show(self.bayes_error)}), not as an '
            f"absolute number: avoidable bias above the tolerance of {self._show(self.tolerance)} means high "
            "bias, and a dev − train gap above the same tolerance means high variance.",
        ]
        if self.avoidable_bias < 0:
            lines += [
                "",
                "The training error is below the optimal error estimate, so that estimate is probably "
                "too high; the bias verdict rests on it.",
            ]
        return "\n".join(lines) + "\n"


# The epoch log's training accuracy (training mode, averaged over the epoch) above the evaluated one by more than
# this means the model behaves differently at inference: BatchNorm's running statistics are not the batches'.
TRAINING_MODE_GAP = 0.1


def training_findings(
    history: dict[str, list[float]],
    metrics: dict[str, Any],
    kept: int,
    *,
    batch_norm: bool,
    batch_norm_momentum: float,
    steps_per_epoch: int,
    learning_rate: float,
) -> list[dict[str, str]]:
    """What the history shows beside the errors, each ``{"finding": ..., "remedy": ...}`` with a setting to change.

    - The evaluated training accuracy more than :data:`TRAINING_MODE_GAP` below the epoch log's at the kept epoch
      (a regression: an evaluated training loss more than twice the log's and 0.1 above it): with BatchNorm, its
      running statistics have not settled in the steps training took; without it, the model differs between
      training and inference in another way (the remedy then names none).
    - The kept epoch is the first of several: no later epoch did better on the dev split.
    """
    findings = []
    index = kept - 1
    train = metrics.get("train") if isinstance(metrics.get("train"), dict) else {}
    logged, evaluated, name = None, None, ""
    if history.get("accuracy") and "accuracy" in train and index < len(history["accuracy"]):
        logged, evaluated, name = history["accuracy"][index], train["accuracy"], "accuracy"
        apart = logged - evaluated > TRAINING_MODE_GAP
    elif history.get("loss") and "loss" in train and index < len(history["loss"]):
        logged, evaluated, name = history["loss"][index], train["loss"], "loss"
        apart = evaluated > 2 * logged and evaluated - logged > 0.1
    else:
        apart = False
    if apart:
        finding = (
            f"the training split's {name} is {evaluated:.4g} evaluated but {logged:.4g} in the epoch log at epoch "
            f"{kept}"
        )
        if batch_norm:
            remedy = (
                f"BatchNorm's running statistics have not settled ({steps_per_epoch} steps an epoch at "
                f"batch_norm_momentum {batch_norm_momentum:g}): lower it, e.g. --set batch_norm_momentum=0.9, or "
                "take more steps with a smaller --batch-size"
            )
        else:
            remedy = "the model computes differently in training and at inference; check custom layers"
        findings.append({"finding": finding, "remedy": remedy})
    epochs = len(history.get("epoch", []))
    if kept == 1 and epochs > 1:
        findings.append(
            {
                "finding": f"early stopping kept epoch 1 of {epochs}: no later epoch did better on the dev split",
                "remedy": (
                    f"lower the learning rate (now {learning_rate:g}), e.g. --learning-rate {learning_rate / 10:g}, "
                    "regularize more (--set dropout=0.3, l2), and check that dev data resemble the training data"
                ),
            }
        )
    return findings


def with_findings(diagnosis: Diagnosis, findings: list[dict[str, str]]) -> Diagnosis:
    """The diagnosis with ``findings`` (from :func:`training_findings`) attached: their remedies first, and no
    "bigger network" while a finding explains the errors."""
    if not findings:
        return diagnosis
    diagnosis.findings = [f"{item['finding']}: {item['remedy']}" for item in findings]
    remedies = [remedy for remedy in diagnosis.remedies if not remedy.startswith("bigger network")]
    diagnosis.remedies = [item["remedy"] for item in findings] + remedies
    return diagnosis


def _is_real(value: Any) -> bool:
    """True for ints, floats and numpy scalars; False for booleans, strings and ``None``."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _non_negative(name: str, value: Any) -> float:
    """Check that ``value`` is a finite real number >= 0 and return it as a float."""
    if not _is_real(value) or not 0.0 <= value < math.inf:
        raise UserError(f"{name} must be a number >= 0 in the target's units, got {value!r}")
    return float(value)


def _fraction(name: str, value: Any) -> float:
    """Check that ``value`` is a real number in ``[0, 1]`` and return it as a float."""
    if not _is_real(value) or not 0.0 <= value <= 1.0:
        raise UserError(f"{name} must be a fraction in [0, 1] (e.g. 0.05 for 5%), got {value!r}")
    return float(value)


def diagnose(
    train_error: float,
    dev_error: float,
    bayes_error: float = 0.0,
    tolerance: float = 0.02,
    measure: str | None = None,
) -> Diagnosis:
    """Diagnose bias and variance from the training, dev and optimal errors.

    High bias when ``train_error - bayes_error > tolerance``; high variance when
    ``dev_error - train_error > tolerance``; both when both hold; otherwise fine. A ``bayes_error``
    above ``train_error`` is allowed and simply gives a negative avoidable bias.

    Args:
        train_error: Error on the training split, a fraction in ``[0, 1]``.
        dev_error: Error on the dev split, a fraction in ``[0, 1]``.
        bayes_error: Estimate of the optimal (Bayes / human-level) error, a fraction in ``[0, 1]``.
            Defaults to 0.0.
        tolerance: The gap above which bias or variance counts as high, in ``(0, 1)``.
            Defaults to 0.02.
        measure: None for error rates; else the name and unit of errors that are any numbers >= 0 (a
            regression's RMSE), with any tolerance > 0.

    Returns:
        The :class:`Diagnosis` with the gaps, the verdict and its remedies.

    Raises:
        UserError: If an error is not a number in ``[0, 1]`` (>= 0 with a ``measure``) or ``tolerance`` is not in
            ``(0, 1)`` (> 0 with a ``measure``).
    """
    check = _fraction if measure is None else _non_negative
    train_error = check("train error", train_error)
    dev_error = check("dev error", dev_error)
    bayes_error = check("optimal (Bayes) error", bayes_error)
    if not _is_real(tolerance) or not 0.0 < tolerance < (1.0 if measure is None else math.inf):
        raise UserError(f"diagnosis tolerance must be a fraction in (0, 1), e.g. 0.02, got {tolerance!r}")
    tolerance = float(tolerance)

    avoidable_bias = train_error - bayes_error
    variance = dev_error - train_error
    high_bias = avoidable_bias > tolerance
    high_variance = variance > tolerance
    if high_bias and high_variance:
        verdict, remedies = HIGH_BIAS_AND_VARIANCE, BIAS_REMEDIES + VARIANCE_REMEDIES
    elif high_bias:
        verdict, remedies = HIGH_BIAS, BIAS_REMEDIES
    elif high_variance:
        verdict, remedies = HIGH_VARIANCE, VARIANCE_REMEDIES
    else:
        verdict, remedies = FINE, FINE_REMEDIES
    return Diagnosis(
        train_error=train_error,
        dev_error=dev_error,
        bayes_error=bayes_error,
        avoidable_bias=avoidable_bias,
        variance=variance,
        verdict=verdict,
        remedies=list(remedies),
        tolerance=tolerance,
        measure=measure,
    )


def _accuracy(metrics: dict, split: str) -> float:
    """The accuracy of one split in a run's ``metrics.json`` dict, or a :class:`UserError`."""
    section = metrics.get(split)
    accuracy = section.get("accuracy") if isinstance(section, dict) else None
    if accuracy is None:
        raise UserError(
            f"metrics.json in this run has no {split} accuracy; diagnosis needs the accuracy of the "
            "train and dev splits (train with a dev split, e.g. --set split=0.8,0.1,0.1)"
        )
    if not _is_real(accuracy) or not 0.0 <= accuracy <= 1.0:
        raise UserError(f"metrics.json in this run has {split} accuracy {accuracy!r}; expected a number in [0, 1]")
    return float(accuracy)


def with_early_stopping(diagnosis: Diagnosis) -> Diagnosis:
    """The same diagnosis for a run that stopped early already: its early-stopping remedy says so instead of
    recommending what was done."""
    diagnosis.remedies = [
        EARLY_STOPPING_REMEDY if remedy.startswith("early stopping") else remedy for remedy in diagnosis.remedies
    ]
    return diagnosis


def diagnose_metrics(metrics: dict, bayes_error: float = 0.0, tolerance: float = 0.02) -> Diagnosis:
    """Diagnose a finished run from its ``metrics.json`` contents, with error = 1 − accuracy.

    Args:
        metrics: The run's metrics, e.g. ``{"train": {"loss": 0.1, "accuracy": 0.99},
            "dev": {...}, "test": {...}, "split": {...}}``. Only ``train`` and ``dev`` accuracy are used.
        bayes_error: Estimate of the optimal (Bayes / human-level) error, a fraction in ``[0, 1]``.
            Defaults to 0.0.
        tolerance: The gap above which bias or variance counts as high, in ``(0, 1)``.
            Defaults to 0.02.

    Returns:
        The :class:`Diagnosis` of :func:`diagnose`.

    Raises:
        UserError: If ``metrics`` lacks the train or dev accuracy, or a value is out of range.
    """
    if not isinstance(metrics, dict):
        raise UserError(f"metrics.json must hold an object with train and dev sections, got {type(metrics).__name__}")
    train_error = 1.0 - _accuracy(metrics, "train")
    dev_error = 1.0 - _accuracy(metrics, "dev")
    return diagnose(train_error, dev_error, bayes_error=bayes_error, tolerance=tolerance)
