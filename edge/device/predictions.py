"""Predictions of a model on a file or a folder, per task (top classes, anomaly scores, values in the targets'
units), and their text: one line per example, the score of a labelled folder and its confusion table."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge.device.errors import UserError, printable
from edge.device.inputs import folder_files, read_files, read_labelled_inputs, unknown_labels_note
from edge.device.model import EdgeModel, is_anomaly
from edge.device.tasks import TASKS
from edge.device.windows import KIND as WINDOWS
from edge.device.windows import stream_windows

FOLDER_CHUNK_FILES = 256  # predict reads and runs a folder this many files at a time: memory bounded by the chunk


def _predict_folder(model: EdgeModel, folder: Path, k: int) -> list[Any]:
    """The predictions of every file of ``folder``, read and run :data:`FOLDER_CHUNK_FILES` files at a time, each
    with its file (:class:`FilePrediction`) and, in a labelled folder, its true label (:class:`LabelledPrediction`)."""
    files = folder_files(folder)
    notes = unknown_labels_note(folder, files, model)
    predictions: list[Any] = []
    for start in range(0, len(files), FOLDER_CHUNK_FILES):
        inputs = read_files(folder, files[start : start + FOLDER_CHUNK_FILES], model)
        notes += inputs.notes
        offset = len(predictions)
        chunk = [
            FilePrediction(replace(one, index=one.index + offset), file)
            for one, file in zip(_predictions(model, inputs.x, k), inputs.files or [], strict=True)
        ]
        if inputs.labels is not None and model.task != "anomaly":
            chunk = [LabelledPrediction(one, label) for one, label in zip(chunk, inputs.labels, strict=True)]
        predictions += chunk
    model.input_notes = notes
    return predictions


@dataclass
class Prediction:
    """The top classes of one example."""

    index: int
    labels: list[str]
    scores: list[float]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "index": self.index,
            "top": [{"label": label, "score": score} for label, score in zip(self.labels, self.scores, strict=True)],
        }

    def to_line(self) -> str:
        """One line for the console, e.g. ``   0: 7 (0.981), 9 (0.012)``."""
        return f"{self.index:>4}: " + ", ".join(
            f"{printable(label)} ({score:.3f})" for label, score in zip(self.labels, self.scores, strict=True)
        )


@dataclass
class AnomalyPrediction:
    """The anomaly score of one example and the decision at the threshold.

    Args:
        index: the example's position in the input.
        score: its anomaly score.
        threshold: the run's threshold.
        saturated: the score is the largest the int8 output can hold: the true score is at least this.
    """

    index: int
    score: float
    threshold: float
    saturated: bool

    @property
    def decision(self) -> str:
        """``"anomaly"`` (score at or above the threshold) or ``"normal"``."""
        return "anomaly" if is_anomaly(np.array([self.score]), self.threshold)[0] else "normal"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "index": self.index,
            "score": self.score,
            "threshold": self.threshold,
            "decision": self.decision,
            "saturated": self.saturated,
        }

    def to_line(self) -> str:
        """One line for the console, e.g. ``   3: anomaly  score 2.4127 >= threshold 1.0963``."""
        relation = ">=" if self.decision == "anomaly" else "<"
        note = " (the int8 maximum: at least this)" if self.saturated else ""
        return (
            f"{self.index:>4}: {self.decision:<8} score {self.score:.5g}{note} {relation} "
            f"threshold {self.threshold:.5g}"
        )


def anomaly_scores(model: EdgeModel, x: Any, k: int = 1) -> list[AnomalyPrediction]:
    """Each example's anomaly score and decision at ``model.threshold`` (``k``: unused, as in every task's
    ``predict`` of :data:`edge.device.tasks.TASKS`).

    Raises:
        UserError: the model has no threshold (it is not an anomaly detector, or its manifest is missing).
    """
    if model.threshold is None:
        raise UserError(f"{model.source} has no anomaly threshold; put the manifest.json of its export beside it")
    raw = model.run(x)
    scores = model.dequantize(raw).reshape(-1)
    saturated = (raw == np.iinfo(raw.dtype).max).reshape(-1) if model.output.quantized else np.zeros(len(scores), bool)
    return [
        AnomalyPrediction(row, float(scores[row]), model.threshold, bool(saturated[row])) for row in range(len(scores))
    ]


@dataclass
class ValuePrediction:
    """A regression's values for one example, in the targets' units.

    Args:
        index: the example's position in the input.
        names: each output's name.
        values: each output's value.
        saturated: per output, whether an int8 output sat at its limit (the true value may lie beyond).
    """

    index: int
    names: list[str]
    values: list[float]
    saturated: list[bool]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``: ``value`` for one output, ``values`` (and ``names``) for several."""
        entry: dict[str, Any] = {"index": self.index}
        if len(self.values) == 1:
            entry["value"] = self.values[0]
        else:
            entry["values"], entry["names"] = self.values, self.names
        if any(self.saturated):
            entry["saturated"] = self.saturated
        return entry

    def to_line(self) -> str:
        """One line for the console, e.g. ``   0: target 152.31`` (``(at the int8 limit)`` after a clipped one)."""
        return f"{self.index:>4}: " + ", ".join(
            f"{printable(name)} {value:.6g}" + (" (at the int8 limit)" if clipped else "")
            for name, value, clipped in zip(self.names, self.values, self.saturated, strict=True)
        )


