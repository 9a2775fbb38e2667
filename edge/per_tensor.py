"""Per-tensor weight quantization, layer by layer, where it keeps the int8 model as faithful as per-channel.

The converter quantizes every convolution, depthwise convolution and dense layer's int8 weights per output
channel: a float32 scale and an int64 zero point per channel (12 bytes each), which is most of what a small
model's file holds beyond one byte per weight (ds_cnn: 14 KB of 44 KB). One scale per tensor costs 12 bytes in
all, and loses little where the channels' ranges are alike, which :func:`narrow_quantization` measures per layer.

The file that ships also leaves out the names of constant tensors, which nothing reads. The rewrite is exact
arithmetic on what the converter wrote, with no second conversion: a layer's per-tensor
scale is its largest channel scale ``S = max s_c`` (symmetric int8, as the converter would choose), each
weight becomes ``round(q * s_c / S)``, and the int32 bias, whose scale is the input scale times the weight
scale, becomes ``round(b * s_c / S)``. TFLite Micro and LiteRT run both forms with the same kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.flatbuffer import read_model

WEIGHTED_OPERATORS = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1}  # operator: weights input index
BIAS_INPUT = 2
BUFFER_ALIGNMENT = 16  # the converter aligns each buffer to 16 bytes; kernels may rely on it
QUANTIZATION_BYTES_PER_CHANNEL = 12  # a float32 scale and an int64 zero point
TOLERANCE = 0.1  # the error may grow by 10% over the all-per-channel model's


@dataclass(frozen=True)
class PerChannelLayer:
    """One operator whose int8 weights are quantized per output channel.

    Args:
        operator: the operator's index in the main subgraph.
        kind: its builtin name, e.g. ``"CONV_2D"``.
        weights: the weight tensor's index.
        bias: the bias tensor's index, or -1 when it has none.
        channels: how many per-channel scales it holds.
        name: the weight tensor's name, for reports.
    """

    operator: int
    kind: str
    weights: int
    bias: int
    channels: int
    name: str

    @property
    def saving(self) -> int:
        """Bytes saved by one scale and zero point instead of one per channel, for weights and bias."""
        tensors = 2 if self.bias >= 0 else 1
        return (self.channels - 1) * QUANTIZATION_BYTES_PER_CHANNEL * tensors


@dataclass
class NarrowingResult:
    """What :func:`narrow_quantization` chose.

    Args:
        content: the flatbuffer, with the chosen layers per-tensor (the input when none was chosen).
        per_tensor: the layers made per-tensor.
        per_channel: the layers kept per-channel, because per-tensor made the model less faithful.
        error: the measured error of the result.
        baseline_error: the measured error of the all-per-channel model.
        fell_back: the chosen model was then found outside its tolerance elsewhere, and the per-channel one was
            kept.
    """

    content: bytes
    per_tensor: list[PerChannelLayer]
    per_channel: list[PerChannelLayer]
    error: float
    baseline_error: float
    fell_back: bool = False

    def summary(self) -> str:
        """One line for the export's output, e.g. ``4 of 5 layers per tensor (11,520 bytes smaller)``."""
        layers = len(self.per_tensor) + len(self.per_channel)
        if self.fell_back:
            return f"per channel: per tensor in {len(self.per_tensor)} of {layers} layers was outside the tolerance"
        saved = sum(layer.saving for layer in self.per_tensor)
        rest = ", the rest per channel" if self.per_channel else ""
        return f"{len(self.per_tensor)} of {layers} layers per tensor ({saved:,} bytes smaller){rest}"

    def to_dict(self) -> dict[str, object]:
        """The choice as plain data for the export report."""
        return {
            "per_tensor": [layer.name for layer in self.per_tensor],
            "per_channel": [layer.name for layer in self.per_channel],
            "bytes_saved": sum(layer.saving for layer in self.per_tensor),
            "error": self.error,
            "baseline_error": self.baseline_error,
            "fell_back_to_per_channel": self.fell_back,
        }


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _operator_names(schema) -> dict[int, str]:
    return {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}


