"""The device runtime: run an exported ``.tflite`` model with LiteRT and numpy only.

This module imports no TensorFlow, Keras or tfmot (directly or through another module), so it runs
on a Raspberry Pi-class device with ``pip install ai-edge-litert numpy``. It quantizes raw inputs for
int8 models, dequantizes their outputs, and reads from the ``manifest.json`` that ``python cli.py export``
writes beside the model (checking that the manifest describes this file) how to read them: the class
labels of a classifier, the threshold of an anomaly detector, whose one output is its anomaly score
(an anomaly when the score is at or above the threshold), or the target names of a regression, whose outputs
are values in the targets' units (an int8 regression outputs z-scores: the manifest's output standardization
maps them back); and for an audio model the front end that turns
a ``.wav`` clip into its MFCCs (:mod:`edge.mfcc`, numpy). Images are read with Pillow, imported only when
an image is given.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
import tokenize
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from edge.native_output import captured_native_output
from edge.preflight import preflight
from edge.preprocessing import Standardization
from recipes.errors import UserError, first_line, is_number, printable, quoted
from recipes.limits import MAX_ARRAY_BYTES, array_header_refusal, image_too_large, open_image, zip_too_large
from recipes.series_files import RESAMPLED, fit_length, read_ts
from recipes.series_files import SUFFIX as TS_SUFFIX
from recipes.suffixes import IMAGE_SUFFIXES, WAV_SUFFIX
from recipes.windows import FRONT_ENDS, model_inputs, stream_windows
from recipes.windows import KIND as WINDOWS

MANIFEST_NAME = "manifest.json"
INPUT_SUFFIXES = (".csv", ".npy", ".npz", TS_SUFFIX, *IMAGE_SUFFIXES, WAV_SUFFIX)
DECISION_RULE = "anomaly when score >= threshold"
CHUNK = 256  # examples per invoke when the model's batch dimension is dynamic
REASON_CHARS = 200  # the most of LiteRT's error text quoted in an error line
_SENTENCE_END = re.compile(r"(?<=[.)])\s*(?=[A-Z])")  # LiteRT appends "Node number 2 (MUL) failed..." with no space


@dataclass(frozen=True)
class TensorInfo:
    """One input or output tensor of a model.

    Args:
        name: the tensor's name in the flatbuffer.
        shape: its shape, batch dimension first.
        dtype: numpy dtype name, e.g. ``"int8"`` or ``"float32"``.
        scale: quantization scale (0.0 when the tensor is not quantized).
        zero_point: quantization zero point.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        """Whether values are stored as integers with a scale and zero point."""
        return self.scale != 0.0 and np.dtype(self.dtype).kind in "iu"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``manifest.json``."""
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "quantization": {"scale": self.scale, "zero_point": self.zero_point} if self.quantized else None,
        }


def is_anomaly(scores: np.ndarray, threshold: float) -> np.ndarray:
    """The decision of an anomaly detector: True where the score is at or above ``threshold`` (compared in float64,
    as training chose the threshold)."""
    return np.asarray(scores, np.float64) >= threshold


def _tensor_info(details: dict[str, Any]) -> TensorInfo:
    scale, zero_point = details["quantization"]
    return TensorInfo(
        str(details["name"]),
        tuple(int(side) for side in details["shape"]),
        np.dtype(details["dtype"]).name,
        float(scale),
        int(zero_point),
    )


class EdgeModel:
    """A ``.tflite`` model ready to predict on raw numpy inputs.

    Args:
        content: the flatbuffer bytes.
        class_names: label of each output class; default ``class 0``, ``class 1``, ...
        num_threads: LiteRT CPU threads; default LiteRT's own choice.
        source: how to name the model in error messages (its path).
        threshold: for an anomaly detector (one output, the anomaly score), the score from which an
            example is an anomaly; None for a classifier.
        front_end: for a model of audio features, the front end's parameters (see :mod:`edge.mfcc`).
        standardization: the z-score to apply to raw inputs before the model (a full-integer model is
            converted without its z-score layer, see :mod:`edge.preprocessing`); None when the model takes
            raw inputs itself.
        failing: the export found this model outside its tolerance (kept only with ``--keep-failing``).
        target_names: for a regression, the name of each output value; None otherwise.
        output_standardization: for a regression converted without its last layer, the targets' mean and
            deviation that turn its z-scored outputs into values (``z * std + mean``); None otherwise.
        exported: the model is a file of an export (a manifest beside it lists it): a model LiteRT refuses is then
            exported again, any other converted again.

    Raises:
        UserError: the bytes are empty, not a flatbuffer, or not a model LiteRT can run; a threshold for a
            model with more than one output value.
    """

    def __init__(
        self,
        content: bytes,
        class_names: list[str] | None = None,
        num_threads: int | None = None,
        source: str = "the model",
        threshold: float | None = None,
        front_end: dict[str, Any] | None = None,
        standardization: Standardization | None = None,
        failing: bool = False,
        target_names: list[str] | None = None,
        output_standardization: Standardization | None = None,
        exported: bool = False,
    ) -> None:
        self.source = source
        self.exported = exported
        self.content = bytes(content)
        self._num_threads = num_threads
        try:
            self.interpreter = _open_interpreter(self.content, num_threads, source, True, exported)
            self._delegated = True
        except UserError:  # XNNPACK may refuse a model LiteRT's own kernels run
            self.interpreter = _open_interpreter(self.content, num_threads, source, False, exported)
            self._delegated = False
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise UserError(
                f"{source} has {len(inputs)} inputs and {len(outputs)} outputs; the runtime runs "
                "models with one input and one output, as 'python cli.py export' writes them"
            )
        self.input = _tensor_info(inputs[0])
        self.output = _tensor_info(outputs[0])
        self._input_index = int(inputs[0]["index"])
        self._output_index = int(outputs[0]["index"])
        signature = inputs[0].get("shape_signature", inputs[0]["shape"])
        self.dynamic_batch = len(signature) > 0 and int(signature[0]) == -1
        self._batch = self.input.shape[0]
        names = list(class_names) if class_names else []
        self.class_names = names if len(names) == self.num_classes else [f"class {i}" for i in range(self.num_classes)]
        if threshold is not None and self.num_classes != 1:
            raise UserError(
                f"{source} outputs {self.num_classes} values per example but has an anomaly threshold; "
                "an anomaly detector outputs one score: export the run again"
            )
        self.threshold = threshold
        self.front_end = front_end
        if standardization is not None:
            standardization.check_shape(self.input_shape, source)
        self.standardization = standardization
        self.failing = failing
        if target_names is not None and len(target_names) != self.num_classes:
            target_names = [f"y{index}" for index in range(self.num_classes)]
        self.target_names = None if target_names is None else list(target_names)
        if output_standardization is not None:
            output_standardization.check_shape((self.num_classes,), source)
        self.output_standardization = output_standardization
        self.values_quantized = 0  # raw input values quantized so far (see :meth:`quantize`)
        self.values_clipped = 0  # of which saturated at the integer input's limits
        self.input_notes: list[str] = []  # what reading the last input changed (resampled, filled in)

    @property
    def task(self) -> str:
        """What the model's outputs are: ``"anomaly"`` (a score, with a threshold), ``"regression"`` (values,
        with target names) or ``"classification"`` (class probabilities)."""
        if self.threshold is not None:
            return "anomaly"
        return "classification" if self.target_names is None else "regression"

    def with_content(self, content: bytes, source: str) -> EdgeModel:
        """Another flatbuffer of the same model (e.g. its batch fixed to one) with this one's labels, threshold, front
        end and statistics."""
        return EdgeModel(
            content,
            self.class_names,
            self._num_threads,
            source,
            threshold=self.threshold,
            front_end=self.front_end,
            standardization=self.standardization,
            target_names=self.target_names,
            output_standardization=self.output_standardization,
        )

    @classmethod
    def load(cls, path: str | Path, num_threads: int | None = None) -> EdgeModel:
        """Load a ``.tflite`` file and, when a ``manifest.json`` beside it lists the file, its labels or
        threshold and its front end.

        Args:
            path: the ``.tflite`` file.
            num_threads: LiteRT CPU threads; default LiteRT's own choice.

        Raises:
            UserError: the file is missing, a folder, damaged, differs from what the manifest lists, or lies beside
                a manifest that does not list it; a model no manifest lists crashes LiteRT in the pre-flight
                (:func:`edge.preflight.preflight`, run for such models only: an export's own were run when exported).
        """
        path = Path(path)
        if path.is_dir():
            raise UserError(f"{path} is a folder; pass a .tflite file, e.g. {path / 'edge' / 'model_int8.tflite'}")
        if not path.is_file():
            raise UserError(f"model file {path} does not exist; export one with 'python cli.py export RUN_DIR'")
        content = path.read_bytes()
        entry = _manifest_entry(path)
        if entry is None:  # not a file of an export here: LiteRT may crash on it, so it runs in a child first
            preflight(content, str(path), num_threads)
            return cls(content, None, num_threads, str(path))
        if entry.sha256 != hashlib.sha256(content).hexdigest():
            raise UserError(
                f"{path} is not the file {MANIFEST_NAME} beside it describes (sha256 differs); "
                "copy the model and manifest of the same export together, or export again"
            )
        return cls(
            content,
            entry.class_names,
            num_threads,
            str(path),
            entry.threshold,
            entry.front_end,
            entry.standardization,
            entry.failing,
            entry.target_names,
            entry.output_standardization,
            exported=True,
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example (the model's input without the batch dimension)."""
        return self.input.shape[1:]

    @property
    def num_classes(self) -> int:
        """Number of output values per example."""
        return int(np.prod(self.output.shape[1:], dtype=np.int64))

    def takes_as_quantized(self, x: np.ndarray) -> bool:
        """Whether ``x`` is already in the model's quantized input type: its dtype is the model's integer
        (int8 or uint8) quantized input dtype. Such an array (e.g. MLPerf Tiny's int8 vectors) is fed as it is,
        neither standardized nor quantized again; any other array is taken as raw values."""
        return self.input.quantized and np.asarray(x).dtype == np.dtype(self.input.dtype)

    def as_batch(self, x: Any) -> np.ndarray:
        """Check raw inputs and shape them ``(n, *input_shape)`` as float32, or, for an array already in the
        model's quantized input type (:meth:`takes_as_quantized`), in that type.

        Accepted: one example, a batch, a batch of flattened examples, or (one channel) a batch
        without the channel axis.

        Raises:
            UserError: not numbers, not finite, or a shape that holds no whole number of examples.
        """
        x = np.asarray(x)
        if x.dtype.kind not in "iuf":
            raise UserError(
                f"input has dtype {x.dtype}; {self.source} takes numbers (raw feature or pixel "
                "values), e.g. a float32 array"
            )
        example = self.input_shape
        size = int(np.prod(example, dtype=np.int64))
        if x.shape == example or (x.ndim == 1 and x.size == size):
            x = x.reshape((1, *example))
        elif x.shape[1:] == example:
            pass
        elif x.ndim == 2 and x.shape[1] == size:
            x = x.reshape((len(x), *example))
        elif len(example) > 1 and example[-1] == 1 and x.shape[1:] == example[:-1]:
            x = x[..., np.newaxis]
        else:
            raise UserError(
                f"input has shape {x.shape}; {self.source} takes examples of shape {example} "
                f"({size} values): give (n, {', '.join(map(str, example))}), (n, {size}) or one example"
            )
        if len(x) == 0:
            raise UserError("input holds no examples; give at least one")
        if self.takes_as_quantized(x):
            return x
        with np.errstate(over="ignore", invalid="ignore"):
            x = x.astype(np.float32)
        if not np.isfinite(x).all():
            raise UserError("input has NaN or infinite values; fill in or drop those examples")
        return x

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Raw float inputs → the input tensor's dtype: standardized first when the model needs it
        (:mod:`edge.preprocessing`), then round(x / scale) + zero point, saturated, for an integer input.

        An array already in the model's quantized input type (:meth:`takes_as_quantized`) is returned as it is.
        Values saturated at the integer limits are counted in :attr:`values_clipped` (of :attr:`values_quantized`),
        which ``predict`` reports (:func:`clipping_warning`)."""
        if self.takes_as_quantized(x):
            return np.asarray(x)
        if not self.input.quantized:
            return (x if self.standardization is None else self.standardization.apply(x)).astype(self.input.dtype)
        limits = np.iinfo(self.input.dtype)
        if self.standardization is not None:
            steps = self.standardization.steps(x, self.input.scale, self.input.zero_point)
        else:
            steps = np.round(x / self.input.scale) + self.input.zero_point
        quantized = np.clip(steps, limits.min, limits.max).astype(self.input.dtype)
        self.values_quantized += int(steps.size)
        self.values_clipped += int(np.count_nonzero((steps < limits.min) | (steps > limits.max)))
        return quantized

    def dequantize(self, y: np.ndarray) -> np.ndarray:
        """Output tensor values → float32 ((q - zero point) * scale for quantized outputs)."""
        if not self.output.quantized:
            return y.astype(np.float32)
        return ((y.astype(np.float32) - self.output.zero_point) * self.output.scale).astype(np.float32)

    def invoke(self, batch: np.ndarray) -> np.ndarray:
        """Run one prepared batch (already in the input dtype) and return the raw output tensor.

        The interpreter is resized when the batch size changes and the model allows it. When LiteRT's default
        CPU delegate (XNNPACK) refuses the model (it rejects some valid int8 requantization scales, e.g. of a
        layer that outputs zeros on every calibration example), the model runs on LiteRT's built-in kernels.

        Raises:
            UserError: LiteRT cannot run the model on its built-in kernels either.
        """
        try:
            return self._invoke(batch)
        except RuntimeError as error:
            if not self._delegated:
                raise UserError(
                    f"{self.source} failed in LiteRT ({first_line(error)}); check that the model "
                    "runs where it was made, or export it again"
                ) from None
        self.interpreter = _open_interpreter(self.content, self._num_threads, self.source, False, self.exported)
        self._delegated, self._batch = False, self.input.shape[0]
        return self.invoke(batch)

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) != self._batch:
            with captured_native_output():  # a delegate that refuses the new shape prints its own lines
                self.interpreter.resize_tensor_input(self._input_index, [len(batch), *self.input_shape])
                self.interpreter.allocate_tensors()
            self._batch = len(batch)
        self.interpreter.set_tensor(self._input_index, batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output_index)

    def run(self, x: Any) -> np.ndarray:
        """Raw inputs → raw output tensor values (int8 for an int8-output model), one row per example.

        ``x`` may also be an array-like that reads its rows on demand (a data set kept on disk): it is then read
        :data:`CHUNK` rows at a time."""
        if not isinstance(x, np.ndarray) and hasattr(x, "shape") and len(x.shape) > len(self.input_shape):
            return np.concatenate([self.run(x[start : start + CHUNK]) for start in range(0, len(x), CHUNK)])
        prepared = self.quantize(self.as_batch(x))
        chunk = CHUNK if self.dynamic_batch else self.input.shape[0]
        rows = []
        for start in range(0, len(prepared), chunk):
            part = prepared[start : start + chunk]
            missing = chunk - len(part) if not self.dynamic_batch else 0
            if missing:
                part = np.concatenate([part, np.zeros((missing, *self.input_shape), part.dtype)])
            rows.append(self.invoke(part)[: len(part) - missing])
        return np.concatenate(rows).reshape(len(prepared), -1)

    def predict(self, x: Any) -> np.ndarray:
        """Raw inputs → float32 output values, shape ``(n, num_classes)``: class probabilities, an anomaly
        detector's score ``(n, 1)``, or a regression's values in target units ``(n, outputs)``."""
        return self.outputs(self.run(x))

    def outputs(self, raw: np.ndarray) -> np.ndarray:
        """Raw output tensor values → what they mean: dequantized, and a regression's z-scores mapped back to
        target units."""
        values = self.dequantize(raw)
        return values if self.output_standardization is None else self.output_standardization.invert(values)


def _open_interpreter(
    content: bytes, num_threads: int | None, source: str, delegated: bool = True, exported: bool = False
) -> Interpreter:
    """A LiteRT interpreter with its tensors allocated (``delegated``: with LiteRT's default CPU delegate), or a
    UserError naming what is wrong: LiteRT's reason (:func:`_litert_reason`), and as the fix exporting again for a
    file of an export (``exported``), converting again for a model made elsewhere."""
    export = "export it again with 'python cli.py export RUN_DIR'"
    if not content:
        fix = export if exported else "give a .tflite model, e.g. one 'python cli.py export RUN_DIR' writes"
        raise UserError(f"{source} is empty (0 bytes), not a .tflite model; {fix}")
    fix = (
        export
        if exported
        else "the file is damaged or uses an operator or version this LiteRT cannot run: convert it again with a "
        "current TensorFlow"
    )
    try:
        with captured_native_output():  # LiteRT announces its CPU delegate on stderr
            resolver = OpResolverType.AUTO if delegated else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            interpreter = Interpreter(
                model_content=content, num_threads=num_threads, experimental_op_resolver_type=resolver
            )
            interpreter.allocate_tensors()
    except ValueError as error:
        raise UserError(f"{source} is not a valid .tflite model ({_litert_reason(error)}); {fix}") from None
    except RuntimeError as error:
        raise UserError(f"{source} cannot be run by LiteRT ({_litert_reason(error)}); {fix}") from None
    return interpreter


def _litert_reason(error: Exception) -> str:
    """LiteRT's error as a short quote: its first line (LiteRT repeats a problem on one line per tensor or node), each
    sentence once (it also runs sentences together), at most :data:`REASON_CHARS` characters."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    sentences: list[str] = []
    for sentence in _SENTENCE_END.split(lines[0]) if lines else []:
        if sentence and sentence not in sentences:
            sentences.append(sentence)
    text = " ".join(sentences) or type(error).__name__
    return printable(text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1].rstrip() + "…")


@dataclass(frozen=True)
class ManifestEntry:
    """What the manifest beside a model says about it.

    Args:
        sha256: the hash of the file the manifest describes.
        class_names: the class labels (a classifier).
        threshold: the anomaly threshold (an anomaly detector), else None.
        front_end: the audio front end's parameters (a model of audio features), else None.
        standardization: the z-score the runtime applies before a model converted without its own, else None.
        failing: the export marked the model as outside its tolerance.
        target_names: a regression's output names, else None.
        output_standardization: a regression's target statistics, for a model that outputs z-scores, else None.
    """

    sha256: str | None
    class_names: list[str] | None
    threshold: float | None
    front_end: dict[str, Any] | None
    standardization: Standardization | None = None
    failing: bool = False
    target_names: list[str] | None = None
    output_standardization: Standardization | None = None


def _manifest_entry(path: Path) -> ManifestEntry | None:
    """What the manifest beside ``path`` says about it; None when there is no manifest beside it.

    Raises:
        UserError: the manifest is damaged, or does not list the file (a model dropped into an export's folder
            would otherwise run unchecked, under that export's labels).
    """
    manifest_path = path.parent / MANIFEST_NAME
    if not manifest_path.is_file():
        return None
    damaged = f"{manifest_path} is damaged; export again or remove it to run without labels"
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
        listed = isinstance(files, dict) and path.name in files
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError):
        raise UserError(damaged) from None
    if not listed:  # a model dropped beside an export's manifest would otherwise run unchecked, with its labels
        raise UserError(
            f"{path} is not listed in the {MANIFEST_NAME} beside it, so it is not a file of that export and "
            "cannot be checked; run it from a folder without that manifest, or export again"
        )
    try:
        threshold = float(manifest["anomaly"]["threshold"]) if manifest.get("task") == "anomaly" else None
        variant = next(
            (
                entry
                for entry in (manifest.get("variants") or {}).values()
                if isinstance(entry, dict) and entry.get("file") == path.name
            ),
            {},
        )
        standardization = variant.get("standardization")
        output = variant.get("output_standardization")
        target_names = manifest.get("target_names") if manifest.get("task") == "regression" else None
        entry = ManifestEntry(
            files[path.name].get("sha256"),
            _names(manifest.get("class_names")),
            threshold,
            manifest.get("front_end"),
            None if standardization is None else Standardization.from_dict(standardization, str(manifest_path)),
            variant.get("failing") is True,
            _names(target_names),
            None if output is None else Standardization.from_dict(output, str(manifest_path)),
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError):
        raise UserError(damaged) from None
    if (threshold is not None and not math.isfinite(threshold)) or _front_end_damaged(entry.front_end):
        raise UserError(damaged)
    return entry


