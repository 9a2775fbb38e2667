"""Reading a finished run directory back: its config, metrics, data, split and model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recipes.config import TrainConfig, load_config
from recipes.diagnosis import Diagnosis, diagnose_metrics
from recipes.errors import UserError
from recipes.rundir import write_atomic


def require_run(run_dir: str | Path, *needed: str) -> Path:
    """Check that ``run_dir`` is a run directory holding every file in ``needed``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(
            f"run directory {run_dir} does not exist; pass a folder written by "
            "'python cli.py train', e.g. runs/train/digits-mlp-1"
        )
    for name in needed:
        if not (run_dir / name).is_file():
            raise UserError(
                f"{run_dir} has no {name}: it is not a finished train run; train again with 'python cli.py train'"
            )
    return run_dir


def read_json(path: Path) -> Any:
    """Parse a JSON file of a run, with a clear error when it is damaged."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(
            f"{path} cannot be read ({error.__class__.__name__}); the run is damaged: train again"
        ) from None


def read_config(run_dir: str | Path) -> TrainConfig:
    """The resolved config a run was trained with."""
    return load_config(require_run(run_dir, "config.yaml") / "config.yaml")


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """A run's ``metrics.json``."""
    return read_json(require_run(run_dir, "metrics.json") / "metrics.json")


def load_model(run_dir: str | Path) -> Any:
    """Load a run's ``model.keras`` with Keras ``safe_mode=True`` (nothing is unpickled)."""
    path = require_run(run_dir, "model.keras") / "model.keras"
    from recipes.backend import import_keras

    keras = import_keras()
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for a damaged zip or config
        raise UserError(
            f"{path} cannot be loaded ({error.__class__.__name__}); the run is damaged: train again"
        ) from None


def diagnose_run(run_dir: str | Path, bayes_error: float = 0.0, tolerance: float = 0.02) -> Diagnosis:
    """Diagnose a run from its metrics and rewrite its ``diagnosis.md`` (atomically)."""
    run_dir = Path(run_dir)
    metrics = read_metrics(run_dir)
    if isinstance(metrics, dict) and metrics.get("task") == "anomaly":
        raise UserError(
            f"{run_dir} is an anomaly-detection run: bias/variance diagnosis is for classifiers; "
            "read its AUC and confusion in metrics.json and its diagnosis.md"
        )
    diagnosis = diagnose_metrics(metrics, bayes_error, tolerance)
    write_atomic(run_dir / "diagnosis.md", diagnosis.to_markdown(f"Diagnosis of {run_dir.name}"))
    return diagnosis
