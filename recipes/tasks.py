"""What a model learns, one object per task: classification, anomaly detection and regression.

A task owns every step that differs between them: the labels it accepts, the split, the output layer and the
loss, the metrics of ``metrics.json`` and the learning curves, the data training watches each epoch, the
evaluation, the diagnosis, and the tuning objectives it offers. Training, tuning and export ask the task instead
of testing its name; adding a task is adding a class here (and its parity and output reading in ``edge``).

Which task a run has: the autoencoder recipe detects anomalies; otherwise ``--task`` (config key ``task``) says
``classification`` or ``regression``, and ``auto`` (the default) picks regression when the label is numeric and
holds many distinct values (:func:`looks_continuous`), saying so in one line. A classification whose classes
would mostly hold one or two examples is refused with a line suggesting ``--task regression``.

This module imports no TensorFlow (Keras is imported inside the methods that build or compile).
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.device.errors import UserError, unknown_choice
from recipes import anomaly
from recipes.class_metrics import class_report, worst_recall_line
from recipes.dataset import Dataset
from recipes.diagnosis import Diagnosis, diagnose, diagnose_metrics, with_early_stopping, with_findings
from recipes.records import EVALUATION_BATCH, keras_inputs, take
from recipes.registry import recipe_named
from recipes.splitting import Split, anomaly_split, group_split, split_indices

if TYPE_CHECKING:
    from recipes.config import TrainConfig
    from recipes.layers import DataSpec

AUTO = "auto"
CLASSIFICATION, ANOMALY, REGRESSION = "classification", "anomaly", "regression"
TASK_CHOICES = (AUTO, CLASSIFICATION, REGRESSION)  # anomaly detection comes with its recipe (autoencoder)
# auto picks regression for a numeric label with more than this many distinct values, and more than this share
# of the rows: a class label rarely has 21 values, and 21 classes of a 400-row table would hold 5% each at most.
CONTINUOUS_MIN_DISTINCT = 20
CONTINUOUS_MIN_SHARE = 0.05
FEW_EXAMPLES = 2  # a class with at most this many examples cannot be learned and judged on dev and test
CALIBRATION_BINS = 10  # a regression's int8 calibration and split are stratified by deciles of the target


class Task:
    """The behaviour shared by every task; each subclass overrides what differs.

    Attributes:
        name: the task's name in ``data.json``, ``metrics.json`` and the manifest.
        history_metrics: what Keras reports per epoch besides the loss (``history.csv``, the curves).
        objectives: tuning objectives it offers, name → ``"min"``/``"max"``, the default first.
        noun: what a model of this task is called in messages, with its article.
        strata_name: what :meth:`strata` groups examples by, for reports.
        kept_by: what early stopping keeps the best epoch by, name → ``"max"``/``"min"``, compared in order
            (:mod:`recipes.early_stopping`).
    """

    name = ""
    noun = ""
    strata_name = "by class"
    history_metrics: tuple[str, ...] = ()
    objectives: dict[str, str] = {"val_loss": "min"}
    kept_by: dict[str, str] = {"val_loss": "min"}

    # --- data ------------------------------------------------------------------------------------------
    def check_config(self, config: TrainConfig) -> None:
        """Refuse config values that make no sense for this task, before any data is loaded."""

    def prepare(self, dataset: Dataset, config: TrainConfig) -> Dataset:
        """The data set with the labels this task learns (``y``)."""
        return dataset

    def split(self, dataset: Dataset, fractions: tuple[float, ...], seed: int) -> Split:
        """Train, dev and test indices (seeded), stratified by :meth:`strata`; windows of a stream keep each
        recording in one part."""
        if dataset.groups is not None:
            return group_split(self.strata(dataset.y), dataset.groups, fractions, seed)
        return split_indices(self.strata(dataset.y), fractions, seed)

    def validation(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The part of the dev split training watches each epoch: all of it."""
        return x, y

    def outputs(self, dataset: Dataset) -> int:
        """Values the model outputs per example."""
        return dataset.num_classes

    def spec_fields(self, dataset: Dataset, split: Split) -> dict[str, Any]:
        """Extra :class:`recipes.layers.DataSpec` fields (a regression's target statistics)."""
        return {}

    def data_fields(self, dataset: Dataset) -> dict[str, Any]:
        """What ``data.json`` records about the labels."""
        return {"class_names": dataset.class_names}

    def strata(self, y: np.ndarray) -> np.ndarray:
        """One group per example for a stratified draw (int8 calibration): the class."""
        return np.asarray(y).reshape(-1)

    # --- model ------------------------------------------------------------------------------------------
    def output_layer(self, keras: ModuleType, x: Any, config: TrainConfig, spec: DataSpec) -> Any:
        """The model's last layer(s) on the features ``x``."""
        raise UserError(f"the {self.name} task has no dense output layer; use its own recipe")

    def compile(self, model: Any, optimizer: Any, keras_module: ModuleType | None = None) -> Any:
        """Compile ``model`` with this task's loss and metrics."""
        raise NotImplementedError

    # --- results ----------------------------------------------------------------------------------------
    def evaluate(self, model: Any, data: Any) -> dict[str, Any]:
        """The metrics of each split (``metrics.json``), from the prepared data ``data``."""
        raise NotImplementedError

    def metric_columns(self, metrics: dict[str, Any]) -> list[tuple[str, str]]:
        """(column title, key) of each split's metrics in the console table, after the loss."""
        return [("accuracy", "accuracy")]

    def diagnose(self, metrics: dict[str, Any], config: TrainConfig, title: str) -> tuple[Diagnosis | None, str]:
        """The diagnosis (None when none applies) and the text of ``diagnosis.md``."""
        raise NotImplementedError

    def rediagnose(self, metrics: dict[str, Any], bayes_error: float, tolerance: float | None) -> Diagnosis:
        """The diagnosis of a finished run's metrics, with another optimal-error estimate or tolerance."""
        raise NotImplementedError

    def markdown(self, diagnosis: Diagnosis, metrics: dict[str, Any], title: str) -> str:
        """The text of ``diagnosis.md``."""
        return diagnosis.to_markdown(title)

    def summary_line(self, metrics: dict[str, Any], diagnosis: Diagnosis | None) -> str:
        """One console line after training."""
        return f"diagnosis: {diagnosis.summary_line()}" if diagnosis is not None else ""

    def class_line(self, metrics: dict[str, Any]) -> str:
        """One console line under the split table naming the test split's worst-recalled classes (empty for a task
        without classes, or a run whose metrics hold no per-class results)."""
        report = metrics.get("test", {}).get("classes") if isinstance(metrics.get("test"), dict) else None
        return worst_recall_line(report) if report else ""

    def check_objective(self, objective: str | None) -> str:
        """``objective``, or this task's default; refused when this task's training does not report it."""
        if objective is None:
            return next(iter(self.objectives))
        if objective not in self.objectives:
            raise UserError(
                f"{self.noun} reports no {objective} while it trains; use --objective " + " or ".join(self.objectives)
            )
        return objective


