"""What the device side knows of each task, in one row per task (keyed like :data:`recipes.tasks.TASKS`).

A row names, as ``"module:function"`` (resolved when used, so this module imports nothing and the device package
never imports the export's code), how ``predict`` turns a model's outputs into what it prints, how the TFLite
Micro check decides that two outputs answer alike, and how the export measures a variant's parity with Keras
(:mod:`edge.parity`, on the training machine only). Each variant's tolerance for the task is on its row of
:data:`edge.variants.VARIANTS`; the manifest's ``task`` names the row. Adding a task on the edge side is adding a
row here and its three functions.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DeviceTask:
    """One task as the edge side handles it.

    Args:
        name: the task's name, as in ``recipes.tasks.TASKS`` and the manifest's ``task``.
        outputs: what the model outputs: ``"probabilities"``, ``"score"`` (with a threshold) or ``"values"``.
        predict: ``(model, x, k) -> list`` of what ``predict`` prints per example.
        agrees: ``(model, outputs, expected) -> bool array``: per example, whether two raw output rows answer alike.
        parity: ``(model, variant, x, y, keras_outputs, threshold) -> parity``: a variant against Keras.
    """

    name: str
    outputs: str
    predict: str
    agrees: str
    parity: str

    def function(self, role: str) -> Callable[..., Any]:
        """The function behind ``role`` (``"predict"``, ``"agrees"`` or ``"parity"``), imported now."""
        module, function = getattr(self, role).split(":")
        return getattr(importlib.import_module(module), function)


TASKS: dict[str, DeviceTask] = {
    task.name: task
    for task in (
        DeviceTask(
            "classification",
            "probabilities",
            "edge.device.predictions:top_classes",
            "edge.device.predictions:same_class",
            "edge.parity:measure_parity",
        ),
        DeviceTask(
            "anomaly",
            "score",
            "edge.device.predictions:anomaly_scores",
            "edge.device.predictions:same_decision",
            "edge.parity:measure_anomaly_parity",
        ),
        DeviceTask(
            "regression",
            "values",
            "edge.device.predictions:regression_values",
            "edge.device.predictions:same_values",
            "edge.parity:measure_regression_parity",
        ),
    )
}
