"""The training run: data → split → z-score → model → fit → evaluate → run directory.

:func:`train` is what ``python cli.py train`` calls. TensorFlow is imported here, so the CLI
imports this module only inside the commands that train. What differs between a classifier, an
anomaly detector and a regression (labels, split, output layer, loss, metrics, diagnosis) is asked of
the run's task object (:mod:`recipes.tasks`), chosen from the config and the data.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from edge.device.errors import UserError
from recipes import checkpoints as run_checkpoints
from recipes.adaptive_defaults import adapt_to_data, steps_per_epoch
from recipes.backend import import_keras
from recipes.checkpoints import Plan
from recipes.config import TrainConfig, save_config, validate, weight_decay_of
from recipes.diagnosis import Diagnosis, training_findings
from recipes.early_stopping import keep_best, kept_epoch
from recipes.input_pipeline import PreparedData, batch_size_for, prepare_data, training_dataset
from recipes.layers import keras_module_or_default
from recipes.macs import leaf_layers
from recipes.models import build_model
from recipes.optimizers import make_optimizer
from recipes.records import batches, keras_inputs, on_disk
from recipes.rundir import check_writable, installed_versions, staged_run
from recipes.runs import Run
from recipes.schedules import learning_rate_at
from recipes.tasks import EVALUATION_BATCH, TASK_CHOICES, Task

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "mae", "dev_loss", "dev_accuracy", "dev_mae", "learning_rate")
# Keras's history names -> the run's (the dev split is what Keras calls validation data).
DEV_NAMES = {
    "loss": "loss",
    "accuracy": "accuracy",
    "mae": "mae",
    "val_loss": "dev_loss",
    "val_accuracy": "dev_accuracy",
    "val_mae": "dev_mae",
    "learning_rate": "learning_rate",
}
__all__ = ["EVALUATION_BATCH", "compile_model", "fit_keras", "train"]


def compile_model(model: Any, config: TrainConfig, task: Task, keras_module: ModuleType | None = None) -> Any:
    """Compile with the config's optimizer and the task's loss and metrics (``keras_module``: the model's Keras,
    e.g. tf_keras for compression's twin; Keras 3 by default)."""
    return task.compile(model, make_optimizer(config, keras_module), keras_module)


def _callbacks(
    config: TrainConfig,
    kept_by: dict[str, str],
    validating: bool,
    log_dir: Path | None,
    report: Callable[[str], None] | None,
    keras_module: ModuleType | None = None,
    learning_rate: Callable[[int], float] | None = None,
    early_stopping: bool | None = None,
) -> list[Any]:
    """The recipe's callbacks: per-epoch learning-rate schedule, stop on NaN, early stopping keeping the best epoch
    by ``kept_by`` (when dev data are evaluated; :mod:`recipes.early_stopping`), TensorBoard and the progress line
    (when asked for)."""
    keras = keras_module_or_default(keras_module)
    callbacks = [
        keras.callbacks.LearningRateScheduler(learning_rate or (lambda epoch: learning_rate_at(config, epoch))),
        keras.callbacks.TerminateOnNaN(),
    ]
    if (config.early_stopping if early_stopping is None else early_stopping) and validating:
        callbacks.append(keep_best(kept_by, int(config.patience), config.min_delta, keras))
    if log_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False, profile_batch=0))
    if report is not None:
        callbacks.append(_epoch_report(config.epochs, report))
    return callbacks


