"""Which operators a ``.tflite`` model uses, and whether TFLite Micro can run its int8 form.

The operator list is read from the flatbuffer with the schema LiteRT ships
(``ai_edge_litert.schema_py_generated``), so nothing is allocated or delegated: what is listed is
what a device's op resolver must register. :data:`TFLM_INT8_OPS` lists the builtin operators for
which TFLite Micro has a kernel that runs int8 tensors.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ai_edge_litert import schema_py_generated as schema

from edge.flatbuffer import read_model

# Read from tflite-micro's sources at commit 90b983c (2026-08-20): the operators registered in
# tensorflow/lite/micro/micro_mutable_op_resolver.h whose kernel in tensorflow/lite/micro/kernels/
# handles kTfLiteInt8, plus the data-movement operators whose kernels copy bytes of any type
# (RESHAPE, SQUEEZE, EXPAND_DIMS, SHAPE, ...). Not in the list, for example: GELU, EXP, LOG, SIN, COS,
# SQRT, SQUARE, FLOOR, CEIL, ROUND (no TFLM kernel or float only).
TFLM_INT8_OPS = frozenset(
    {
        "ABS",
        "ADD",
        "ADD_N",
        "ARG_MAX",
        "ARG_MIN",
        "AVERAGE_POOL_2D",
        "BATCH_MATMUL",
        "BATCH_TO_SPACE_ND",
        "BROADCAST_TO",
        "CAST",
        "CONCATENATION",
        "CONV_2D",
        "CUMSUM",
        "DEPTH_TO_SPACE",
        "DEPTHWISE_CONV_2D",
        "DEQUANTIZE",
        "DIV",
        "DYNAMIC_UPDATE_SLICE",
        "ELU",
        "EMBEDDING_LOOKUP",
        "EQUAL",
        "EXPAND_DIMS",
        "FILL",
        "FULLY_CONNECTED",
        "GATHER",
        "GATHER_ND",
        "GREATER",
        "GREATER_EQUAL",
        "HARD_SWISH",
        "L2_NORMALIZATION",
        "LEAKY_RELU",
        "LESS",
        "LESS_EQUAL",
        "LOG_SOFTMAX",
        "LOGISTIC",
        "MAX_POOL_2D",
        "MAXIMUM",
        "MEAN",
        "MINIMUM",
        "MIRROR_PAD",
        "MUL",
        "NEG",
        "NOT_EQUAL",
        "PACK",
        "PAD",
        "PADV2",
        "PRELU",
        "QUANTIZE",
        "REDUCE_MAX",
        "REDUCE_MIN",
        "RELU",
        "RELU6",
        "RESHAPE",
        "RESIZE_BILINEAR",
        "RESIZE_NEAREST_NEIGHBOR",
        "REVERSE_V2",
        "RSQRT",
        "SELECT_V2",
        "SHAPE",
        "SLICE",
        "SOFTMAX",
        "SPACE_TO_BATCH_ND",
        "SPACE_TO_DEPTH",
        "SPLIT",
        "SPLIT_V",
        "SQUARED_DIFFERENCE",
        "SQUEEZE",
        "STRIDED_SLICE",
        "SUB",
        "SUM",
        "SVDF",
        "TANH",
        "TRANSPOSE",
        "TRANSPOSE_CONV",
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
        "UNPACK",
        "ZEROS_LIKE",
    }
)

_OPERATOR_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
_TYPE_NAMES = {code: name.lower() for name, code in vars(schema.TensorType).items() if not name.startswith("_")}


@dataclass
class OperatorReport:
    """The operators of one model.

    Args:
        counts: operator name → how many times the model uses it, in order of first use.
        tensor_types: tensor dtypes the model's operators read and write, e.g. ``["int32", "int8"]``.
        micro_int8_unsupported: for an int8 model, the operators TFLite Micro has no int8 kernel for;
            None for other variants.
    """

    counts: dict[str, int]
    tensor_types: list[str]
    micro_int8_unsupported: list[str] | None = field(default=None)

    @property
    def micro_ready(self) -> bool | None:
        """For an int8 model, whether every operator has a TFLite Micro int8 kernel; else None."""
        return None if self.micro_int8_unsupported is None else not self.micro_int8_unsupported

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``report.json``."""
        return {
            "operators": self.counts,
            "tensor_types": self.tensor_types,
            "micro_int8_ready": self.micro_ready,
            "micro_int8_unsupported": self.micro_int8_unsupported,
        }


def list_operators(content: bytes) -> tuple[dict[str, int], list[str]]:
    """The operators of every subgraph (name → count, in order of first use) and the tensor dtypes they touch.

    Custom operators are listed as ``CUSTOM:<name>``.

    Raises:
        UserError: the bytes are not a ``.tflite`` flatbuffer.
    """
    model = read_model(content)
    counts: Counter[str] = Counter()
    types: set[str] = set()
    for graph_index in range(model.SubgraphsLength()):
        graph = model.Subgraphs(graph_index)
        for op_index in range(graph.OperatorsLength()):
            operator = graph.Operators(op_index)
            counts[operator_name(model.OperatorCodes(operator.OpcodeIndex()))] += 1
            for tensor_index in [*operator.InputsAsNumpy().tolist(), *operator.OutputsAsNumpy().tolist()]:
                if tensor_index >= 0:
                    types.add(_TYPE_NAMES.get(graph.Tensors(tensor_index).Type(), "unknown"))
    return dict(counts), sorted(types)


def operator_name(code: Any) -> str:
    """Builtin name of an operator code (the larger of the new and the deprecated code field)."""
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if builtin == schema.BuiltinOperator.CUSTOM:
        return f"CUSTOM:{(code.CustomCode() or b'').decode(errors='replace')}"
    return _OPERATOR_NAMES.get(builtin, f"BUILTIN_{builtin}")


def operator_report(content: bytes, int8: bool) -> OperatorReport:
    """List a model's operators; for an int8 model also those TFLite Micro cannot run in int8.

    Args:
        content: the ``.tflite`` bytes.
        int8: whether the model is the full-integer variant meant for TFLite Micro.
    """
    counts, types = list_operators(content)
    unsupported = [name for name in counts if name not in TFLM_INT8_OPS] if int8 else None
    return OperatorReport(counts, types, unsupported)