def regression_values(model: EdgeModel, x: Any, k: int = 1) -> list[ValuePrediction]:
    """Each example's values in target units, and which int8 outputs sat at their limits (``k``: unused)."""
    raw = model.run(x)
    values = model.outputs(raw)
    if model.output.quantized:
        limits = np.iinfo(raw.dtype)
        saturated = (raw == limits.max) | (raw == limits.min)
    else:
        saturated = np.zeros(values.shape, bool)
    names = model.target_names or [f"y{index}" for index in range(values.shape[1])]
    return [
        ValuePrediction(row, names, [float(v) for v in values[row]], [bool(s) for s in saturated[row]])
        for row in range(len(values))
    ]


def top_k(probabilities: np.ndarray, class_names: list[str], k: int) -> list[Prediction]:
    """The ``k`` highest-scoring classes of each row, best first.

    Raises:
        UserError: ``k`` < 1.
    """
    if k < 1:
        raise UserError(f"--top-k is {k}; give 1 or more")
    k = min(k, probabilities.shape[1])
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [
        Prediction(row, [class_names[i] for i in order[row]], [float(probabilities[row, i]) for i in order[row]])
        for row in range(len(probabilities))
    ]


@dataclass
class WindowPrediction:
    """A prediction for one window of a stream, with the recording it came from and its time span.

    Args:
        prediction: what the model says about the window (a class list, a score, values).
        recording: the recording's name.
        start_time: the window's first sample's time, in seconds.
        end_time: the time just after its last sample, in seconds.
    """

    prediction: Any
    recording: str
    start_time: float
    end_time: float

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``: the prediction's, with ``recording``, ``start_time`` and ``end_time``."""
        return {
            **self.prediction.to_dict(),
            "recording": self.recording,
            "start_time": self.start_time,
            "end_time": self.end_time,
        }

    def to_line(self) -> str:
        """The prediction's line, then the window's recording and time span."""
        return f"{self.prediction.to_line()}  [{printable(self.recording)} {self.start_time:.2f}-{self.end_time:.2f} s]"


@dataclass
class FilePrediction:
    """A prediction for an example read from a folder, with the file it came from.

    Args:
        prediction: what the model says about the example.
        file: the file, relative to the folder.
    """

    prediction: Any
    file: str

    @property
    def labels(self) -> list[str] | None:
        """A classifier's top classes (None for other models)."""
        return getattr(self.prediction, "labels", None)

    @property
    def values(self) -> list[float] | None:
        """A regression's values (None for other models)."""
        return getattr(self.prediction, "values", None)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``: the prediction's, with ``file``."""
        return {**self.prediction.to_dict(), "file": self.file}

    def to_line(self) -> str:
        """The prediction's line, then the file."""
        return f"{self.prediction.to_line()}  [{printable(self.file)}]"


@dataclass
class LabelledPrediction:
    """A prediction for an example whose true label the input file gave (a ``.ts`` file, an ``.npz`` with ``y``).

    Args:
        prediction: what the model says about the example.
        label: its true label, as text.
    """

    prediction: Any
    label: str

    @property
    def correct(self) -> bool | None:
        """Whether a classifier's top class is the true label (None for other models)."""
        labels = getattr(self.prediction, "labels", None)
        return None if labels is None else labels[0] == self.label

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``: the prediction's, with ``true_label`` (and ``correct`` for a classifier)."""
        entry = {**self.prediction.to_dict(), "true_label": self.label}
        if self.correct is not None:
            entry["correct"] = self.correct
        return entry

    def to_line(self) -> str:
        """The prediction's line, then the true label."""
        return f"{self.prediction.to_line()}  (true: {printable(self.label)})"