def _epoch_report(epochs: int, report: Callable[[str], None]) -> Any:
    """A Keras callback that reports one line per epoch: losses, accuracies, learning rate, time."""
    import keras

    class EpochReport(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            values = "  ".join(
                f"{label} {logs[key]:{form}}"
                for label, key, form in (
                    ("loss", "loss", ".4f"),
                    ("acc", "accuracy", ".4f"),
                    ("mae", "mae", ".4g"),
                    ("dev loss", "val_loss", ".4f"),
                    ("dev acc", "val_accuracy", ".4f"),
                    ("dev mae", "val_mae", ".4g"),
                    ("lr", "learning_rate", ".2e"),
                )
                if key in logs
            )
            report(
                f"epoch {epoch + 1:>{len(str(epochs))}}/{epochs}  {values}  {time.perf_counter() - self.started:.2f}s"
            )

    return EpochReport()


def fit_keras(
    model: Any,
    config: TrainConfig,
    data: PreparedData,
    *,
    epochs: int | None = None,
    initial_epoch: int = 0,
    callbacks: Sequence[Any] = (),
    log_dir: Path | None = None,
    report: Callable[[str], None] | None = None,
    keras_module: ModuleType | None = None,
    learning_rate: Callable[[int], float] | None = None,
    early_stopping: bool | None = None,
    checkpoints: Plan | None = None,
) -> dict[str, list[float]]:
    """The project's one ``model.fit`` call: a compiled recipe model on ``data``'s training split.

    Used by :func:`fit` (train), tuner trials, the scikit-learn estimator and compression's fine-tuning
    alike: the recipe's ``tf.data`` pipeline (batch size, per-epoch shuffle, augmentation), its learning-rate
    schedule, stop on NaN, and early stopping on dev loss with the best weights restored.

    Args:
        model: a compiled model from ``build_model`` + :func:`compile_model`.
        config: the config it was built from.
        data: the prepared data; its dev split (if not empty; see ``PreparedData.validation``) is
            evaluated every epoch.
        epochs: the epoch to stop after. Defaults to ``config.epochs``.
        initial_epoch: the epoch to start from (Hyperband continues a model). Defaults to 0.
        callbacks: callbacks run after the recipe's own (e.g. keras-tuner's).
        log_dir: TensorBoard folder, or None.
        report: called with one progress line per epoch, or None.
        keras_module: the model's Keras (tf_keras for compression's twin); Keras 3 by default.
        learning_rate: the rate of each epoch (0-based) instead of the config's schedule.
        early_stopping: overrides ``config.early_stopping`` (compression fine-tunes a fixed number of epochs).
        checkpoints: where and how often to write checkpoints for ``train --resume``, and the checkpoint a resumed
            run continues (its early-stopping state is restored); None writes none.

    Returns:
        Keras's history (``loss``, ``val_loss``, ``learning_rate`` and the task's metrics, e.g. ``accuracy`` and
        ``val_accuracy``).
    """
    import tensorflow as tf

    keras = keras_module_or_default(keras_module)
    config, _ = adapt_to_data(config, len(data.split.train))
    epoch = tf.Variable(initial_epoch, dtype=tf.int64, trainable=False)
    validating = len(data.split.dev) > 0
    validation = None
    if validating:
        x_dev, y_dev = data.validation()
        validation = batches(x_dev, y_dev, EVALUATION_BATCH) if on_disk(x_dev) else (x_dev, y_dev)
    recipe_callbacks = _callbacks(
        config, data.task.kept_by, validating, log_dir, report, keras_module, learning_rate, early_stopping
    )
    if checkpoints is not None:
        stopper = next((c for c in recipe_callbacks if hasattr(c, "kept_by")), None)
        callbacks = [*checkpoints.callbacks(stopper, DEV_NAMES), *callbacks]
    return model.fit(
        training_dataset(config, data, epoch),
        validation_data=validation,
        validation_batch_size=EVALUATION_BATCH,
        epochs=epochs or config.epochs,
        initial_epoch=initial_epoch,
        shuffle=False,  # the pipeline reshuffles every epoch itself
        callbacks=[
            keras.callbacks.LambdaCallback(on_epoch_begin=lambda number, logs: epoch.assign(number)),
            *recipe_callbacks,
            *callbacks,
        ],
        verbose=0,
    ).history


def fit(
    model: Any,
    config: TrainConfig,
    data: PreparedData,
    log_dir: Path | None = None,
    report: Callable[[str], None] | None = None,
    checkpoints: Plan | None = None,
) -> dict[str, list[float]]:
    """Train a compiled model with :func:`fit_keras`; a diverged loss is a user error.

    Args:
        checkpoints: checkpointing for ``--resume`` and the checkpoint a resumed run continues from (its model is
            ``model``); the history then starts with the checkpoint's rows.

    Returns:
        Per-epoch history with keys of :data:`HISTORY_COLUMNS` (dev instead of Keras's val).
    """
    initial_epoch = 0 if checkpoints is None else checkpoints.initial_epoch
    history = fit_keras(
        model, config, data, initial_epoch=initial_epoch, log_dir=log_dir, report=report, checkpoints=checkpoints
    )
    if checkpoints is not None:
        history = {old: checkpoints.history.get(new, []) + history.get(old, []) for old, new in DEV_NAMES.items()}
    losses = history.get("loss", [])
    if losses and not np.isfinite(losses[-1]):
        raise UserError(
            f"training diverged: the loss became {losses[-1]} in epoch {len(losses)}; "
            + divergence_fix(config, data.spec.num_train_examples)
        )
    result = {new: [float(v) for v in history.get(old, [])] for old, new in DEV_NAMES.items()}
    result["epoch"] = list(range(1, len(losses) + 1))
    return result


def divergence_fix(config: TrainConfig, num_train_examples: int) -> str:
    """What to change after training diverged: the regularization when it is the likely cause, else the learning
    rate.

    The penalty is c·Σw² with c = l2/(2m) + weight_decay (m = ``num_train_examples``) and c1·Σ|w| with c1 = l1/(2m).
    It is the likely cause when c or c1 is 1 or more: a cost of 1 per unit of weight swamps the data loss (a
    cross-entropy starts near ln(classes)), and it is what overflows. Measured on digits (1,078 training examples):
    Adam at learning rate 1e-3 trains with l2 1e9 (c ≈ 5e5) and diverges with l2 or l1 1e30, where the penalty's
    gradients overflow; plain SGD at 1e-2 diverges with l2 1e6 (c ≈ 464), as each step scales every weight by
    1 − 2·rate·c. A larger learning rate only makes a smaller penalty diverge, and then lowering either helps.

    The value suggested is a power of ten, a tenth of where the rule starts or less: at most 1 for l2 and l1, and
    1e-4, the MLPerf Tiny references' value, for weight_decay.
    """
    m = max(int(num_train_examples), 1)
    decay = weight_decay_of(config)
    l2, l1 = config.l2 / (2 * m), config.l1 / (2 * m)
    start = 2.0 * m  # l2 or l1 at which c or c1 reaches 1
    if l2 + decay >= 1.0 and l2 >= decay:
        name, value, usual = "l2", config.l2, 1.0
        what = f"over {m:,} training examples it adds {l2:.3g} times each squared weight to the loss (l2/(2m))"
    elif l2 + decay >= 1.0:
        name, value, usual, start = "weight_decay", decay, 1e-4, 1.0
        what = f"it adds {decay:g} times each squared weight to the loss"
    elif l1 >= 1.0:
        name, value, usual = "l1", config.l1, 1.0
        what = f"over {m:,} training examples it adds {l1:.3g} times each weight's size to the loss (l1/(2m))"
    else:
        rate = config.learning_rate
        return f"lower the learning rate (now {rate:g}), e.g. --learning-rate {rate / 10:g}"
    suggestion = min(usual, 10.0 ** math.floor(math.log10(start / 10)))
    return (
        f"{name} {value:g} is too strong: {what}, which swamps the data loss (from {name} {start:.3g} on); "
        f"lower {name}, e.g. --set {name}={suggestion:g}"
    )


def evaluate(model: Any, data: PreparedData) -> dict[str, Any]:
    """The task's metrics of each split (``metrics.json``): the loss with the regularization term, then accuracy,
    an anomaly detector's AUC and threshold, or a regression's MAE, RMSE and R²; and the split sizes."""
    return data.task.evaluate(model, data)


def history_csv(history: dict[str, list[float]]) -> str:
    """The history as CSV text, one row per epoch, the columns of :data:`HISTORY_COLUMNS` it has."""
    columns = [column for column in HISTORY_COLUMNS if history.get(column)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in zip(*(history[column] for column in columns), strict=False):
        writer.writerow([repr(value) if isinstance(value, float) else value for value in row])
    return buffer.getvalue()


@dataclass
class TrainResult:
    """What a finished training run produced."""

    run_dir: Path
    metrics: dict[str, Any]
    diagnosis: Diagnosis | None  # None for anomaly detection (see recipes.anomaly.diagnosis_markdown)
    task: Task
    epochs_run: int
    parameters: int
    seconds: float
    model: Any = None


def _plain(config: TrainConfig) -> dict[str, Any]:
    """The config as JSON-able data (what a checkpoint records and a resume compares)."""
    return json.loads(json.dumps(config.to_dict()))


def _checkpoint_to_resume(root: Path, config: TrainConfig, resume: bool) -> run_checkpoints.Checkpoint | None:
    """The checkpoint ``resume`` continues; a one-line refusal when there is none to resume, when a new run would
    start over an interrupted one, or when the settings differ from the interrupted run's."""
    checkpoint = run_checkpoints.read(root)
    if checkpoint is None:
        if resume:
            raise UserError(
                f"there is no checkpoint of a run named {config.run_name()} under {config.out} to resume (a run "
                f"stopped before its first checkpoint, written every {config.checkpoint_seconds:g} s, leaves none); "
                "give the --name and --out of the run that stopped, or drop --resume to train from the start"
            )
        return None
    if not resume:
        raise UserError(
            f"an interrupted run named {config.run_name()} can be resumed ({run_checkpoints.describe(root, checkpoint)}"
            "); add --resume to continue it, or delete that folder to start over"
        )
    run_checkpoints.check_resumable(checkpoint, _plain(config), root)
    return checkpoint


def _versions() -> dict[str, str]:
    return installed_versions(("tensorflow", "keras", "numpy", "scikit-learn"))


def best_epoch(history: dict[str, list[float]], config: TrainConfig, task: Task) -> int:
    """The epoch (1-based) whose weights the model ends with: with early stopping the best epoch by the task's
    measures (:func:`recipes.early_stopping.kept_epoch`), else the last epoch."""
    if not config.early_stopping or not history.get("dev_loss"):
        return len(history["epoch"])
    return kept_epoch(history, task.kept_by, config.min_delta)


def _kept_because(history: dict[str, list[float]], metrics: dict[str, Any], task: Task) -> str:
    """Why the kept epoch was kept: ``highest dev accuracy 0.9630, dev loss 0.1234`` or ``lowest dev loss 0.1234``."""
    index = metrics["best_epoch"] - 1
    words = {"max": "highest", "min": "lowest"}
    parts = []
    for number, (name, direction) in enumerate(task.kept_by.items()):
        column = history.get(name.replace("val_", "dev_"), [])
        if index < len(column):
            label = name.replace("val_", "dev ")
            value = f"{label} {column[index]:.4f}"
            parts.append(f"{words[direction]} {value}" if number == 0 else value)
    return ", ".join(parts)


def train(config: TrainConfig, report: Callable[[str], None] | None = print, resume: bool = False) -> TrainResult:
    """Train ``config`` and write its run directory ``<out>/train/<name>-<n>/``.

    The run is staged in a hidden folder and renamed into place only when every file is written,
    so a failure leaves no run directory. Files: ``config.yaml``, ``model.keras``,
    ``history.csv``, ``metrics.json``, ``diagnosis.md``, ``plots/learning_curves.png``,
    ``plots/learning_rate.png``, ``plots/confusion_matrix_test.png`` (a classifier's or anomaly detector's),
    ``tensorboard/``, plus ``data.json`` (classes, input shape), ``split.npz`` (the split's indices), ``run.json``
    (time, versions) and ``report.html``, the run's page (:mod:`recipes.report_page`).

    While it trains, a checkpoint is kept under ``<out>/train/.<name>.resume/`` (:mod:`recipes.checkpoints`), so
    that ``resume=True`` continues an interrupted run of the same name from its last checkpoint; it is removed
    when the run is complete. A new run whose name has an interrupted run waiting is refused.

    Args:
        config: the training config (validated here).
        report: called with one line of progress at a time; None for silence.
        resume: continue the interrupted run of this name instead of starting one.

    Returns:
        The run directory, metrics, diagnosis, epochs run, parameter count and wall time.
    """
    from recipes.plots import plot_confusion_matrix, plot_learning_curves, plot_learning_rate, plot_predicted_vs_true
    from recipes.report_page import write_report

    say = report or (lambda line: None)
    validate(config)
    check_writable(config.out)  # before the data is loaded and TensorFlow imported
    root = run_checkpoints.folder_for(config.out, config.run_name())
    requested = _plain(config)  # as given: the task still "auto" if so, as a rerun would give it
    resumed = _checkpoint_to_resume(root, config, resume)
    started = time.perf_counter()
    data = prepare_data(config, report)
    if data.task.name in TASK_CHOICES:  # the run's config.yaml names the task auto chose, so a rerun repeats it
        config = dataclasses.replace(config, task=data.task.name)
    config, adapted = adapt_to_data(config, len(data.split.train))  # config.yaml holds the values chosen
    keras = import_keras(config.seed)
    if resumed is not None:
        model = resumed.model()
        say(f"resuming {config.run_name()} {run_checkpoints.describe(root, resumed)}")
    else:
        model = compile_model(build_model(config, data.spec), config, data.task)
    plan = Plan(root, requested, config.checkpoint_seconds, resumed)
    sizes = data.split.sizes()
    for line in list(data.dataset.notes) + ([data.note] if data.note else []) + list(data.split.notes):
        say(line)
    learns = (
        f"{data.dataset.num_classes} classes"
        if data.dataset.class_names
        else f"{data.spec.num_classes} numeric target(s) ({', '.join(data.dataset.target_names or [])})"
    )
    say(
        f"data {data.dataset.name}: {len(data.dataset.y)} examples, {learns}, "
        f"input {data.dataset.input_shape}; split train {sizes['train']} / dev {sizes['dev']} / test {sizes['test']}"
    )
    if adapted:
        say(adapted)
    say(
        f"model {config.recipe}: {model.count_params():,} parameters; up to {config.epochs} epochs, "
        f"batch {batch_size_for(config, sizes['train'])}, {config.optimizer} "
        f"lr {config.learning_rate:g} ({config.schedule} schedule)"
    )
    with staged_run(config.out, "train", config.run_name()) as staged:
        run = Run(staged.path)
        history = fit(model, config, data, run / Run.TENSORBOARD, report, plan)
        metrics = evaluate(model, data)
        metrics["best_epoch"] = best_epoch(history, config, data.task)
        if metrics["best_epoch"] != len(history["epoch"]):
            say(
                f"restored the weights of epoch {metrics['best_epoch']} ({_kept_because(history, metrics, data.task)}"
                "): the figures below are that epoch's"
            )
        findings = training_findings(
            history,
            metrics,
            metrics["best_epoch"],
            batch_norm=any(isinstance(layer, keras.layers.BatchNormalization) for layer in leaf_layers(model)),
            batch_norm_momentum=float(config.batch_norm_momentum),
            steps_per_epoch=steps_per_epoch(sizes["train"], batch_size_for(config, sizes["train"])),
            learning_rate=config.learning_rate,
        )
        if findings:
            metrics["findings"] = findings
        for item in findings:
            say(f"note: {item['finding']}: {item['remedy']}")
        diagnosis, diagnosis_text = data.task.diagnose(metrics, config, f"Diagnosis of {config.run_name()}")
        run.write_model(model)
        run.write_text(Run.CONFIG, save_config(config))
        run.write_text(Run.HISTORY, history_csv(history))
        run.write_json(Run.METRICS, metrics)
        run.write_text(Run.DIAGNOSIS, diagnosis_text)
        run.write_json(
            Run.DATA,
            {
                "name": data.dataset.name,
                "source": config.data,
                "kind": data.dataset.kind,
                "task": data.task.name,
                "input_shape": list(data.dataset.input_shape),
                **data.task.data_fields(data.dataset),
                "feature_names": data.dataset.feature_names,
                "examples": len(data.dataset.y),
                "stratified": data.split.stratified,
                "recordings": None if data.dataset.groups is None else len(data.dataset.group_names or []),
                "windows_dropped": data.dataset.windows_dropped,
                **data.dataset.changes,
                "front_end": data.dataset.front_end,
            },
        )
        run.write_split(data.split)
        plot_learning_curves(history, run / Run.LEARNING_CURVES, best_epoch=metrics["best_epoch"])
        plot_learning_rate(history["learning_rate"], run / Run.LEARNING_RATE)
        classes = metrics["test"].get("classes")
        if classes:
            matrix, names = classes["confusion_matrix"], classes["names"]
            plot_confusion_matrix(matrix, names, run / Run.CONFUSION_MATRIX, "Confusion matrix, test split")
        elif data.task.name == "regression" and len(data.split.test):
            x_test, y_test = data.part("test")
            predicted = model.predict(**keras_inputs(x_test), verbose=0)
            plot_predicted_vs_true(y_test, predicted, data.dataset.target_names or [], run / Run.PREDICTED_VS_TRUE)
        seconds = time.perf_counter() - started
        run.write_json(
            Run.INFO,
            {
                "command": "train",
                "seconds": round(seconds, 3),
                "epochs_run": len(history["epoch"]),
                "parameters": int(model.count_params()),
                "versions": _versions(),
                "keras_backend": keras.backend.backend(),
            },
        )
        write_report(run.path, config.run_name())
    run_checkpoints.remove(root)  # the run is complete
    return TrainResult(
        staged.final_path,
        metrics,
        diagnosis,
        data.task,
        len(history["epoch"]),
        int(model.count_params()),
        seconds,
        model,
    )