def _names(value: Any) -> list[str] | None:
    """A manifest's class labels or target names as text; None when it has none.

    Raises:
        TypeError: not a flat list of texts or numbers (the caller reads the manifest as damaged).
    """
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(name, str | int | float) for name in value):
        raise TypeError("names must be a list of texts")
    return [str(name) for name in value]


MAX_FRONT_END_COUNT = 1 << 24  # a front end's sample, step, bin or band count: far above any real one


def _front_end_damaged(front_end: Any) -> bool:
    """Whether a manifest's front end is unusable: not a mapping, or a parameter the runtime computes features with
    of the wrong type or out of range (numpy would fail on it with a traceback, or quietly compute NaNs). A missing
    audio parameter is left to :func:`edge.mfcc.wav_features`, which names it."""
    if front_end is None:
        return False
    if not isinstance(front_end, dict):
        return True
    if front_end.get("kind") == WINDOWS:
        channels = front_end.get("channels")
        counts = ("window_steps", "stride_steps", *(("bands",) if front_end.get("front_end") == "spectral" else ()))
        rate = front_end.get("sample_rate")
        return (
            front_end.get("front_end") not in FRONT_ENDS
            or not ((_finite(rate) and rate > 0) or rate is None)  # None: series of unknown rate
            or front_end.get("lengths", "equal") not in ("equal", RESAMPLED)
            or not all(_count(front_end.get(key)) for key in counts)
            or not (isinstance(channels, list) and channels and all(isinstance(name, str) for name in channels))
        )
    counts = ("window_samples", "stride_samples", "fft_length", "mel_bins", "mfcc_coefficients")
    numbers = ("sample_rate", "lower_hz", "upper_hz", "log_offset")
    if any(key in front_end and not _count(front_end[key]) for key in counts):
        return True
    if any(key in front_end and not _finite(front_end[key]) for key in numbers):
        return True
    get = front_end.get
    return (
        (get("lower_hz", 0) < 0 or get("upper_hz", math.inf) <= get("lower_hz", 0))
        or get("log_offset", 1) <= 0
        or get("mfcc_coefficients", 1) > get("mel_bins", math.inf)
    )