def per_channel_layers(content: bytes) -> list[PerChannelLayer]:
    """The convolution, depthwise and dense operators of the main subgraph with per-channel int8 weights (weights
    and bias used by no other operator)."""
    schema = _schema()
    model = schema.ModelT.InitFromObj(read_model(content))
    graph = model.subgraphs[0]
    names = _operator_names(schema)
    uses: dict[int, int] = {}
    for operator in graph.operators:
        for index in operator.inputs:
            uses[int(index)] = uses.get(int(index), 0) + 1
    layers = []
    for position, operator in enumerate(graph.operators):
        code = model.operatorCodes[operator.opcodeIndex]
        kind = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "")
        if kind not in WEIGHTED_OPERATORS or len(operator.inputs) <= WEIGHTED_OPERATORS[kind]:
            continue
        weights = int(operator.inputs[WEIGHTED_OPERATORS[kind]])
        tensor = graph.tensors[weights]
        quantization = tensor.quantization
        if tensor.type != schema.TensorType.INT8 or quantization is None or quantization.scale is None:
            continue
        if len(quantization.scale) < 2 or uses.get(weights) != 1:
            continue
        bias = int(operator.inputs[BIAS_INPUT]) if len(operator.inputs) > BIAS_INPUT else -1
        if bias >= 0 and (graph.tensors[bias].type != schema.TensorType.INT32 or uses.get(bias) != 1):
            continue
        name = (tensor.name or b"").decode("utf-8", "replace")
        layers.append(PerChannelLayer(position, kind, weights, bias, len(quantization.scale), name))
    return layers


def make_per_tensor(content: bytes, layers: list[PerChannelLayer], constant_names: bool = True) -> bytes:
    """The flatbuffer with ``layers`` (from :func:`per_channel_layers` on the same content) quantized per tensor.

    ``constant_names=False`` also drops the names of constant tensors (weights, biases, shapes): the converter
    names them after the operator that uses them or ``arith.constant<n>``, which no runtime reads, and they take
    1-2% of a small model's file. Activations, inputs and outputs keep their names.
    """
    if not layers and constant_names:
        return content
    schema = _schema()
    model = schema.ModelT.InitFromObj(read_model(content))
    graph = model.subgraphs[0]
    if not constant_names:
        for tensor in graph.tensors:
            data = model.buffers[tensor.buffer].data
            if data is not None and len(data):
                tensor.name = b""
    for layer in layers:
        tensor = graph.tensors[layer.weights]
        scales = np.asarray(tensor.quantization.scale, dtype=np.float64)
        largest = float(scales.max())
        axis = tensor.quantization.quantizedDimension
        shape = [1] * len(tensor.shape)
        shape[axis] = len(scales)
        ratio = (scales / largest).reshape(shape)
        weights = np.frombuffer(bytes(model.buffers[tensor.buffer].data), dtype=np.int8).reshape(tuple(tensor.shape))
        _store(model, tensor, np.clip(np.round(weights * ratio), -127, 127).astype(np.int8))
        tensor.quantization.scale = [np.float32(largest)]
        tensor.quantization.zeroPoint = [0]
        tensor.quantization.quantizedDimension = 0
        if layer.bias >= 0:
            bias = graph.tensors[layer.bias]
            data = model.buffers[bias.buffer].data
            if data is not None and len(data):
                values = np.frombuffer(bytes(data), dtype="<i4")
                rounded = np.round(values * (scales / largest))
                _store(model, bias, np.clip(rounded, -(2**31), 2**31 - 1).astype("<i4"))
            bias_scale = float(np.max(np.asarray(bias.quantization.scale, dtype=np.float64) / scales)) * largest
            bias.quantization.scale = [np.float32(bias_scale)]
            bias.quantization.zeroPoint = [0]
            bias.quantization.quantizedDimension = 0
    return _pack(schema, model)


def _store(model, tensor, values: np.ndarray) -> None:
    """Make ``values`` the data of ``tensor``. The converter gives constants with the same bytes one buffer; such a
    shared buffer keeps its bytes for the other tensors, and ``tensor`` gets a buffer of its own when its new bytes
    differ (a zero bias stays zero and stays shared)."""
    data = np.frombuffer(values.tobytes(), dtype=np.uint8)
    buffer = model.buffers[tensor.buffer]
    if np.array_equal(data, np.asarray(buffer.data, dtype=np.uint8)):
        return
    if sum(other.buffer == tensor.buffer for other in model.subgraphs[0].tensors) > 1:
        schema = _schema()
        buffer = schema.BufferT()
        model.buffers.append(buffer)
        tensor.buffer = len(model.buffers) - 1
    buffer.data = data