class Classification(Task):
    """Class labels: softmax over the classes, cross-entropy, accuracy, the bias/variance diagnosis on error."""

    name = CLASSIFICATION
    noun = "a classifier"
    history_metrics = ("accuracy",)
    objectives = {"val_accuracy": "max", "val_loss": "min"}
    kept_by = {"val_accuracy": "max", "val_loss": "min"}

    def check_config(self, config: TrainConfig) -> None:
        if not 0.0 <= config.bayes_error < 1.0:
            raise UserError(
                f"bayes_error of a classifier is an error rate in [0, 1), got {config.bayes_error:g}; e.g. 0.05"
            )

    def prepare(self, dataset: Dataset, config: TrainConfig) -> Dataset:
        if dataset.targets is not None and dataset.targets.shape[1] > 1:
            raise UserError(
                f"--label {config.label} names {dataset.targets.shape[1]} columns: several outputs are a "
                "regression; pass --task regression, or one --label to classify"
            )
        counts = np.bincount(dataset.y, minlength=dataset.num_classes)
        rare = int(np.sum(counts <= FEW_EXAMPLES))
        if dataset.num_classes > FEW_EXAMPLES and rare > dataset.num_classes / 2:
            numeric = " (numbers: it looks continuous; pass --task regression)" if dataset.targets is not None else ""
            raise UserError(
                f"the label '{config.label}' has {dataset.num_classes} distinct values in {len(dataset.y)} rows and "
                f"{rare} of them have at most {FEW_EXAMPLES} examples{numeric}: a classifier cannot learn or judge "
                "such classes; predict a number with --task regression, or merge the labels into fewer classes"
            )
        return dataset

    def output_layer(self, keras: ModuleType, x: Any, config: TrainConfig, spec: DataSpec) -> Any:
        from recipes.layers import initializer_for, kernel_regularizer

        return keras.layers.Dense(
            spec.num_classes,
            activation="softmax",
            kernel_initializer=initializer_for(config, "linear", keras),
            kernel_regularizer=kernel_regularizer(config, spec, keras),
            name="probabilities",
        )(x)

    def compile(self, model: Any, optimizer: Any, keras_module: ModuleType | None = None) -> Any:
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def evaluate(self, model: Any, data: Any) -> dict[str, Any]:
        """Per split the loss (regularization included), the accuracy, and the per-class results of the predicted
        classes (:func:`recipes.class_metrics.class_report`: precision, recall, F1, support, the confusion matrix)."""
        metrics: dict[str, Any] = {"task": self.name}
        for part in ("train", "dev", "test"):
            x, y = data.part(part)
            scores = model.evaluate(**keras_inputs(x, y, EVALUATION_BATCH), verbose=0, return_dict=True)
            predicted = np.asarray(model.predict(**keras_inputs(x), verbose=0)).argmax(axis=-1)
            metrics[part] = {
                "loss": float(scores["loss"]),
                "accuracy": float(scores["accuracy"]),
                "classes": class_report(y, predicted, data.dataset.class_names),
            }
        metrics["split"] = data.split.sizes()
        return metrics

    def diagnose(self, metrics: dict[str, Any], config: TrainConfig, title: str) -> tuple[Diagnosis | None, str]:
        diagnosis = self.rediagnose(metrics, config.bayes_error, None)
        if config.early_stopping:
            diagnosis = with_early_stopping(diagnosis)
        return diagnosis, diagnosis.to_markdown(title)

    def rediagnose(self, metrics: dict[str, Any], bayes_error: float, tolerance: float | None) -> Diagnosis:
        diagnosis = diagnose_metrics(metrics, bayes_error, 0.02 if tolerance is None else tolerance)
        return with_findings(diagnosis, metrics.get("findings") or [])


