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
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from recipes.backend import import_keras
from recipes.config import TrainConfig, save_config, validate
from recipes.data import load_config_data
from recipes.dataset import Dataset
from recipes.diagnosis import Diagnosis
from recipes.errors import UserError
from recipes.layers import keras_module_or_default
from recipes.models import DataSpec, build_model
from recipes.normalization import normalization_statistics
from recipes.optimizers import make_optimizer
from recipes.records import RecordArray, batches, on_disk, read_rows, take
from recipes.rundir import check_writable, installed_versions, staged_run
from recipes.runs import Run
from recipes.schedules import learning_rate_at
from recipes.splitting import Split, split_fractions
from recipes.tasks import EVALUATION_BATCH, TASK_CHOICES, Task, choose_task, task_named

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
__all__ = ["EVALUATION_BATCH", "PreparedData", "compile_model", "fit_keras", "prepare_data", "train"]


@dataclass
class PreparedData:
    """A data set with its split, the model-facing description of it and its task (with the line announcing an
    automatic choice of task, if one was made)."""

    dataset: Dataset
    split: Split
    spec: DataSpec
    task: Task = task_named("classification")
    note: str | None = None

    def part(self, name: str) -> tuple[np.ndarray | RecordArray, np.ndarray]:
        """(x, y) of split part ``name`` ("train", "dev" or "test"); x is a lazy view when the features are read
        from disk (:func:`recipes.records.take`)."""
        indices = getattr(self.split, name)
        return take(self.dataset.x, indices), self.dataset.y[indices]

    def validation(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) that training watches each epoch: the dev split, as the task takes it (an anomaly detector
        watches its normal examples only)."""
        return self.task.validation(*self.part("dev"))


def prepare_data(config: TrainConfig, progress: Callable[[str], None] | None = None) -> PreparedData:
    """Load ``config.data``, choose the task, split (seeded, stratified) and compute training-split statistics
    (``progress``: called with progress lines of long steps, such as decoding a large folder)."""
    dataset = load_config_data(config, progress)
    task, note = choose_task(config, dataset)
    task.check_config(config)
    dataset = task.prepare(dataset, config)
    fractions = tuple(config.split) if config.split else split_fractions(len(dataset.y))
    split = task.split(dataset, fractions, config.seed)
    return PreparedData(dataset, split, data_spec(dataset, split, task), task, note)


def data_spec(dataset: Dataset, split: Split, task: Task) -> DataSpec:
    """What a builder needs to know about ``dataset``: shape, outputs, training-split statistics, task."""
    mean, variance = normalization_statistics(take(dataset.x, split.train))
    return DataSpec(
        dataset.input_shape,
        task.outputs(dataset),
        mean,
        variance,
        len(split.train),
        task.name,
        **task.spec_fields(dataset, split),
    )


def compile_model(model: Any, config: TrainConfig, task: Task, keras_module: ModuleType | None = None) -> Any:
    """Compile with the config's optimizer and the task's loss and metrics (``keras_module``: the model's Keras,
    e.g. tf_keras for compression's twin; Keras 3 by default)."""
    return task.compile(model, make_optimizer(config, keras_module), keras_module)


def batch_size_for(config: TrainConfig, num_train: int) -> int:
    """Examples per step: ``full`` (batch gradient descent) is the whole training split."""
    return num_train if config.batch_size == "full" else min(int(config.batch_size), num_train)


def _augmenter(config: TrainConfig, data: PreparedData) -> Callable[[Any], Any] | None:
    """The training-only augmentation for this data kind, or None when none is configured."""
    import keras
    import tensorflow as tf

    if data.dataset.kind == "image":
        layers = []
        if config.flip != "none":
            layers.append(keras.layers.RandomFlip(config.flip, seed=config.seed))
        if config.rotation > 0:
            layers.append(keras.layers.RandomRotation(config.rotation, seed=config.seed))
        if config.translation > 0:
            layers.append(keras.layers.RandomTranslation(config.translation, config.translation, seed=config.seed))
        if config.zoom > 0:
            layers.append(keras.layers.RandomZoom(config.zoom, seed=config.seed))
        if not layers:
            return None
        pipeline = keras.Sequential(layers)
        return lambda x: pipeline(x, training=True)
    steps: list[Callable[[Any], Any]] = []
    if data.dataset.kind == "timeseries" and len(data.spec.input_shape) == 2:
        steps += _window_augmentation(config, data)
    if config.noise_stddev > 0:
        # Noise in z-score units: scaled by each feature's training std, added to the raw input.
        scale = tf.constant(config.noise_stddev * np.sqrt(data.spec.variance), tf.float32)
        steps.append(lambda x: x + tf.random.normal(tf.shape(x), seed=config.seed) * scale)
    if not steps:
        return None

    def augment(x: Any) -> Any:
        for step in steps:
            x = step(x)
        return x

    return augment


def _window_augmentation(config: TrainConfig, data: PreparedData) -> list[Callable[[Any], Any]]:
    """Raw windows ``(batch, steps, channels)``: each scaled about the channels' training means by a factor in
    1 ± ``amplitude_scale``, and shifted in time by up to ``time_shift`` of its length (the edge sample repeated)."""
    import tensorflow as tf

    steps = []
    mean = tf.constant(np.asarray(data.spec.mean, np.float32))
    if config.amplitude_scale > 0:
        low, high = 1 - config.amplitude_scale, 1 + config.amplitude_scale

        def scale(x: Any) -> Any:
            factor = tf.random.uniform([tf.shape(x)[0], 1, 1], low, high, seed=config.seed)
            return mean + (x - mean) * factor

        steps.append(scale)
    length = int(data.spec.input_shape[0])
    shift = round(config.time_shift * length)
    if shift > 0:

        def move(x: Any) -> Any:
            offsets = tf.random.uniform([tf.shape(x)[0], 1], -shift, shift + 1, tf.int32, seed=config.seed)
            index = tf.clip_by_value(tf.range(length)[None, :] + offsets, 0, length - 1)
            return tf.gather(x, index, batch_dims=1)

        steps.append(move)
    return steps


def training_dataset(config: TrainConfig, data: PreparedData) -> Any:
    """Training batches as a ``tf.data`` pipeline, reshuffled every epoch, augmented if configured.

    Features in memory are shuffled whole; features on disk are shuffled as positions, and each batch's rows are
    read when the batch is (:class:`recipes.records.RecordArray`), so memory holds a few batches. Both draw the
    same seeded order, so the same examples meet in the same batches either way.
    """
    import tensorflow as tf

    x, y = data.part("train")
    batch = batch_size_for(config, len(y))
    if on_disk(x):
        labels = tf.constant(y)
        pipeline = tf.data.Dataset.range(len(y)).shuffle(len(y), seed=config.seed, reshuffle_each_iteration=True)
        pipeline = pipeline.batch(batch).map(
            lambda positions: (read_rows(x, positions), tf.gather(labels, positions)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        pipeline = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(
            len(y), seed=config.seed, reshuffle_each_iteration=True
        )
        pipeline = pipeline.batch(batch)
    augment = _augmenter(config, data)
    if augment is not None:
        pipeline = pipeline.map(lambda xb, yb: (augment(xb), yb), num_parallel_calls=tf.data.AUTOTUNE)
    return pipeline.prefetch(tf.data.AUTOTUNE)


def _callbacks(
    config: TrainConfig,
    validating: bool,
    log_dir: Path | None,
    report: Callable[[str], None] | None,
    keras_module: ModuleType | None = None,
    learning_rate: Callable[[int], float] | None = None,
    early_stopping: bool | None = None,
) -> list[Any]:
    """The recipe's callbacks: per-epoch learning-rate schedule, stop on NaN, early stopping on dev
    loss (when dev data are evaluated), TensorBoard and the progress line (when asked for)."""
    keras = keras_module_or_default(keras_module)
    callbacks = [
        keras.callbacks.LearningRateScheduler(learning_rate or (lambda epoch: learning_rate_at(config, epoch))),
        keras.callbacks.TerminateOnNaN(),
    ]
    if (config.early_stopping if early_stopping is None else early_stopping) and validating:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=config.patience,
                min_delta=config.min_delta,
                restore_best_weights=True,
            )
        )
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

    Returns:
        Keras's history (``loss``, ``val_loss``, ``learning_rate`` and the task's metrics, e.g. ``accuracy`` and
        ``val_accuracy``).
    """
    validating = len(data.split.dev) > 0
    validation = None
    if validating:
        x_dev, y_dev = data.validation()
        validation = batches(x_dev, y_dev, EVALUATION_BATCH) if on_disk(x_dev) else (x_dev, y_dev)
    return model.fit(
        training_dataset(config, data),
        validation_data=validation,
        validation_batch_size=EVALUATION_BATCH,
        epochs=epochs or config.epochs,
        initial_epoch=initial_epoch,
        shuffle=False,  # the pipeline reshuffles every epoch itself
        callbacks=[
            *_callbacks(config, validating, log_dir, report, keras_module, learning_rate, early_stopping),
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
) -> dict[str, list[float]]:
    """Train a compiled model with :func:`fit_keras`; a diverged loss is a user error.

    Returns:
        Per-epoch history with keys of :data:`HISTORY_COLUMNS` (dev instead of Keras's val).
    """
    history = fit_keras(model, config, data, log_dir=log_dir, report=report)
    losses = history.get("loss", [])
    if losses and not np.isfinite(losses[-1]):
        raise UserError(
            f"training diverged: the loss became {losses[-1]} in epoch {len(losses)}; "
            f"lower the learning rate (now {config.learning_rate:g}), "
            f"e.g. --learning-rate {config.learning_rate / 10:g}"
        )
    result = {new: [float(v) for v in history.get(old, [])] for old, new in DEV_NAMES.items()}
    result["epoch"] = list(range(1, len(losses) + 1))
    return result


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


def _versions() -> dict[str, str]:
    return installed_versions(("tensorflow", "keras", "numpy", "scikit-learn"))


def best_epoch(history: dict[str, list[float]], config: TrainConfig) -> int:
    """The epoch (1-based) whose weights the model ends with: with early stopping the last epoch that lowered the
    dev loss by more than ``min_delta`` (the weights Keras restores), else the last epoch."""
    kept, best = len(history["epoch"]), math.inf
    if not config.early_stopping or not history.get("dev_loss"):
        return kept
    for epoch, loss in enumerate(history["dev_loss"], 1):
        if loss < best - config.min_delta:  # Keras's improvement test, mode "min"
            kept, best = epoch, loss
    return kept


def train(config: TrainConfig, report: Callable[[str], None] | None = print) -> TrainResult:
    """Train ``config`` and write its run directory ``<out>/train/<name>-<n>/``.

    The run is staged in a hidden folder and renamed into place only when every file is written,
    so a failure leaves no run directory. Files: ``config.yaml``, ``model.keras``,
    ``history.csv``, ``metrics.json``, ``diagnosis.md``, ``plots/learning_curves.png``,
    ``plots/learning_rate.png``, ``tensorboard/``, plus ``data.json`` (classes, input shape),
    ``split.npz`` (the split's indices) and ``run.json`` (time, versions).

    Args:
        config: the training config (validated here).
        report: called with one line of progress at a time; None for silence.

    Returns:
        The run directory, metrics, diagnosis, epochs run, parameter count and wall time.
    """
    from recipes.plots import plot_learning_curves, plot_learning_rate

    say = report or (lambda line: None)
    validate(config)
    check_writable(config.out)  # before the data is loaded and TensorFlow imported
    started = time.perf_counter()
    data = prepare_data(config, report)
    if data.task.name in TASK_CHOICES:  # the run's config.yaml names the task auto chose, so a rerun repeats it
        config = dataclasses.replace(config, task=data.task.name)
    keras = import_keras(config.seed)
    model = compile_model(build_model(config, data.spec), config, data.task)
    sizes = data.split.sizes()
    for line in ([data.note] if data.note else []) + list(data.split.notes):
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
    say(
        f"model {config.recipe}: {model.count_params():,} parameters; up to {config.epochs} epochs, "
        f"batch {batch_size_for(config, sizes['train'])}, {config.optimizer} "
        f"lr {config.learning_rate:g} ({config.schedule} schedule)"
    )
    with staged_run(config.out, "train", config.run_name()) as staged:
        run = Run(staged.path)
        history = fit(model, config, data, run / Run.TENSORBOARD, report)
        metrics = evaluate(model, data)
        metrics["best_epoch"] = best_epoch(history, config)
        if metrics["best_epoch"] != len(history["epoch"]):
            say(
                f"restored the weights of epoch {metrics['best_epoch']} (lowest dev loss "
                f"{history['dev_loss'][metrics['best_epoch'] - 1]:.4f}): the figures below are that epoch's"
            )
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
                "front_end": data.dataset.front_end,
            },
        )
        run.write_split(data.split)
        plot_learning_curves(history, run / Run.LEARNING_CURVES, best_epoch=metrics["best_epoch"])
        plot_learning_rate(history["learning_rate"], run / Run.LEARNING_RATE)
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
