"""Shared by the edge tests (no tests here): one small trained run, exported once per test session.

Every ``tests/test_edge_*.py`` module asks :func:`exported_run` for the same run, so the whole edge
test set trains once (the default digits MLP, 50,826 parameters, 15 epochs, seed 0) and exports all
four variants once. Tests that write into a run work on a copy (:func:`copy_run`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.export import ExportReport, export_run
from edge.variants import VARIANTS
from recipes.config import resolve_config
from recipes.data import load_dataset
from recipes.runs import load_model
from recipes.splitting import load_split
from recipes.training import train


@dataclass
class ExportedRun:
    """The shared run, its export and the Keras model's view of the test split."""

    run_dir: Path
    report: ExportReport
    x_test: np.ndarray
    y_test: np.ndarray
    keras_outputs: np.ndarray
    parameters: int
    class_names: list[str]

    @property
    def edge_dir(self) -> Path:
        return self.run_dir / "edge"

    @property
    def keras_labels(self) -> list[str]:
        return [self.class_names[i] for i in self.keras_outputs.argmax(axis=1)]


_SHARED: dict[str, ExportedRun] = {}


def exported_run(tmp_path_factory) -> ExportedRun:
    """Train and export the shared run on first use; later calls return the same one."""
    if "run" not in _SHARED:
        root = tmp_path_factory.mktemp("edge-runs")
        result = train(resolve_config(None, {"epochs": 15, "out": str(root)}, []), report=None)
        report = export_run(result.run_dir, list(VARIANTS))
        model = load_model(result.run_dir)
        dataset = load_dataset("digits")
        test = load_split(result.run_dir / "split.npz").test
        x_test, y_test = dataset.x[test], dataset.y[test]
        _SHARED["run"] = ExportedRun(
            result.run_dir,
            report,
            x_test,
            y_test,
            np.asarray(model.predict(x_test, verbose=0)),
            result.parameters,
            dataset.class_names,
        )
    return _SHARED["run"]


def copy_run(run_dir: Path, destination: Path, with_edge: bool = False) -> Path:
    """Copy a run directory (without ``edge/`` unless asked) for tests that export into it."""
    skipped = ("tensorboard",) if with_edge else ("tensorboard", "edge")
    return Path(shutil.copytree(run_dir, destination, ignore=shutil.ignore_patterns(*skipped)))
