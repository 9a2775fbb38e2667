"""Where an int8 model loses accuracy: the error of every int8 activation against the float model's, per tensor.

The int8 model and a float32 conversion of the same Keras graph name their tensors alike, so both are run on
the same examples with every intermediate tensor kept, and each int8 activation (the model input and every
operator's output) is compared with its float counterpart, channel by channel (the last axis):

- ``signal_lost``: the mean over channels of min(1, MSE_c / Var_c), where MSE_c is the mean squared difference
  between the dequantized int8 values and the float ones and Var_c the float values' variance: 0 when int8
  follows the float model, 1 when a channel carries nothing of it any more (a feature rounded to one level);
- ``added``: ``signal_lost`` minus the largest ``signal_lost`` among the operator's activation inputs (at
  least 0; the input's is its own): the loss this operator brings. Rows are sorted by it, worst first, so the
  first row names the culprit: with raw sensor features quantized on one scale it is the input itself;
- ``worst_channel`` and its loss, ``clipped`` (the share of float values more than a step outside the int8
  tensor's range),
  ``scale`` and ``zero_point``.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from edge.device.native_output import captured_native_output

EXAMPLES = 256  # examples compared: enough for per-channel variances, cheap for any model here
CONSTANT_VARIANCE = 1e-12


@dataclass
class LayerError:
    """One int8 activation against the float model's.

    Args:
        tensor: the tensor's name in both flatbuffers.
        op: the operator producing it (``INPUT`` for the model input).
        order: position in execution order (0: the input).
        shape: the tensor's shape for the compared batch.
        scale: its int8 scale.
        zero_point: its int8 zero point.
        signal_lost: mean over channels of min(1, MSE / variance) against the float values.
        added: ``signal_lost`` beyond the worst of the operator's inputs (what this operator loses).
        worst_channel: the channel (last-axis index) with the largest loss.
        worst_channel_lost: that channel's min(1, MSE / variance).
        clipped: share of float values outside the int8 range of the tensor.
    """

    tensor: str
    op: str
    order: int
    shape: list[int]
    scale: float
    zero_point: int
    signal_lost: float
    added: float
    worst_channel: int
    worst_channel_lost: float
    clipped: float

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``quantization.json``."""
        return asdict(self)

    def to_line(self) -> str:
        """One line for the console."""
        return (
            f"{self.op:<15} {self.tensor[:48]:<48} lost {self.signal_lost:5.1%} (+{self.added:5.1%}), worst "
            f"channel {self.worst_channel} {self.worst_channel_lost:5.1%}, clipped {self.clipped:.1%}"
        )


def _interpreter(content: bytes) -> Interpreter:
    with captured_native_output(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LiteRT warns that preserving every tensor is for debugging: it is
        return Interpreter(
            model_content=content,
            experimental_preserve_all_tensors=True,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )


def _run_all(
    content: bytes, batch: np.ndarray
) -> tuple[dict[str, np.ndarray], list[dict[str, Any]], dict[str, Any], str]:
    """Run one batch keeping every tensor; return values by tensor name, the operators, the tensor details and the
    model input's name."""
    interpreter = _interpreter(content)
    detail = interpreter.get_input_details()[0]
    if tuple(detail["shape"]) != batch.shape:
        interpreter.resize_tensor_input(detail["index"], list(batch.shape))
    with captured_native_output():
        interpreter.allocate_tensors()
        interpreter.set_tensor(detail["index"], batch)
        interpreter.invoke()
    details = {item["name"]: item for item in interpreter.get_tensor_details()}
    values = {}
    for name, item in details.items():
        try:
            values[name] = np.array(interpreter.get_tensor(item["index"]))
        except ValueError:  # tensors without data (optional inputs)
            continue
    return values, interpreter._get_ops_details(), details, str(detail["name"])


def layer_errors(
    float_content: bytes, int8_content: bytes, float_inputs: np.ndarray, int8_inputs: np.ndarray
) -> list[LayerError]:
    """Compare every int8 activation with the float model's, worst ``added`` loss first.

    Args:
        float_content: a float32 conversion of the same Keras graph as ``int8_content``.
        int8_content: the full-integer model.
        float_inputs: examples as the float model takes them (at most :data:`EXAMPLES` are used).
        int8_inputs: the same examples as the int8 model takes them (quantized).

    Returns:
        One row per int8 activation that has a float counterpart of the same name and shape.
    """
    count = min(EXAMPLES, len(float_inputs))
    float_values = _run_all(float_content, np.ascontiguousarray(float_inputs[:count]))[0]
    int8_values, operators, details, input_name = _run_all(int8_content, np.ascontiguousarray(int8_inputs[:count]))
    producers: dict[int, tuple[int, dict[str, Any]]] = {}
    for order, operator in enumerate(operators, 1):
        for index in operator["outputs"]:
            producers[int(index)] = (order, operator)
    by_index = {int(item["index"]): name for name, item in details.items()}
    rows: dict[str, LayerError] = {}
    inputs_of: dict[str, list[str]] = {}
    for name, item in details.items():
        index = int(item["index"])
        scale, zero_point = item["quantization"]
        if name not in float_values or name not in int8_values or scale == 0 or np.dtype(item["dtype"]).kind != "i":
            continue
        produced = producers.get(index)
        if produced is None and name != input_name:
            continue  # a constant (weights, biases)
        reference = float_values[name].astype(np.float64)
        quantized = int8_values[name]
        if reference.shape != quantized.shape:
            continue
        dequantized = (quantized.astype(np.float64) - zero_point) * scale
        lost, worst, worst_lost = _signal_lost(reference, dequantized)
        limits = np.iinfo(item["dtype"])
        low, high = (limits.min - zero_point) * scale, (limits.max - zero_point) * scale
        clipped = float(np.mean((reference < low - scale) | (reference > high + scale)))
        order, operator = produced if produced is not None else (0, {"op_name": "INPUT", "inputs": []})
        rows[name] = LayerError(
            name,
            str(operator["op_name"]),
            order,
            list(quantized.shape),
            float(scale),
            int(zero_point),
            lost,
            lost,
            worst,
            worst_lost,
            clipped,
        )
        inputs_of[name] = [by_index[int(source)] for source in operator["inputs"] if int(source) in by_index]
    for name, row in rows.items():
        upstream = [rows[source].signal_lost for source in inputs_of[name] if source in rows]
        row.added = max(0.0, row.signal_lost - max(upstream)) if upstream else row.signal_lost
    return sorted(rows.values(), key=lambda row: (-round(row.added, 6), row.order))


def _signal_lost(reference: np.ndarray, actual: np.ndarray) -> tuple[float, int, float]:
    """Mean over last-axis channels of min(1, MSE / variance); the worst channel and its loss."""
    channels = reference.shape[-1] if reference.ndim > 1 else 1
    reference = reference.reshape(-1, channels)
    actual = actual.reshape(-1, channels)
    variance = reference.var(axis=0)
    error = ((actual - reference) ** 2).mean(axis=0)
    varying = variance > CONSTANT_VARIANCE
    if not varying.any():
        return 0.0, 0, 0.0
    lost = np.where(varying, np.minimum(1.0, error / np.where(varying, variance, 1.0)), 0.0)
    worst = int(np.argmax(lost))
    return float(lost[varying].mean()), worst, float(lost[worst])