def _count(value: Any) -> bool:
    """A positive whole number up to :data:`MAX_FRONT_END_COUNT` (a JSON integer, not a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_FRONT_END_COUNT


def _finite(value: Any) -> bool:
    """A finite JSON number (not a boolean)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class Inputs:
    """Raw inputs read from a file for a model, with what the file says of them.

    Args:
        x: the inputs, ``(n, *model.input_shape)``.
        labels: each example's true label as text, when the file carries labels (a ``.ts`` file's, an ``.npz``'s
            ``y``, a folder's class subfolders); None otherwise.
        notes: lines saying what reading changed (series resampled, missing values filled).
        files: each example's file, relative to the folder, when a folder was read; None otherwise.
    """

    x: np.ndarray
    labels: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    files: list[str] | None = None


def read_inputs(path: str | Path, model: EdgeModel) -> np.ndarray:
    """Read raw inputs for ``model`` from a ``.csv``, ``.npy``, ``.npz``, ``.ts``, image or ``.wav`` file.

    A CSV holds one example per row, its values in the order of the flattened input, with an
    optional header row; an ``.npy`` file one example or a batch; an image one example, converted to
    the model's channels and resized to its height and width; a ``.wav`` clip one example, turned into
    MFCCs by the front end the manifest names (:func:`edge.mfcc.wav_features`); a ``.ts`` file one series per
    example (:func:`read_labelled_inputs`).

    Returns:
        float32 array ``(n, *model.input_shape)``; an ``.npy``/``.npz`` array already in the model's quantized
        input type (:meth:`EdgeModel.takes_as_quantized`) keeps that type, to be fed as it is.

    Raises:
        UserError: a missing or unreadable file, an unknown suffix, or values that do not fit the model.
    """
    return read_labelled_inputs(path, model).x


