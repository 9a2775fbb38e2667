"""A ``.tflite`` model with its batch fixed to one: the form a microcontroller runs.

The converter traces a Keras model with a dynamic batch, so every ``RESHAPE`` (a ``Flatten``, a ``Reshape``)
computes its target shape at run time: ``SHAPE`` of the input, ``STRIDED_SLICE`` for the batch, ``PACK`` with the
other dimensions. A microcontroller runs one example at a time; those operators cost it kernels, arena and time,
and TFLite Micro cannot plan some of them at all. :func:`batch_of_one` rewrites the flatbuffer, with no second
conversion (so every weight, scale and zero point stays what the export measured):

1. every tensor's shape signature gets batch 1 (the converter already wrote 1 in the shapes);
2. each ``RESHAPE`` whose shape is computed takes a constant instead: its output tensor's shape;
3. operators whose outputs nothing reads any more are removed, repeatedly, then the tensors, buffers and operator
   codes that only they used.

LiteRT runs the result with the same outputs, byte for byte (tested), and :func:`edge.operators.list_operators`
no longer lists ``SHAPE``, ``STRIDED_SLICE`` or ``PACK`` when a ``RESHAPE`` was their only reader.
"""

from __future__ import annotations

import numpy as np

from edge.device.errors import UserError
from edge.flatbuffer import read_model
from edge.per_tensor import _operator_names, _pack, _schema

RESHAPE_SHAPE_INPUT = 1


def batch_of_one(content: bytes) -> bytes:
    """The model with batch 1 everywhere and no operators computing shapes for a dynamic batch.

    Args:
        content: an exported ``.tflite`` model whose inputs have batch 1 or a dynamic batch.

    Returns:
        The rewritten flatbuffer (the same bytes' meaning for one example).

    Raises:
        UserError: a model with more than one subgraph (control flow), which this rewrite does not handle.
    """
    schema = _schema()
    model = schema.ModelT.InitFromObj(read_model(content))
    if len(model.subgraphs) != 1:
        raise UserError(
            f"the model has {len(model.subgraphs)} subgraphs (control flow); a firmware model needs one; "
            "export a model without loops or conditions"
        )
    graph = model.subgraphs[0]
    for tensor in graph.tensors:
        if tensor.shapeSignature is not None and len(tensor.shapeSignature) and tensor.shapeSignature[0] == -1:
            tensor.shapeSignature = [1, *list(tensor.shapeSignature)[1:]]
            if tensor.shape is not None and len(tensor.shape):
                tensor.shape = [1, *list(tensor.shape)[1:]]
    _constant_reshapes(schema, model)
    _remove_dead_operators(graph)
    _compact(model)
    return _pack(schema, model)


def _operator_kinds(schema, model) -> list[str]:
    names = _operator_names(schema)
    return [names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "") for code in model.operatorCodes]


def _constant_reshapes(schema, model) -> None:
    """Give each RESHAPE whose target shape another operator computes a constant target: its output's shape."""
    graph = model.subgraphs[0]
    kinds = _operator_kinds(schema, model)
    produced = {int(index) for operator in graph.operators for index in operator.outputs}
    for operator in graph.operators:
        if kinds[operator.opcodeIndex] != "RESHAPE" or len(operator.inputs) <= RESHAPE_SHAPE_INPUT:
            continue
        if int(operator.inputs[RESHAPE_SHAPE_INPUT]) not in produced:
            continue
        shape = np.asarray(graph.tensors[int(operator.outputs[0])].shape, dtype="<i4")
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(shape.tobytes(), dtype=np.uint8)
        model.buffers.append(buffer)
        tensor = schema.TensorT()
        tensor.shape = [len(shape)]
        tensor.type = schema.TensorType.INT32
        tensor.buffer = len(model.buffers) - 1
        tensor.name = b"static_shape"
        graph.tensors.append(tensor)
        inputs = list(operator.inputs)
        inputs[RESHAPE_SHAPE_INPUT] = len(graph.tensors) - 1
        operator.inputs = inputs


def _remove_dead_operators(graph) -> None:
    """Drop operators none of whose outputs is read by another operator or is an output of the graph."""
    while True:
        read = {int(index) for operator in graph.operators for index in operator.inputs}
        read |= {int(index) for index in graph.outputs}
        kept = [operator for operator in graph.operators if any(int(index) in read for index in operator.outputs)]
        if len(kept) == len(graph.operators):
            return
        graph.operators = kept


def _compact(model) -> None:
    """Renumber tensors, buffers and operator codes so that only those still used remain (buffer 0, the empty
    sentinel every model starts with, stays first)."""
    graph = model.subgraphs[0]
    used = sorted(
        {int(index) for operator in graph.operators for index in [*operator.inputs, *operator.outputs] if index >= 0}
        | {int(index) for index in graph.inputs}
        | {int(index) for index in graph.outputs}
    )
    tensor_map = {old: new for new, old in enumerate(used)}
    graph.tensors = [graph.tensors[old] for old in used]
    for operator in graph.operators:
        operator.inputs = [tensor_map[int(index)] if index >= 0 else -1 for index in operator.inputs]
        operator.outputs = [tensor_map[int(index)] for index in operator.outputs]
        if operator.intermediates is not None and len(operator.intermediates):
            operator.intermediates = [tensor_map.get(int(index), -1) for index in operator.intermediates]
    graph.inputs = [tensor_map[int(index)] for index in graph.inputs]
    graph.outputs = [tensor_map[int(index)] for index in graph.outputs]
    metadata = list(model.metadata or [])  # entries (e.g. the minimum runtime version) point at buffers too
    buffers = sorted({0} | {int(tensor.buffer) for tensor in graph.tensors} | {int(entry.buffer) for entry in metadata})
    buffer_map = {old: new for new, old in enumerate(buffers)}
    model.buffers = [model.buffers[old] for old in buffers]
    for holder in [*graph.tensors, *metadata]:
        holder.buffer = buffer_map[int(holder.buffer)]
    codes = sorted({int(operator.opcodeIndex) for operator in graph.operators})
    code_map = {old: new for new, old in enumerate(codes)}
    model.operatorCodes = [model.operatorCodes[old] for old in codes]
    for operator in graph.operators:
        operator.opcodeIndex = code_map[int(operator.opcodeIndex)]
    for signature in model.signatureDefs or []:
        for entry in [*(signature.inputs or []), *(signature.outputs or [])]:
            entry.tensorIndex = tensor_map[int(entry.tensorIndex)]