class AnomalyDetection(Task):
    """Normal against anomalous examples (:mod:`recipes.anomaly`): trained on normal examples only, its one output
    the anomaly score, a threshold chosen on dev, judged by AUC and the confusion; no bias/variance diagnosis."""

    name = ANOMALY
    noun = "an anomaly detector"

    def prepare(self, dataset: Dataset, config: TrainConfig) -> Dataset:
        return anomaly.binary_labels(dataset, config.normal_class)

    def split(self, dataset: Dataset, fractions: tuple[float, ...], seed: int) -> Split:
        if dataset.groups is not None:  # its normal-only training split is not dealt by recording (yet)
            raise UserError(
                "anomaly detection on the windows of a stream is not supported: its split would put windows of one "
                "recording on both sides; train a classifier of normal and faulty recordings instead"
            )
        return anomaly_split(dataset.y, fractions, seed)

    def validation(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The dev split's normal examples only: their mean score is the same loss as the training loss."""
        normal = np.flatnonzero(y == anomaly.NORMAL)
        return take(x, normal), y[normal]

    def outputs(self, dataset: Dataset) -> int:
        return 1

    def compile(self, model: Any, optimizer: Any, keras_module: ModuleType | None = None) -> Any:
        """The model outputs its score and trains on normal examples, whose label is 0: the mean absolute error
        against the label is then the mean score, the reconstruction loss."""
        model.compile(optimizer=optimizer, loss="mean_absolute_error")
        return model

    def evaluate(self, model: Any, data: Any) -> dict[str, Any]:
        """Anomaly scores of each split, the threshold chosen on dev, and each split's loss (on its normal
        examples, regularization included) with :func:`recipes.anomaly.split_metrics` and the per-class results of
        the decisions at the threshold (normal against anomaly, :func:`recipes.class_metrics.class_report`)."""
        scores = {
            part: np.asarray(model.predict(**keras_inputs(data.part(part)[0]), verbose=0)).reshape(-1)
            for part in ("train", "dev", "test")
        }
        threshold = anomaly.choose_threshold(scores["dev"], data.part("dev")[1])
        metrics: dict[str, Any] = {"task": self.name, "threshold": threshold, "threshold_rule": anomaly.THRESHOLD_RULE}
        for part in ("train", "dev", "test"):
            x, y = data.part(part)
            normal = np.flatnonzero(y == anomaly.NORMAL)
            loss = model.evaluate(
                **keras_inputs(take(x, normal), y[normal], EVALUATION_BATCH), verbose=0, return_dict=True
            )
            metrics[part] = {
                "loss": float(loss["loss"]),
                **anomaly.split_metrics(scores[part], y, threshold),
                "classes": class_report(y, anomaly.decisions(scores[part], threshold), anomaly.CLASS_NAMES),
            }
        metrics["split"] = data.split.sizes()
        return metrics

    def metric_columns(self, metrics: dict[str, Any]) -> list[tuple[str, str]]:
        return [("accuracy", "accuracy")]

    def diagnose(self, metrics: dict[str, Any], config: TrainConfig, title: str) -> tuple[Diagnosis | None, str]:
        return None, anomaly.diagnosis_markdown(metrics, title)

    def rediagnose(self, metrics: dict[str, Any], bayes_error: float, tolerance: float | None) -> Diagnosis:
        raise UserError(
            "this is an anomaly-detection run: bias/variance diagnosis is for classifiers and regressions; "
            "read its AUC and confusion in metrics.json and its diagnosis.md"
        )

    def summary_line(self, metrics: dict[str, Any], diagnosis: Diagnosis | None) -> str:
        return f"anomaly detection: {anomaly.summary_line(metrics)}"


class Regression(Task):
    """Numeric targets, one or several: the model's last layer maps z-scored outputs back to target units, the loss
    is the mean squared error in z-score units, and MAE, RMSE and R² are reported in target units."""

    name = REGRESSION
    noun = "a regression"
    strata_name = "by decile of the first target"
    history_metrics = ("mae",)
    objectives = {"val_loss": "min", "val_mae": "min"}

    def check_config(self, config: TrainConfig) -> None:
        if not (math.isfinite(config.bayes_error) and config.bayes_error >= 0):
            raise UserError(f"bayes_error of a regression is an RMSE in target units >= 0, got {config.bayes_error}")

    def prepare(self, dataset: Dataset, config: TrainConfig) -> Dataset:
        if dataset.targets is None:
            raise UserError(
                f"the label '{config.label}' of {dataset.name} holds text, not numbers; a regression predicts "
                "numbers: pass the numeric column with --label, or --task classification"
            )
        names = list(dataset.target_names or [f"y{column}" for column in range(dataset.targets.shape[1])])
        constant = [name for name, column in zip(names, dataset.targets.T, strict=True) if np.ptp(column) == 0]
        if constant:
            raise UserError(
                f"the target {', '.join(constant)} of {dataset.name} has the same value in every row; "
                "there is nothing to predict: drop it from --label"
            )
        return replace(dataset, y=dataset.targets.astype(np.float32), class_names=[], target_names=names)

    def outputs(self, dataset: Dataset) -> int:
        return int(dataset.y.shape[1])

    def spec_fields(self, dataset: Dataset, split: Split) -> dict[str, Any]:
        targets = np.asarray(dataset.y[split.train], np.float64)
        return {"target_mean": targets.mean(axis=0), "target_variance": targets.var(axis=0)}

    def data_fields(self, dataset: Dataset) -> dict[str, Any]:
        return {"class_names": [], "target_names": dataset.target_names}

    def strata(self, y: np.ndarray) -> np.ndarray:
        """The decile of the first target of each example: the split and int8 calibration cover the target's
        range as train does."""
        first = np.asarray(y, np.float64).reshape(len(y), -1)[:, 0]
        edges = np.quantile(first, np.linspace(0, 1, CALIBRATION_BINS + 1)[1:-1])
        return np.searchsorted(edges, first, side="right")

    def output_layer(self, keras: ModuleType, x: Any, config: TrainConfig, spec: DataSpec) -> Any:
        """A linear layer of z-scored outputs, then the training targets' mean and deviation put back
        (``value = z * std + mean``), so the model speaks target units."""
        from recipes.layers import initializer_for, kernel_regularizer

        z = keras.layers.Dense(
            spec.num_classes,
            kernel_initializer=initializer_for(config, "linear", keras),
            kernel_regularizer=kernel_regularizer(config, spec, keras),
            name="standardized_value",
        )(x)
        mean, variance = target_statistics(spec)
        return keras.layers.Normalization(axis=-1, mean=mean, variance=variance, invert=True, name=VALUE_LAYER)(z)

    def compile(self, model: Any, optimizer: Any, keras_module: ModuleType | None = None) -> Any:
        """Loss: the squared error in units of each target's training deviation, i.e. the mean squared error of
        the z-scored outputs (the gradients of training on z-scored targets); metric: MAE in target units."""
        layer = model.get_layer(VALUE_LAYER).get_config()
        std = np.sqrt(np.maximum(np.asarray(layer["variance"], np.float64).reshape(-1), 1e-14))
        model.compile(optimizer=optimizer, loss=standardized_squared_error(std, keras_module), metrics=["mae"])
        return model

    def evaluate(self, model: Any, data: Any) -> dict[str, Any]:
        """Per split the loss (z-score units, regularization included) and :func:`regression_metrics`, with the
        figures of always predicting the training mean (``baseline_mae``, ``baseline_rmse``)."""
        train_mean = np.asarray(data.part("train")[1], np.float64).mean(axis=0)
        names = data.dataset.target_names
        metrics: dict[str, Any] = {"task": self.name, "target_names": names}
        for part in ("train", "dev", "test"):
            x, y = data.part(part)
            loss = model.evaluate(**keras_inputs(x, y, EVALUATION_BATCH), verbose=0, return_dict=True)["loss"]
            predicted = model.predict(**keras_inputs(x), verbose=0)
            scores = regression_metrics(y, predicted, names)
            baseline = regression_metrics(y, np.broadcast_to(train_mean, np.shape(y)), names)
            metrics[part] = {
                "loss": float(loss),
                **scores,
                "baseline_mae": baseline["mae"],
                "baseline_rmse": baseline["rmse"],
            }
        metrics["split"] = data.split.sizes()
        metrics["target_std"] = [float(value) for value in np.asarray(data.spec.target_variance) ** 0.5]
        return metrics

    def metric_columns(self, metrics: dict[str, Any]) -> list[tuple[str, str]]:
        return [("MAE", "mae"), ("RMSE", "rmse"), ("R²", "r2")]

    def diagnose(self, metrics: dict[str, Any], config: TrainConfig, title: str) -> tuple[Diagnosis | None, str]:
        diagnosis = self.rediagnose(metrics, config.bayes_error, None)
        if config.early_stopping:
            diagnosis = with_early_stopping(diagnosis)
        return diagnosis, self.markdown(diagnosis, metrics, title)

    def markdown(self, diagnosis: Diagnosis, metrics: dict[str, Any], title: str) -> str:
        """The diagnosis, then each split's MAE, RMSE and R² per target beside predicting the training mean."""
        return diagnosis.to_markdown(title) + _regression_table(metrics)

    def rediagnose(self, metrics: dict[str, Any], bayes_error: float, tolerance: float | None) -> Diagnosis:
        """Bias and variance on the RMSE: in target units for one output; for several, each output's RMSE over
        its training deviation, averaged. The tolerance defaults to 5% of the training deviation."""
        try:
            std = np.asarray(metrics["target_std"], np.float64)
            rmse = {part: _output_rmse(metrics[part], metrics["target_names"]) for part in ("train", "dev")}
        except (KeyError, TypeError, ValueError):
            raise UserError("metrics.json of this run lacks a regression's RMSE per output; train again") from None
        if len(std) == 1:
            errors, unit, spread = {part: float(values[0]) for part, values in rmse.items()}, "target units", std[0]
        else:
            errors = {part: float(np.mean(values / std)) for part, values in rmse.items()}
            unit, spread = "units of each target's training standard deviation, averaged", 1.0
        diagnosis = diagnose(
            errors["train"],
            errors["dev"],
            bayes_error,
            0.05 * spread if tolerance is None else tolerance,
            measure=f"RMSE ({unit})",
        )
        return with_findings(diagnosis, metrics.get("findings") or [])

    def summary_line(self, metrics: dict[str, Any], diagnosis: Diagnosis | None) -> str:
        test = metrics["test"]
        return (
            f"regression: test MAE {test['mae']:.4g}, RMSE {test['rmse']:.4g}, R² {test['r2']:.3f} "
            f"(predicting the training mean: RMSE {test['baseline_rmse']:.4g}); diagnosis: {diagnosis.summary_line()}"
        )


VALUE_LAYER = "value"
TASKS: dict[str, Task] = {task.name: task for task in (Classification(), AnomalyDetection(), Regression())}


def task_named(name: str) -> Task:
    """The task called ``name`` (``classification``, ``anomaly`` or ``regression``)."""
    if name not in TASKS:
        raise unknown_choice("task", name, TASKS)
    return TASKS[name]


def looks_continuous(dataset: Dataset) -> bool:
    """Whether the label is a quantity rather than a class: several label columns, or numbers with more than
    :data:`CONTINUOUS_MIN_DISTINCT` distinct values that are also more than :data:`CONTINUOUS_MIN_SHARE` of the
    rows."""
    if dataset.targets is None:
        return False
    if dataset.targets.shape[1] > 1:
        return True
    distinct = len(np.unique(dataset.targets[:, 0]))
    return distinct > CONTINUOUS_MIN_DISTINCT and distinct > CONTINUOUS_MIN_SHARE * len(dataset.targets)


def choose_task(config: TrainConfig, dataset: Dataset | None) -> tuple[Task, str | None]:
    """The task of ``config`` on ``dataset`` and, when ``auto`` chose regression, the line announcing it
    (``dataset`` may be None when the recipe or the config decides alone).

    Raises:
        UserError: a task the recipe cannot learn, or an unknown task.
    """
    recipe = recipe_named(config.recipe)
    if config.task not in TASK_CHOICES:
        raise unknown_choice("task", config.task, TASK_CHOICES)
    if recipe.tasks == (ANOMALY,):
        if config.task != AUTO:
            raise UserError(f"the {recipe.name} recipe detects anomalies; drop --task {config.task}")
        return TASKS[ANOMALY], None
    if config.task != AUTO or len(recipe.tasks) == 1:
        if config.task == AUTO:
            return TASKS[recipe.tasks[0]], None
        if config.task not in recipe.tasks:
            able = ", ".join(_recipes_for(config.task))
            raise UserError(f"the {recipe.name} recipe cannot learn {config.task}; use --recipe {able}")
        return TASKS[config.task], None
    if looks_continuous(dataset) and REGRESSION in recipe.tasks:
        distinct = len(np.unique(dataset.targets[:, 0]))
        why = (
            f"{dataset.targets.shape[1]} label columns"
            if dataset.targets.shape[1] > 1
            else f"the label holds {distinct} distinct numbers in {len(dataset.targets)} rows (more than "
            f"{CONTINUOUS_MIN_DISTINCT} and more than {CONTINUOUS_MIN_SHARE:.0%})"
        )
        return TASKS[REGRESSION], f"task: regression ({why}); --task classification to classify instead"
    return TASKS[CLASSIFICATION], None


def _recipes_for(task: str) -> list[str]:
    """The names of the recipes that can learn ``task``."""
    from recipes.registry import REGISTRY

    return [name for name, row in REGISTRY.items() if task in row.tasks]


def target_statistics(spec: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    """float32 mean and variance of a regression's training targets (0 and 1 when unknown)."""
    outputs = spec.num_classes
    mean = np.zeros(outputs) if spec.target_mean is None else spec.target_mean
    variance = np.ones(outputs) if spec.target_variance is None else spec.target_variance
    return np.asarray(mean, np.float32).reshape(-1), np.asarray(variance, np.float32).reshape(-1)


def regression_metrics(y: np.ndarray, predicted: np.ndarray, names: list[str]) -> dict[str, Any]:
    """MAE, RMSE and R² per output (``outputs``) and over all outputs (each averaged over the outputs).

    R² is ``1 - Σ(y - ŷ)² / Σ(y - ȳ)²`` with ȳ the mean of ``y`` itself (scikit-learn's ``r2_score``); None for a
    split whose target does not vary.
    """
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    predicted = np.asarray(predicted, np.float64).reshape(len(y), -1)
    errors = predicted - y
    mae = np.abs(errors).mean(axis=0)
    rmse = np.sqrt(np.square(errors).mean(axis=0))
    total = np.square(y - y.mean(axis=0)).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(total > 0, 1.0 - np.square(errors).sum(axis=0) / total, np.nan)
    outputs = {
        name: {"mae": float(mae[i]), "rmse": float(rmse[i]), "r2": None if np.isnan(r2[i]) else float(r2[i])}
        for i, name in enumerate(names)
    }
    finite = r2[~np.isnan(r2)]
    return {
        "mae": float(mae.mean()),
        "rmse": float(rmse.mean()),
        "r2": float(finite.mean()) if len(finite) else None,
        "outputs": outputs,
    }


def _output_rmse(split: dict[str, Any], names: list[str]) -> np.ndarray:
    return np.asarray([split["outputs"][name]["rmse"] for name in names], np.float64)


def _regression_table(metrics: dict[str, Any]) -> str:
    """Markdown: per split and output MAE, RMSE and R², beside the RMSE of predicting the training mean."""
    rows = []
    for part in ("train", "dev", "test"):
        for name, scores in metrics[part]["outputs"].items():
            r2 = "-" if scores["r2"] is None else f"{scores['r2']:.3f}"
            rows.append(f"| {part} | {name} | {scores['mae']:.5g} | {scores['rmse']:.5g} | {r2} |")
    return "\n".join(
        [
            "",
            "## In target units",
            "",
            "| split | target | MAE | RMSE | R² |",
            "| --- | --- | ---: | ---: | ---: |",
            *rows,
            "",
            f"Predicting the training mean for every example gives test RMSE {metrics['test']['baseline_rmse']:.5g} "
            f"(MAE {metrics['test']['baseline_mae']:.5g}): the model must beat that to be of use.",
            "",
        ]
    )


_LOSSES: dict[str, Any] = {}


def standardized_squared_error(std: np.ndarray, keras_module: ModuleType | None = None) -> Any:
    """The regression loss ``mean(((y - ŷ) / std)²)`` over the outputs, for ``keras_module`` (Keras 3: a
    registered, serializable loss, so a checkpoint loads with it; a run's ``model.keras`` is saved without it: see
    :meth:`recipes.runs.Run.write_model`; tf_keras: a plain function)."""
    from recipes.layers import keras_module_or_default

    keras = keras_module_or_default(keras_module)
    values = [float(value) for value in np.asarray(std, np.float64).reshape(-1)]
    if keras.__name__ != "keras":

        def loss(y_true: Any, y_pred: Any) -> Any:
            import tensorflow as tf

            scale = tf.constant(values, y_pred.dtype)
            return tf.reduce_mean(tf.square((tf.cast(y_true, y_pred.dtype) - y_pred) / scale), axis=-1)

        return loss
    return register_losses()["StandardizedSquaredError"](values)


def register_losses() -> dict[str, Any]:
    """Define (once) and register with Keras the project's serializable losses; returns them by class name."""
    if _LOSSES:
        return _LOSSES
    import keras

    @keras.saving.register_keras_serializable(package="edge_recipes")
    class StandardizedSquaredError(keras.losses.Loss):
        """Mean over the outputs of ``((y - ŷ) / std)²``: the squared error of z-scored targets."""

        def __init__(self, std: list[float] = (1.0,), name: str = "standardized_squared_error", **kwargs: Any):
            super().__init__(name=name, **kwargs)
            self.std = [float(value) for value in std]

        def call(self, y_true: Any, y_pred: Any) -> Any:
            ops = keras.ops
            scale = ops.convert_to_tensor(np.asarray(self.std, np.float32))
            y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), ops.shape(y_pred))
            return ops.mean(ops.square((y_true - y_pred) / scale), axis=-1)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "std": self.std}

    _LOSSES[StandardizedSquaredError.__name__] = StandardizedSquaredError
    return _LOSSES