def read_labelled_inputs(path: str | Path, model: EdgeModel) -> Inputs:
    """Read raw inputs for ``model`` as :func:`read_inputs` does, with the true labels the file carries: a ``.ts``
    file's (its series fitted to the model's length, see :func:`_read_ts`) or an ``.npz``'s array ``y``.

    Raises:
        UserError: as :func:`read_inputs`; labels that are not one per example.
    """
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, model)
    if not path.is_file():
        raise UserError(f"input file {path} does not exist; pass a {', '.join(INPUT_SUFFIXES)} file or a folder")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return Inputs(model.as_batch(_read_csv(path)))
    if suffix == ".npy":
        return Inputs(model.as_batch(_windows_to_inputs(_read_npy(path), model)))
    if suffix == ".npz":
        x = model.as_batch(_windows_to_inputs(_read_npz(path), model))
        return Inputs(x, _npz_labels(path, len(x)))
    if suffix == TS_SUFFIX:
        return _read_ts(path, model)
    if suffix in IMAGE_SUFFIXES:
        return Inputs(model.as_batch(_read_image(path, model.input_shape)))
    if suffix == WAV_SUFFIX:
        return Inputs(model.as_batch(_read_wav(path, model)))
    raise UserError(f"input file {path} has suffix '{path.suffix}'; use one of {', '.join(INPUT_SUFFIXES)}")


