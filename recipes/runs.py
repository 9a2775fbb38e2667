"""The run directory: the one place that knows its file names, and reads and writes them.

:class:`Run` names every file of ``runs/train/<name>-<n>/`` and reads or writes each one; training writes a
run through it (into the staged folder), and export, benchmark, diagnose, tune and the tests read runs through
it. The functions below it are the shortcuts the commands use.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from edge.device.errors import UserError, first_line, printable
from edge.device.limits import MAX_MODEL_BYTES, MAX_ZIP_RATIO, zip_too_large
from recipes.config import TrainConfig, load_config
from recipes.diagnosis import Diagnosis
from recipes.rundir import write_atomic, write_json


class Run:
    """A run directory and its files (names relative to the run).

    Args:
        path: the run directory (or the staged folder training writes into).
    """

    MODEL = "model.keras"
    CONFIG = "config.yaml"
    HISTORY = "history.csv"
    METRICS = "metrics.json"
    DIAGNOSIS = "diagnosis.md"
    DATA = "data.json"
    SPLIT = "split.npz"
    INFO = "run.json"
    LEARNING_CURVES = "plots/learning_curves.png"
    LEARNING_RATE = "plots/learning_rate.png"
    CONFUSION_MATRIX = "plots/confusion_matrix_test.png"  # a classifier's or an anomaly detector's
    PREDICTED_VS_TRUE = "plots/predicted_vs_true_test.png"  # a regression's
    REPORT = "report.html"  # the page of the run (recipes/report_page.py), rewritten by export
    TENSORBOARD = "tensorboard"
    EDGE = "edge"
    EDGE_REPORT = "edge/report.json"
    EDGE_PLOTS = "edge/plots"
    # Every file a finished train run holds (tensorboard/ is a folder of event files; edge/ comes with export; a
    # regression has no confusion matrix).
    FILES = (
        MODEL,
        CONFIG,
        HISTORY,
        METRICS,
        DIAGNOSIS,
        DATA,
        SPLIT,
        INFO,
        LEARNING_CURVES,
        LEARNING_RATE,
        CONFUSION_MATRIX,
        REPORT,
    )

    @staticmethod
    def variant_confusion(variant: str) -> str:
        """The figure of the Keras model's test-split confusion matrix beside variant ``variant``'s, in the run."""
        return f"{Run.EDGE_PLOTS}/confusion_matrix_{variant}.png"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def require(self, *needed: str) -> Run:
        """This run, checked to be a run directory holding every file of ``needed``."""
        require_run(self.path, *needed)
        return self

    def has(self, name: str) -> bool:
        """Whether the run holds file ``name``."""
        return (self.path / name).is_file()

    # --- reading ---------------------------------------------------------------------------------------------

    def config(self) -> TrainConfig:
        """The resolved config the run was trained with."""
        return load_config(self.require(self.CONFIG) / self.CONFIG)

    def metrics(self) -> dict[str, Any]:
        """``metrics.json``."""
        return read_json(self.require(self.METRICS) / self.METRICS)

    def data(self) -> dict[str, Any]:
        """``data.json``: the data's name, kind, task, input shape, class and feature names, front end."""
        return read_json(self.require(self.DATA) / self.DATA)

    def info(self) -> dict[str, Any]:
        """``run.json`` (time, versions); empty when the run has none."""
        return read_json(self / self.INFO) if self.has(self.INFO) else {}

    def split(self) -> Any:
        """The split's indices (``split.npz``)."""
        from recipes.splitting import load_split

        return load_split(self.require(self.SPLIT) / self.SPLIT)

    def model(self) -> Any:
        """``model.keras``, loaded with Keras ``safe_mode=True`` (nothing is unpickled)."""
        return load_keras_file(self.require(self.MODEL) / self.MODEL)

    # --- writing (atomically) --------------------------------------------------------------------------------

    def write_text(self, name: str, text: str) -> Path:
        """Write one text file of the run."""
        return write_atomic(self / name, text)

    def write_json(self, name: str, data: Any) -> Path:
        """Write one JSON file of the run."""
        return write_json(self / name, data)

    def write_model(self, model: Any) -> None:
        """Save ``model.keras`` as a plain Keras model: the layers and weights without the training setup (loss,
        optimizer and its state), so that ``keras.saving.load_model(path)`` loads it in a Python that never imported
        this project (a regression's loss is the project's own class). Resuming reads the checkpoints, not this."""
        plain = type(model).from_config(model.get_config())  # keras.models.clone_model would compile it again
        plain.set_weights(model.get_weights())
        plain.save(self / self.MODEL)

    def write_split(self, split: Any) -> None:
        """Save ``split.npz``."""
        from recipes.splitting import save_split

        save_split(self / self.SPLIT, split)


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
    return Run(run_dir).config()


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """A run's ``metrics.json``."""
    return Run(run_dir).metrics()


