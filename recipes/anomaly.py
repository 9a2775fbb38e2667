"""The anomaly-detection task: normal and anomalous labels, the threshold, AUC and the confusion.

A recipe of this task (the autoencoder) outputs an anomaly score per example (its mean squared
reconstruction error) and is trained on normal examples only. An example is flagged as an anomaly
when its score is at least the threshold. The threshold is chosen on the dev split by Youden's J
(true-positive rate minus false-positive rate, the ROC point farthest above the diagonal; a tie goes
to the higher threshold, which raises fewer false alarms), then placed halfway between the lowest
flagged dev score and the highest unflagged one, which keeps the dev confusion and leaves the widest
margin on both sides. This module imports no TensorFlow.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from edge.device.errors import UserError
from recipes.dataset import Dataset

NORMAL, ANOMALY = 0, 1
CLASS_NAMES = ["normal", "anomaly"]
THRESHOLD_RULE = "Youden's J (TPR - FPR) on dev; score >= threshold is an anomaly"


def binary_labels(dataset: Dataset, normal_class: str) -> Dataset:
    """Relabel ``dataset`` as normal (0) and anomaly (1): every class but ``normal_class`` is an anomaly.

    Args:
        dataset: a labelled data set with at least two classes.
        normal_class: the name of the normal class; when no class has it, class 0 is normal.

    Returns:
        A copy with labels 0/1 and class names ``["normal", "anomaly"]``.
    """
    normal_index = dataset.class_names.index(normal_class) if normal_class in dataset.class_names else 0
    y = (dataset.y != normal_index).astype(np.int32)
    return replace(dataset, y=y, class_names=list(CLASS_NAMES))


def choose_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The score threshold that maximizes Youden's J on (dev) ``scores`` and 0/1 ``labels``.

    Raises:
        UserError: the labels do not hold both normal and anomalous examples.
    """
    from sklearn.metrics import roc_curve

    labels = np.asarray(labels).reshape(-1)
    if len(set(labels.tolist())) < 2:
        raise UserError(
            "the dev split needs normal and anomalous examples to choose the anomaly threshold; "
            "add anomalies (any class but normal_class) to the data"
        )
    false_positive, true_positive, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    youden = true_positive - false_positive
    best = int(np.flatnonzero(youden >= youden.max() - 1e-12)[0])  # a tie goes to fewer false alarms
    if best == 0:  # no score flagged (J never above 0): only scores above every dev score are anomalies
        return float(np.nextafter(np.max(scores), np.inf))
    below = thresholds[best + 1] if best + 1 < len(thresholds) else thresholds[best]
    return float((thresholds[best] + below) / 2)


def decisions(scores: np.ndarray, threshold: float) -> np.ndarray:
    """The class each score is decided as: :data:`ANOMALY` (1) at or above ``threshold``, else :data:`NORMAL` (0)."""
    return (np.asarray(scores, np.float64).reshape(-1) >= threshold).astype(np.int64)


def split_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, Any]:
    """Accuracy, AUC, confusion and mean scores of one split at ``threshold``.

    Args:
        scores: anomaly score per example.
        labels: 0 (normal) or 1 (anomaly) per example.
        threshold: scores at or above it are flagged as anomalies.

    Returns:
        ``accuracy``, ``auc`` (None when the split holds one kind only, e.g. the normal-only training
        split), ``confusion`` (true/false negatives/positives, anomaly = positive), and the mean score
        of the normal and of the anomalous examples (None when there are none).
    """
    from sklearn.metrics import roc_auc_score

    scores = np.asarray(scores, np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    flagged = scores >= threshold
    anomalous = labels == ANOMALY
    both_kinds = anomalous.any() and (~anomalous).any()
    return {
        "accuracy": float(np.mean(flagged == anomalous)),
        "auc": float(roc_auc_score(anomalous, scores)) if both_kinds else None,
        "confusion": {
            "true_negative": int(np.sum(~flagged & ~anomalous)),
            "false_positive": int(np.sum(flagged & ~anomalous)),
            "false_negative": int(np.sum(~flagged & anomalous)),
            "true_positive": int(np.sum(flagged & anomalous)),
        },
        "mean_score_normal": float(scores[~anomalous].mean()) if (~anomalous).any() else None,
        "mean_score_anomaly": float(scores[anomalous].mean()) if anomalous.any() else None,
    }


def summary_line(metrics: dict[str, Any]) -> str:
    """One line for the console, e.g. ``threshold 0.84: dev AUC 0.982, test AUC 0.975, test accuracy 94.1%``."""
    return (
        f"threshold {metrics['threshold']:.4g}: dev AUC {metrics['dev']['auc']:.3f}, "
        f"test AUC {metrics['test']['auc']:.3f}, test accuracy {metrics['test']['accuracy']:.1%}"
    )


def diagnosis_markdown(metrics: dict[str, Any], title: str) -> str:
    """The ``diagnosis.md`` of an anomaly-detection run: why there is no bias/variance verdict, and what to read.

    Args:
        metrics: the run's metrics (see :func:`split_metrics`, plus ``threshold`` and each split's ``loss``).
        title: the level-one heading.
    """
    rows = [
        f"| {part} | {metrics[part]['loss']:.4f} | "
        + ("-" if metrics[part]["auc"] is None else f"{metrics[part]['auc']:.3f}")
        + f" | {metrics[part]['accuracy']:.2%} |"
        for part in ("train", "dev", "test")
    ]
    confusion = metrics["test"]["confusion"]
    return (
        "\n".join(
            [
                f"# {title}",
                "",
                "This is an anomaly-detection run: the model was trained on normal examples only, so the "
                "bias/variance diagnosis (training error vs dev error of a classifier) does not apply.",
                "",
                "| split | reconstruction loss (normal examples) | AUC | accuracy at the threshold |",
                "| --- | ---: | ---: | ---: |",
                *rows,
                "",
                f"Threshold {metrics['threshold']:.6g} ({THRESHOLD_RULE}).",
                "",
                f"Test confusion: {confusion['true_positive']} anomalies caught, {confusion['false_negative']} "
                f"missed, {confusion['false_positive']} false alarms, {confusion['true_negative']} normal "
                "examples passed.",
                "",
                "What to read: a dev reconstruction loss far above the training loss means the autoencoder "
                "memorized its training examples (more data, weight decay, a smaller bottleneck); a low dev "
                "AUC with low losses means it reconstructs anomalies too well (a smaller bottleneck or width).",
            ]
        )
        + "\n"
    )