def score_line(predictions: list[LabelledPrediction]) -> str | None:
    """The line that scores predictions against their true labels: a classifier's accuracy (top-1), a single-output
    regression's mean absolute and root-mean-square error; None for other models or labels that are not numbers."""
    if not predictions:
        return None
    if predictions[0].correct is not None:
        right = sum(bool(prediction.correct) for prediction in predictions)
        return f"accuracy {right / len(predictions):.4f} ({right} of {len(predictions)} labelled examples, top-1)"
    values = [getattr(prediction.prediction, "values", None) for prediction in predictions]
    try:
        truth = np.array([float(prediction.label) for prediction in predictions])
    except ValueError:
        return None
    if any(value is None or len(value) != 1 for value in values):
        return None
    errors = np.array([value[0] for value in values]) - truth
    return (
        f"MAE {np.mean(np.abs(errors)):.6g}, RMSE {np.sqrt(np.mean(errors**2)):.6g} ({len(errors)} labelled examples)"
    )


def top_classes(model: EdgeModel, x: Any, k: int) -> list[Prediction]:
    """A classifier's ``k`` most probable classes per example, best first."""
    return top_k(model.predict(x), model.class_names, k)


def same_class(model: EdgeModel, outputs: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Per example, whether two raw output rows of a classifier pick the same class."""
    return outputs.argmax(axis=1) == expected.argmax(axis=1)


def same_decision(model: EdgeModel, outputs: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Per example, whether two raw anomaly scores fall on the same side of the threshold."""
    return (
        is_anomaly(model.dequantize(outputs), model.threshold)
        == is_anomaly(model.dequantize(expected), model.threshold)
    ).reshape(-1)


def same_values(model: EdgeModel, outputs: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Per example, whether two raw rows of a regression's values agree: within one int8 step, or float32 within
    rounding."""
    if model.output.quantized:
        return (np.abs(outputs.astype(np.int64) - expected.astype(np.int64)) <= 1).all(axis=1)
    return np.isclose(outputs, expected, rtol=1e-5, atol=1e-6).all(axis=1)


def _predictions(model: EdgeModel, x: Any, k: int) -> list[Any]:
    """What predict prints per example, by the model's task (:data:`edge.device.tasks.TASKS`)."""
    return TASKS[model.task].function("predict")(model, x, k)


def predict_file(
    model_path: str | Path, input_path: str | Path, k: int = 3, num_threads: int | None = None
) -> tuple[EdgeModel, list[Prediction] | list[AnomalyPrediction] | list[ValuePrediction]]:
    """Load a model, read an input file and return the top-``k`` classes of every example, for an anomaly
    detector every example's score and decision, or for a regression every example's values.

    Args:
        model_path: a ``.tflite`` file (labels or threshold and front end come from the ``manifest.json``
            beside it).
        input_path: a ``.csv``, ``.npy``, ``.npz``, ``.ts``, image or ``.wav`` file of raw inputs (a model of
            windows also takes a CSV stream).
        k: classes to return per example (classifiers).
        num_threads: LiteRT CPU threads.

    Returns:
        The loaded model and one :class:`Prediction`, :class:`AnomalyPrediction` or :class:`ValuePrediction`
        per example; per window of a CSV stream a :class:`WindowPrediction`; per example of a file that carries
        true labels (a ``.ts`` file, an ``.npz`` with ``y``) a :class:`LabelledPrediction` (not for anomaly
        detectors).
    """
    if num_threads is not None and num_threads < 1:
        raise UserError(f"--threads is {num_threads}; give 1 or more")
    if k < 1:
        raise UserError(f"--top-k is {k}; give 1 or more")
    model = EdgeModel.load(model_path, num_threads)
    if (model.front_end or {}).get("kind") == WINDOWS and Path(input_path).suffix.lower() == ".csv":
        if not Path(input_path).is_file():
            raise UserError(f"input file {input_path} does not exist; pass a CSV stream of {model.source}'s channels")
        windows = stream_windows(Path(input_path), model.front_end)
        model.input_notes = [windows.note] if windows.note else []
        predictions = _predictions(model, model.as_batch(windows.x), k)
        return model, [
            WindowPrediction(prediction, recording, float(start), float(end))
            for prediction, recording, start, end in zip(
                predictions, windows.recordings, windows.start_times, windows.end_times, strict=True
            )
        ]
    if Path(input_path).is_dir():
        return model, _predict_folder(model, Path(input_path), k)
    inputs = read_labelled_inputs(input_path, model)
    model.input_notes = inputs.notes
    predictions = _predictions(model, inputs.x, k)
    if inputs.labels is None or model.task == "anomaly":
        return model, predictions
    return model, [
        LabelledPrediction(prediction, label) for prediction, label in zip(predictions, inputs.labels, strict=True)
    ]


CLIPPED_WARNING_FRACTION = 0.01  # predict warns when more of the quantized input values than this were clipped


def clipping_warning(model: EdgeModel) -> str | None:
    """The warning line for inputs that quantization clipped: None unless more than
    :data:`CLIPPED_WARNING_FRACTION` of the values :meth:`EdgeModel.quantize` saw fell outside the integer
    input's range (a rare outlier stays quiet)."""
    if model.values_quantized == 0 or model.values_clipped <= CLIPPED_WARNING_FRACTION * model.values_quantized:
        return None
    limits = np.iinfo(model.input.dtype)
    low = (limits.min - model.input.zero_point) * model.input.scale
    high = (limits.max - model.input.zero_point) * model.input.scale
    units = " (z-scores of the training statistics in the manifest)" if model.standardization is not None else ""
    if model.front_end and "mel_bins" in model.front_end:  # a clip's level cannot matter: it is normalized to its peak
        fix = "give clips like the training ones (near-silence or a clip cut short gives MFCCs training never saw)"
    elif len(model.input_shape) == 3 and model.front_end is None:
        fix = "give raw values as in training (the same scale, e.g. not pixels 0..255 for a model trained on 0..1)"
    else:
        fix = "give raw values as in training (the same units and scale)"
    return (
        f"warning: {100 * model.values_clipped / model.values_quantized:.1f}% of the input values "
        f"({model.values_clipped} of {model.values_quantized}) were outside the {model.input.dtype} input's range "
        f"[{low:.4g}, {high:.4g}]{units} and were clipped; {fix}"
    )


def prediction_report(model: EdgeModel, predictions: list[Any], as_json: bool) -> tuple[str, str | None]:
    """What ``predict`` prints: the predictions (JSON, or one line each, then for examples whose true labels the
    input gave the score line, :func:`score_line`) and the lines for stderr, if any: notes on what reading the input
    changed, warnings for a model exported outside its tolerance and for inputs that quantization clipped
    (:func:`clipping_warning`).
    """
    failing = (
        f"warning: {model.source} was exported outside its tolerance (--keep-failing): its answers may be "
        "wrong; export a variant within tolerance"
        if model.failing
        else None
    )
    notes = [f"note: {printable(note)}" for note in model.input_notes]
    warning = "\n".join(line for line in (*notes, failing, clipping_warning(model)) if line) or None
    if as_json:
        return json.dumps([prediction.to_dict() for prediction in predictions], indent=2), warning
    lines = [prediction.to_line() for prediction in predictions]
    if predictions and all(isinstance(prediction, LabelledPrediction) for prediction in predictions):
        lines += [line] if (line := score_line(predictions)) else []
        lines += confusion_lines(predictions, model.class_names) if model.task == "classification" else []
    return "\n".join(lines), warning


def confusion_counts(predictions: list[LabelledPrediction], class_names: list[str]) -> tuple[list[str], np.ndarray]:
    """The rows (true labels: the model's classes, then labels that name none of them) and the counts
    ``(rows, classes)`` of a classifier's labelled predictions, columns the predicted classes."""
    extra = sorted({prediction.label for prediction in predictions} - set(class_names))
    rows = [*class_names, *extra]
    counts = np.zeros((len(rows), len(class_names)), np.int64)
    for prediction in predictions:
        counts[rows.index(prediction.label), class_names.index(prediction.prediction.labels[0])] += 1
    return rows, counts


def confusion_lines(predictions: list[LabelledPrediction], class_names: list[str]) -> list[str]:
    """The confusion table of a classifier's labelled predictions, rows the true labels and columns the predicted
    classes (counts), each row ending with its recall, then the three most frequent confusions. Labels that name no
    class of the model get rows of their own below the classes."""
    rows, counts = confusion_counts(predictions, class_names)
    width = max(5, *(len(printable(name)[:12]) for name in rows))
    cell = max(4, len(str(int(counts.max(initial=0)))) + 1)
    heads = "".join(f"{printable(name)[: cell - 1]:>{cell}}" for name in class_names)
    lines = ["confusion (rows: true label, columns: predicted class, counts; recall at the right):"]
    lines.append(f"{'':<{width}} {heads}  recall")
    for index, name in enumerate(rows):
        total = counts[index].sum()
        if total == 0:
            continue
        right = counts[index, index] if index < len(class_names) else 0
        cells = "".join(f"{value if value else '.':>{cell}}" for value in counts[index])
        lines.append(f"{printable(name)[:12]:<{width}} {cells}  {right / total:.3f}")
    pairs = [
        (int(counts[t, p]), rows[t], class_names[p])
        for t in range(len(rows))
        for p in range(len(class_names))
        if t != p and counts[t, p]
    ]
    if pairs:
        worst = sorted(pairs, key=lambda pair: -pair[0])[:3]
        lines.append(
            "most confused: "
            + ", ".join(f"{printable(true)} as {printable(guess)} ×{count}" for count, true, guess in worst)
        )
    return lines
