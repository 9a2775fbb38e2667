"""Per-class results of a classifier (or of an anomaly detector's decisions): what ``metrics.json`` and the export's
``report.json`` hold under ``classes``, and the console line naming the worst-recalled classes.

One function, :func:`class_report`, turns true and predicted class indices into precision, recall, F1 and support
per class, their macro and weighted averages (scikit-learn's ``precision_recall_fscore_support``) and the confusion
matrix as counts (rows: the true class, columns: the predicted class, both in the order of the class names). A
figure that is undefined (the recall of a class the split does not hold, the precision of a class never predicted)
is ``None``, never a made-up 0, and the averages leave it out. Training and export both call it, so the Keras
figures of a run and those of its ``.tflite`` variants are computed the same way. This module imports no
TensorFlow and no matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

AXES = "rows: true class, columns: predicted class"
WORST_SHOWN = 3


def class_report(y_true: Any, y_pred: Any, class_names: Sequence[str]) -> dict[str, Any]:
    """Precision, recall, F1 and support per class, macro and weighted averages, and the confusion matrix.

    Args:
        y_true: the true class index of each example.
        y_pred: the predicted class index of each example.
        class_names: the name of each class index; every class gets a row, held by the split or not.

    Returns:
        JSON-able data: ``names`` (the class names, in index order), ``per_class`` (name → ``precision``,
        ``recall``, ``f1``, ``support``), ``macro_avg`` and ``weighted_avg`` (the same four figures; support is the
        number of examples), ``confusion_matrix`` (counts, a list of rows) and ``axes`` (which way it reads).
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    names = [str(name) for name in class_names]
    labels = list(range(len(names)))
    y_true = np.asarray(y_true).reshape(-1).astype(np.int64)
    y_pred = np.asarray(y_pred).reshape(-1).astype(np.int64)
    figures = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=np.nan)
    per_class = {
        name: {
            "precision": _number(figures[0][index]),
            "recall": _number(figures[1][index]),
            "f1": _number(figures[2][index]),
            "support": int(figures[3][index]),
        }
        for index, name in enumerate(names)
    }
    averages = {}
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=np.nan
        )
        averages[f"{average}_avg"] = {
            "precision": _number(precision),
            "recall": _number(recall),
            "f1": _number(f1),
            "support": len(y_true),
        }
    matrix = confusion_matrix(y_true, y_pred, labels=labels) if len(y_true) else np.zeros((len(names),) * 2, int)
    return {
        "names": names,
        "per_class": per_class,
        **averages,
        "confusion_matrix": [[int(count) for count in row] for row in matrix],
        "axes": AXES,
    }


def worst_recalled(report: dict[str, Any], count: int = WORST_SHOWN) -> list[dict[str, Any]]:
    """The ``count`` classes of ``report`` with the lowest recall (ties: the larger support first), each with the
    class its examples were most often taken for.

    Returns:
        One dict per class: ``name``, ``recall``, ``support``, ``confused_with`` (the name, or None when no example
        went astray) and ``confused_count``. Classes the split does not hold are left out.
    """
    names = report["names"]
    matrix = np.asarray(report["confusion_matrix"], np.int64).reshape(len(names), len(names))
    rows = []
    for index, name in enumerate(names):
        scores = report["per_class"][name]
        if scores["recall"] is None or scores["support"] == 0:
            continue
        astray = matrix[index].copy()
        astray[index] = 0
        other = int(astray.argmax()) if astray.any() else None
        rows.append(
            {
                "name": name,
                "recall": scores["recall"],
                "support": scores["support"],
                "confused_with": None if other is None else names[other],
                "confused_count": 0 if other is None else int(astray[other]),
            }
        )
    rows.sort(key=lambda row: (row["recall"], -row["support"]))
    return rows[:count]


def worst_recall_line(report: dict[str, Any], split: str = "test", count: int = WORST_SHOWN) -> str:
    """One console line naming the worst-recalled classes of ``split``, e.g. ``lowest test recall: on 70.8% of 24 (7
    taken for down), off 83.3% of 24 (3 taken for up), yes 95.8% of 24 (1 taken for no)``; empty when the split holds
    no class."""
    from edge.device.errors import printable

    rows = worst_recalled(report, count)
    if not rows:
        return ""
    parts = []
    for row in rows:
        taken = (
            f" ({row['confused_count']} taken for {printable(row['confused_with'])})" if row["confused_with"] else ""
        )
        parts.append(f"{printable(row['name'])} {row['recall']:.1%} of {row['support']}{taken}")
    return f"lowest {split} recall: " + ", ".join(parts)


def _number(value: Any) -> float | None:
    """A float for JSON; None for an undefined figure (NaN)."""
    value = float(value)
    return None if math.isnan(value) else value
