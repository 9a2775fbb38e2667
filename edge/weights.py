"""What a ``.tflite`` file's weights cost: their sparsity, and the file's gzip size.

Sparsity is measured on the exported bytes, not on the Keras model: the weight (filter) tensor of every
FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D operator is read from the flatbuffer with the schema LiteRT
ships (through the DEQUANTIZE that feeds it in a float16 model), and the share of exactly-zero values is
counted. The gzip size (level 9) is what a device's storage or an over-the-air update pays.
"""

from __future__ import annotations

import gzip

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from edge.flatbuffer import read_model

GZIP_LEVEL = 9
WEIGHT_OPERATORS = frozenset(
    {schema.BuiltinOperator.FULLY_CONNECTED, schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.DEPTHWISE_CONV_2D}
)
_DTYPES = {
    schema.TensorType.FLOAT32: np.float32,
    schema.TensorType.FLOAT16: np.float16,
    schema.TensorType.INT8: np.int8,
    schema.TensorType.UINT8: np.uint8,
    schema.TensorType.INT16: np.int16,
}


def gzip_size(content: bytes) -> int:
    """Bytes of ``content`` compressed by gzip at level 9 (no timestamp, so the size is reproducible)."""
    return len(gzip.compress(content, compresslevel=GZIP_LEVEL, mtime=0))


def _constant(
    model: schema.Model, graph: schema.SubGraph, tensor_index: int, producers: dict[int, schema.Operator]
) -> np.ndarray | None:
    """The stored values of a tensor, following a DEQUANTIZE back to its stored input; None if computed."""
    tensor = graph.Tensors(tensor_index)
    data = model.Buffers(tensor.Buffer()).DataAsNumpy() if tensor.Buffer() < model.BuffersLength() else 0
    if isinstance(data, np.ndarray) and data.size and tensor.Type() in _DTYPES:
        return data.view(_DTYPES[tensor.Type()])
    producer = producers.get(tensor_index)
    if producer is not None and producer.InputsLength() == 1:
        return _constant(model, graph, int(producer.Inputs(0)), producers)
    return None


def weight_tensors(content: bytes) -> list[np.ndarray]:
    """The stored weights of every fully connected and convolution operator, flattened, in operator order.

    Raises:
        UserError: the bytes are not a ``.tflite`` flatbuffer.
    """
    model = read_model(content)
    weights = []
    for graph_index in range(model.SubgraphsLength()):
        graph = model.Subgraphs(graph_index)
        operators = [graph.Operators(index) for index in range(graph.OperatorsLength())]
        producers = {int(output): operator for operator in operators for output in operator.OutputsAsNumpy()}
        for operator in operators:
            code = model.OperatorCodes(operator.OpcodeIndex())
            if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) in WEIGHT_OPERATORS:
                values = _constant(model, graph, int(operator.Inputs(1)), producers)
                if values is not None:
                    weights.append(values)
    return weights


def weight_sparsity(content: bytes) -> float:
    """Share of exactly-zero values among the weights of :func:`weight_tensors` (0.0 when there are none)."""
    weights = weight_tensors(content)
    total = sum(values.size for values in weights)
    return float(sum(np.count_nonzero(values == 0) for values in weights) / total) if total else 0.0