def _input_files(folder: Path) -> list[Path]:
    """The input files directly in ``folder`` (by suffix, sorted), hidden files and ``labels.csv`` left out."""
    return sorted(
        file
        for file in folder.iterdir()
        if file.is_file()
        and file.suffix.lower() in INPUT_SUFFIXES
        and not file.name.startswith(".")
        and file.name != LABELS_FILE
    )


def folder_files(folder: Path) -> list[tuple[Path, str | None]]:
    """The input files of ``folder`` with their true labels, labelled the way training folders are.

    A folder with one subfolder per class (as ``train --data`` takes) labels each file with its subfolder's name; a
    folder with a ``labels.csv`` (a ``file`` column of paths inside the folder and one label column, as an image
    regression's) labels each file listed; files directly in a folder without either are unlabelled (None).

    Raises:
        UserError: a folder without input files, or a malformed ``labels.csv``.
    """
    labels_file = folder / LABELS_FILE
    subfolders = sorted(
        sub for sub in folder.iterdir() if sub.is_dir() and not sub.name.startswith(".") and _input_files(sub)
    )
    if labels_file.is_file():
        files = [(folder / name, label) for name, label in _listed_labels(labels_file)]
    elif subfolders:
        files = [(file, sub.name) for sub in subfolders for file in _input_files(sub)]
    else:
        files = [(file, None) for file in _input_files(folder)]
    if not files:
        raise UserError(
            f"folder {folder} holds no input files ({', '.join(INPUT_SUFFIXES)}) directly or in class subfolders; "
            "pass a file or a folder of them"
        )
    return files