def _pack(schema, model) -> bytes:
    """Serialize a ``ModelT`` with every byte vector (the buffers) aligned as the converter aligns them."""
    import flatbuffers

    class AlignedBuilder(flatbuffers.Builder):
        def CreateNumpyVector(self, x):  # noqa: N802  (flatbuffers' name)
            if x.dtype != np.uint8:
                return super().CreateNumpyVector(x)
            self.StartVector(1, x.size, BUFFER_ALIGNMENT)
            payload = x.tobytes()
            self.head = self.head - len(payload)
            self.Bytes[self.head : self.head + len(payload)] = payload
            self.vectorNumElems = x.size
            return self.EndVector()

    builder = AlignedBuilder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def narrow_quantization(content: bytes, error: Callable[[bytes], float], tolerance: float = 0.1) -> NarrowingResult:
    """Make layers per-tensor one at a time while the model stays as faithful as its per-channel form.

    Each layer is tried alone first; then, from the least harmful per byte saved, each is added to the layers
    already chosen and kept when the model's error stays within ``(1 + tolerance)`` times the per-channel
    model's. A layer whose channels' ranges differ widely (BatchNorm folded into a convolution) stays
    per-channel.

    Args:
        content: a full-integer flatbuffer as the converter wrote it.
        error: the model's error against the float model on held-out inputs (lower is better), e.g. the mean
            absolute difference of its outputs from Keras's on calibration examples.
        tolerance: the relative growth of that error allowed, for all layers together.

    Returns:
        The chosen flatbuffer and what was chosen.
    """
    layers = per_channel_layers(content)
    baseline = error(content)
    if not layers:
        return NarrowingResult(content, [], [], baseline, baseline)
    budget = baseline * (1 + tolerance)
    alone = {layer.operator: error(make_per_tensor(content, [layer])) for layer in layers}
    order = sorted(layers, key=lambda layer: max(alone[layer.operator] - baseline, 0.0) / layer.saving)
    chosen: list[PerChannelLayer] = []
    best, best_error = content, baseline
    for layer in order:
        if alone[layer.operator] > budget:
            continue
        trial = make_per_tensor(content, [*chosen, layer])
        trial_error = error(trial)
        if trial_error <= budget:
            chosen.append(layer)
            best, best_error = trial, trial_error
    kept = [layer for layer in layers if layer not in chosen]
    if chosen:
        best = make_per_tensor(content, chosen, constant_names=False)
    return NarrowingResult(best, sorted(chosen, key=lambda layer: layer.operator), kept, best_error, baseline)


def narrow_against_keras(
    content: bytes, model: Any, representative: np.ndarray, standardization: Any = None, tolerance: float = TOLERANCE
) -> NarrowingResult:
    """:func:`narrow_quantization` with the error measured against the Keras model on the calibration examples.

    Args:
        content: the full-integer flatbuffer converted from ``model``.
        model: the Keras model it was converted from, taking z-scores when ``standardization`` is given.
        representative: raw calibration examples (held apart from the test split).
        standardization: the z-score the runtime applies in front of the flatbuffer, or None.
        tolerance: see :func:`narrow_quantization`.
    """
    from edge.device.model import EdgeModel

    x = representative if standardization is None else standardization.apply(representative)
    reference = np.asarray(model.predict(x, verbose=0))

    def error(candidate: bytes) -> float:
        edge_model = EdgeModel(candidate, standardization=standardization)
        return output_error(reference, edge_model.dequantize(edge_model.run(representative)))

    return narrow_quantization(content, error, tolerance)


def output_error(reference: np.ndarray, outputs: np.ndarray) -> float:
    """The mean absolute difference of ``outputs`` from ``reference``, column by column in units of the
    reference column's standard deviation (so that outputs in different units weigh alike), averaged. A column
    that barely varies is measured in units of a thousandth of the largest reference value instead."""
    reference = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    outputs = np.asarray(outputs, dtype=np.float64).reshape(reference.shape)
    spread = np.maximum(reference.std(axis=0), 1e-3 * float(np.abs(reference).max()))
    spread = np.where(spread > 0, spread, 1.0)
    return float(np.mean(np.abs(outputs - reference).mean(axis=0) / spread))
