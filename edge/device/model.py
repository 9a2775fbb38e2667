"""An exported ``.tflite`` model in LiteRT, with what its manifest says about it (:class:`EdgeModel`).

It quantizes raw inputs for int8 models and dequantizes their outputs; it reads from the ``manifest.json`` that
``python cli.py export`` writes beside the model (checking that the manifest describes this file) the class labels
of a classifier, the threshold of an anomaly detector (whose one output is its anomaly score: an anomaly when the
score is at or above the threshold), or the target names of a regression (an int8 regression outputs z-scores: the
manifest's output standardization maps them back), and the front end of series and audio models. LiteRT and numpy
only: this package imports no TensorFlow, Keras or tfmot.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from edge.device.errors import UserError, first_line, printable
from edge.device.manifest import MANIFEST_NAME, manifest_entry
from edge.device.native_output import captured_native_output
from edge.device.preflight import preflight
from edge.device.preprocessing import Standardization

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
        front_end: for a model of audio features, the front end's parameters (see :mod:`edge.device.mfcc`).
        standardization: the z-score to apply to raw inputs before the model (a full-integer model is
            converted without its z-score layer, see :mod:`edge.device.preprocessing`); None when the model takes
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
        task: str | None = None,
    ) -> None:
        self.source = source
        self._task = task
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
        """What the model's outputs are, a row of :data:`edge.device.tasks.TASKS`: the manifest's ``task``; for a
        model without one, ``"anomaly"`` (a score, with a threshold), ``"regression"`` (values, with target names)
        or ``"classification"`` (class probabilities)."""
        if self._task is not None:
            return self._task
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
            task=self._task,
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
                (:func:`edge.device.preflight.preflight`, run for such models only: an export's own were run when
                exported).
        """
        path = Path(path)
        if path.is_dir():
            raise UserError(f"{path} is a folder; pass a .tflite file, e.g. {path / 'edge' / 'model_int8.tflite'}")
        if not path.is_file():
            raise UserError(f"model file {path} does not exist; export one with 'python cli.py export RUN_DIR'")
        content = path.read_bytes()
        entry = manifest_entry(path)
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
            task=entry.task,
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
        (:mod:`edge.device.preprocessing`), then round(x / scale) + zero point, saturated, for an integer input.

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