def _read_files(folder: Path, files: list[tuple[Path, str | None]], model: EdgeModel) -> Inputs:
    """The examples of ``files`` (from :func:`folder_files`), each file giving its examples (a WAV clip or an image
    one, a CSV or array file its rows) with the file's label and its path inside ``folder``."""
    parts, labels, names, notes = [], [], [], []
    for file, label in files:
        inputs = read_labelled_inputs(file, model)
        parts.append(inputs.x)
        names += [file.relative_to(folder).as_posix()] * len(inputs.x)
        labels += [label] * len(inputs.x)
        notes += inputs.notes
    labelled = None if all(label is None for label in labels) else [str(label) for label in labels]
    return Inputs(np.concatenate(parts), labelled, notes, names)


def _unknown_labels_note(folder: Path, files: list[tuple[Path, str | None]], model: EdgeModel) -> list[str]:
    """The note naming the labels of ``files`` that name no class of a classifier (they count wrong)."""
    unknown = sorted({label for _, label in files if label is not None} - set(model.class_names))
    if not unknown or model.task != "classification":
        return []
    return [
        f"{len(unknown)} label(s) of {folder} name no class of {model.source} (counted wrong): "
        + ", ".join(printable(name) for name in unknown[:5])
    ]


def _read_folder(folder: Path, model: EdgeModel) -> Inputs:
    """Every input file of ``folder`` (:func:`folder_files`) read at once, with labels and paths."""
    files = folder_files(folder)
    inputs = _read_files(folder, files, model)
    inputs.notes += _unknown_labels_note(folder, files, model)
    return inputs


FOLDER_CHUNK_FILES = 256  # predict reads and runs a folder this many files at a time: memory bounded by the chunk


def _predict_folder(model: EdgeModel, folder: Path, k: int) -> list[Any]:
    """The predictions of every file of ``folder``, read and run :data:`FOLDER_CHUNK_FILES` files at a time, each
    with its file (:class:`FilePrediction`) and, in a labelled folder, its true label (:class:`LabelledPrediction`)."""
    files = folder_files(folder)
    notes = _unknown_labels_note(folder, files, model)
    predictions: list[Any] = []
    for start in range(0, len(files), FOLDER_CHUNK_FILES):
        inputs = _read_files(folder, files[start : start + FOLDER_CHUNK_FILES], model)
        notes += inputs.notes
        offset = len(predictions)
        chunk = [
            FilePrediction(replace(one, index=one.index + offset), file)
            for one, file in zip(PREDICTIONS[model.task](model, inputs.x, k), inputs.files or [], strict=True)
        ]
        if inputs.labels is not None and model.task != "anomaly":
            chunk = [LabelledPrediction(one, label) for one, label in zip(chunk, inputs.labels, strict=True)]
        predictions += chunk
    model.input_notes = notes
    return predictions


LABELS_FILE = "labels.csv"