def load_keras_file(path: Path) -> Any:
    """A ``.keras`` file the toolkit wrote (a run's model, a checkpoint), loaded with Keras ``safe_mode=True``.

    Raises:
        UserError: the file's zip declares more than :data:`edge.device.limits.MAX_MODEL_BYTES` uncompressed or an entry
            inflating more than :data:`edge.device.limits.MAX_ZIP_RATIO` times (checked before anything is inflated);
            the model holds code safe mode never runs (a ``Lambda`` layer); it uses a layer class neither Keras nor
            this toolkit defines; or the file is damaged.
    """
    import zipfile

    from recipes.backend import import_keras
    from recipes.tasks import register_losses

    retrain = "train again with 'python cli.py train'"
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError) as error:
        raise UserError(f"{path} cannot be loaded ({first_line(error)}); the run is damaged: {retrain}") from None
    refusal = zip_too_large(
        f"model file {path}",
        entries,
        MAX_MODEL_BYTES,
        f"it is not a model this toolkit wrote: {retrain}",
        MAX_ZIP_RATIO,
    )
    if refusal is not None:
        raise UserError(refusal)
    keras = import_keras()
    register_losses()  # a regression's loss is the project's own class
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for a damaged zip or config
        raise UserError(_keras_refusal(path, error, retrain)) from None


def _keras_refusal(path: Path, error: Exception, retrain: str) -> str:
    """The one line for a ``.keras`` file Keras would not load: code safe mode never runs, a class or function no one
    defines, or else a damaged file. Keras names the first two in its messages (as worded by Keras 3.15)."""
    text = " ".join(str(part) for part in (error, error.__context__) if part is not None)
    if "safe_mode" in text:
        what, fix = (
            ("a Lambda layer", "without a Lambda layer") if "`Lambda`" in text else ("a Python function", "without it")
        )
        return (
            f"{path} holds code ({what}), which is never run from a file (Keras safe mode); rebuild the model {fix}, "
            f"or {retrain}"
        )
    unknown = re.search(r"Could not locate (class|function) '([^']+)'", text) or re.search(
        r"Could not deserialize '()([^']+)' because it is not a KerasSaveable", text
    )
    if unknown is not None:
        kind = unknown.group(1) or "class"
        return (
            f"{path} uses the {kind} '{printable(unknown.group(2))}', which neither Keras nor this toolkit defines; "
            f"rebuild the model from built-in layers, or {retrain}"
        )
    return f"{path} cannot be loaded ({error.__class__.__name__}); the run is damaged: {retrain}"


def load_model(run_dir: str | Path) -> Any:
    """Load a run's ``model.keras`` with Keras ``safe_mode=True`` (nothing is unpickled)."""
    return Run(run_dir).model()


def diagnose_run(
    run_dir: str | Path, bayes_error: float = 0.0, tolerance: float | None = None
) -> tuple[Diagnosis, str]:
    """Diagnose a run from its metrics, as its task does, and rewrite its ``diagnosis.md`` (atomically).

    Args:
        run_dir: a train run.
        bayes_error: the optimal error estimate: an error rate, or a regression's RMSE in target units.
        tolerance: the gap that counts as high; None: the task's default.

    Returns:
        The diagnosis and the text written to ``diagnosis.md``.
    """
    from recipes.tasks import CLASSIFICATION, task_named

    run_dir = Path(run_dir)
    metrics = read_metrics(run_dir)
    name = metrics.get("task", CLASSIFICATION) if isinstance(metrics, dict) else CLASSIFICATION
    task = task_named(name if isinstance(name, str) else CLASSIFICATION)
    diagnosis = task.rediagnose(metrics, bayes_error, tolerance)
    text = task.markdown(diagnosis, metrics, f"Diagnosis of {run_dir.name}")
    Run(run_dir).write_text(Run.DIAGNOSIS, text)
    return diagnosis, text