def _listed_labels(path: Path) -> list[tuple[str, str]]:
    """(file, label) of each row of a folder's ``labels.csv``: its ``file`` column and its one other column."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{path} cannot be read ({first_line(error)}); write it as UTF-8 CSV") from None
    header = [cell.strip() for cell in rows[0]] if rows else []
    if "file" not in header or len(header) != 2:
        raise UserError(
            f"{path} must have a header of two columns, 'file' and the label (has {header[:4]}); predict scores "
            "one label column"
        )
    column = header.index("file")
    listed = []
    for line, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise UserError(f"{path} line {line} has {len(row)} fields, not 2; give a file and its label")
        name = row[column].strip()
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise UserError(f"{path} line {line} names {name!r}, outside the folder; give paths inside it")
        listed.append((name, row[1 - column].strip()))
    return listed


def _read_ts(path: Path, model: EdgeModel) -> Inputs:
    """The series of a UCR/UEA ``.ts`` file through the model's front end, with their labels.

    A model trained on series of unequal length (its front end's ``lengths`` is ``"resampled"``) takes series of
    any length, each linearly resampled to its length (:func:`recipes.series_files.fit_length`, as training did); a
    model trained on equal lengths takes series of its own length only.
    """
    series_file = read_ts(path)
    notes = [f"{path.name}: {note}"] if (note := series_file.note()) else []
    front_end = model.front_end or {}
    if front_end.get("kind") != WINDOWS:
        if len(set(series_file.lengths)) > 1:
            raise UserError(
                f"{path} holds series of unequal length, and {model.source} has no series front end (in a "
                "manifest.json beside it) saying how to fit them to its input; give series of equal length"
            )
        return Inputs(model.as_batch(np.stack(series_file.series)), series_file.labels, notes)
    steps, channels = front_end["window_steps"], front_end["channels"]
    dimensions = series_file.series[0].shape[1]
    if dimensions != len(channels):
        raise UserError(
            f"{path} has {dimensions} dimension(s) per series; {model.source} takes {len(channels)} "
            f"({', '.join(channels)})"
        )
    if front_end.get("lengths") != RESAMPLED:
        for line, length in zip(series_file.lines, series_file.lengths, strict=True):
            if length != steps:
                raise UserError(
                    f"{path} line {line}: a series of {length} steps; {model.source} was trained on series of "
                    f"{steps} steps, all of equal length, and takes only those"
                )
    x, resampled = fit_length(series_file.series, steps)
    if resampled:
        notes.append(f"{path.name}: resampled {resampled} of {len(x)} series to the model's {steps} steps (linear)")
    return Inputs(model.as_batch(model_inputs(x, front_end)), series_file.labels, notes)


def _read_csv(path: Path) -> np.ndarray:
    """Numeric rows of a CSV; a first row that holds no number is taken as the header (a first row with some
    numbers is data, so a bad value there is reported, not dropped as a header)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [(number, row) for number, row in enumerate(csv.reader(handle), 1) if any(c.strip() for c in row)]
    except (UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"CSV file {path} cannot be read ({first_line(error)}); save it as UTF-8 CSV") from None
    first = rows[0][0] if rows else 0
    if rows and not any(is_number(cell) for cell in rows[0][1]):
        rows = rows[1:]
    if not rows:
        raise UserError(f"CSV file {path} has no data rows; write one example per row")
    width = len(rows[0][1])
    values = []
    for number, row in rows:
        if len(row) != width:
            raise UserError(
                f"CSV file {path} line {number} has {len(row)} values but line {rows[0][0]} has {width}; "
                "give every example the same number of values"
            )
        bad = next((cell for cell in row if not is_number(cell)), None)
        if bad is None:
            values.append([float(cell) for cell in row])
        else:
            header = " (a header row names every column)" if number == first else ""
            raise UserError(
                f"CSV file {path} line {number} holds '{quoted(bad)}', which is not a number{header}; "
                "give raw numeric values only"
            )
    return np.asarray(values, dtype=np.float64)


def _read_npy(path: Path) -> np.ndarray:
    """An array from an ``.npy`` file, never unpickling; its header's size is checked before anything is read."""
    try:
        with path.open("rb") as handle:
            _check_array_header(handle, path)
        return np.load(path, allow_pickle=False)
    except UserError:
        raise
    except (OSError, ValueError, EOFError, SyntaxError, tokenize.TokenError) as error:  # numpy parses headers as Python
        reason = "its header is damaged" if isinstance(error, SyntaxError | tokenize.TokenError) else first_line(error)
        raise UserError(
            f"{path} is not a readable .npy file of numbers ({reason}); save it with np.save(path, array)"
        ) from None


def _check_array_header(handle: Any, path: Path, what: str = "") -> None:
    """Read an ``.npy`` header from ``handle`` (``what``: the array's name in ``path``, e.g. ``": array 'x'"``) and
    refuse an array of Python objects or one larger than :data:`MAX_ARRAY_BYTES`."""
    refusal = array_header_refusal(handle, f"{path}{what}", "predict smaller batches", "save an array of numbers")
    if refusal is not None:
        raise UserError(refusal)


def _read_npz(path: Path, name: str = "x", required: bool = True) -> np.ndarray | None:
    """Array ``name`` of an ``.npz`` file (never unpickling; None when it is missing and not ``required``); its zip
    entry's declared size and its header's are checked before it is read."""
    import zipfile
    import zlib

    try:
        with zipfile.ZipFile(path) as archive:
            if f"{name}.npy" in archive.namelist():
                info = archive.getinfo(f"{name}.npy")
                refusal = zip_too_large(f"{path}: array '{name}'", [info], MAX_ARRAY_BYTES, "predict smaller batches")
                if refusal is not None:
                    raise UserError(refusal)
                with archive.open(info) as handle:
                    _check_array_header(handle, path, f": array '{name}'")
        with np.load(path, allow_pickle=False) as archive:
            if name not in archive.files:
                if not required:
                    return None
                raise UserError(
                    f"{path} has no array '{name}' (arrays: {', '.join(archive.files) or 'none'}); save inputs as x"
                )
            return archive[name]
    except UserError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, SyntaxError, tokenize.TokenError) as error:
        damaged = isinstance(error, SyntaxError | tokenize.TokenError)  # numpy parses headers as Python
        reason = f"array '{name}' has a damaged header" if damaged else first_line(error)
        raise UserError(
            f"{path} is not a readable .npz file ({reason}): it is damaged or cut short; "
            "save it again with np.savez(path, x=...)"
        ) from None


def _npz_labels(path: Path, count: int) -> list[str] | None:
    """The true labels an ``.npz`` carries beside its inputs (array ``y``, one per example), as text; None when it
    has none."""
    y = _read_npz(path, "y", required=False)
    if y is None:
        return None
    y = y.reshape(len(y), -1)[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1 or len(y) != count or y.dtype.kind not in "biufUS":
        raise UserError(f"{path}: array 'y' has shape {y.shape}; give one label per example of x, or leave y out")
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)  # as training reads whole numbers
    return [value.decode() if isinstance(value, bytes) else str(value) for value in y.tolist()]


def _windows_to_inputs(array: np.ndarray, model: EdgeModel) -> np.ndarray:
    """Raw windows ``(n, steps, channels)`` of a stream model through its front end (one channel's also as
    ``(n, steps)``); any other array as it is."""
    front_end = model.front_end or {}
    if front_end.get("kind") != WINDOWS:
        return array
    one_channel = len(front_end["channels"]) == 1 and front_end["front_end"] != "raw"
    if one_channel and array.ndim == 2 and array.shape[1] == front_end["window_steps"] != model.input_shape[-1]:
        array = array[..., np.newaxis]  # (n, steps) series of one channel, not (n, features)
    if array.ndim != 3:
        return array
    shape = (front_end["window_steps"], len(front_end["channels"]))
    if array.shape[1:] != shape:
        raise UserError(
            f"input holds windows of shape {array.shape[1:]}; {model.source} takes windows of {shape[0]} "
            f"samples of {shape[1]} channels ({', '.join(front_end['channels'])})"
        )
    return model_inputs(array, front_end)


def _read_image(path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """One image as raw pixel values shaped like the model's input (channels and size)."""
    if len(input_shape) != 3:
        raise UserError(
            f"{path} is an image but the model takes examples of shape {input_shape}; give a .csv or .npy file"
        )
    try:
        from PIL import Image
    except ImportError:
        raise UserError("reading images needs Pillow; pip install pillow, or give a .csv or .npy file") from None
    height, width, channels = input_shape
    if channels not in (1, 3):
        shape = ", ".join(map(str, input_shape))
        if input_shape[0] in (1, 3):  # (channels, height, width): a model converted from PyTorch or ONNX
            raise UserError(
                f"the model takes channels-first (NCHW) images of shape ({shape}), which predict reads only as a "
                f".npy file already in that layout: give one of shape (n, {shape}) instead of {path.name}"
            )
        raise UserError(
            f"the model takes {channels}-channel images; give a .npy file of shape (n, {shape}) instead of {path.name}"
        )
    try:
        with open_image(path) as image:  # reads the header only
            refusal = image_too_large(path, *image.size)
            if refusal is not None:
                raise UserError(refusal)
            image = image.convert("F" if channels == 1 else "RGB")
            if (image.height, image.width) != (height, width):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32)
    except UserError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise UserError(f"image {path} cannot be read ({first_line(error)}); replace the file") from None
    if channels == 1:
        pixels = pixels[..., np.newaxis]
    return pixels[np.newaxis]


def _read_wav(path: Path, model: EdgeModel) -> np.ndarray:
    """One clip's MFCCs, computed by the front end of the manifest beside the model."""
    if model.front_end is None:
        shape = ", ".join(map(str, model.input_shape))
        raise UserError(
            f"{path} is a WAV clip but {model.source} has no audio front end (none in a manifest.json "
            f"beside it); give its input features instead, a .npy file of shape (n, {shape})"
        )
    from edge.mfcc import wav_features

    return wav_features(path, model.front_end)


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


def anomaly_scores(model: EdgeModel, x: Any) -> list[AnomalyPrediction]:
    """Each example's anomaly score and decision at ``model.threshold``.

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


def regression_values(model: EdgeModel, x: Any) -> list[ValuePrediction]:
    """Each example's values in target units, and which int8 outputs sat at their limits."""
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


# What predict prints per example, by what the model's outputs are (EdgeModel.task).
PREDICTIONS = {
    "classification": lambda model, x, k: top_k(model.predict(x), model.class_names, k),
    "anomaly": lambda model, x, k: anomaly_scores(model, x),
    "regression": lambda model, x, k: regression_values(model, x),
}


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
        predictions = PREDICTIONS[model.task](model, model.as_batch(windows.x), k)
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
    predictions = PREDICTIONS[model.task](model, inputs.x, k)
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


def main(argv: list[str] | None = None) -> int:
    """``python predict.py MODEL --input FILE [--top-k K] [--threads N] [--json]``: the export bundle's command,
    printing what ``python cli.py predict`` prints (a mistake: one ``error:`` line on stderr, status 2)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="Run an exported model with LiteRT and numpy (no TensorFlow).")
    parser.add_argument("model", help="a .tflite file of this export (its manifest.json beside it)")
    parser.add_argument(
        "--input", "-i", required=True, help="a .csv, .npy, .npz, .ts, image or .wav file of raw inputs"
    )
    parser.add_argument("--top-k", type=int, default=3, help="classes shown per example (classifiers)")
    parser.add_argument("--threads", type=int, default=None, help="LiteRT CPU threads")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    options = parser.parse_args(argv)
    try:
        model, predictions = predict_file(options.model, options.input, options.top_k, options.threads)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text, warning = prediction_report(model, predictions, options.json)
    if warning:
        print(warning, file=sys.stderr)
    try:
        print(text, flush=True)
    except BrokenPipeError:  # the reader stopped early (predict.py ... | head): end quietly, as command-line tools do
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that Python's exit flush has a sink
    return 0
