"""Reading a ``.tflite`` flatbuffer with the schema LiteRT ships (no TensorFlow): the one place that opens one."""

from __future__ import annotations

from ai_edge_litert import schema_py_generated as schema

from edge.device.errors import UserError


def read_model(content: bytes) -> schema.Model:
    """The root ``Model`` table of a ``.tflite`` file.

    Raises:
        UserError: the bytes are not a ``.tflite`` flatbuffer (no ``TFL3`` identifier).
    """
    if len(content) < 8 or not schema.Model.ModelBufferHasIdentifier(content, 0):
        raise UserError("the model is not a .tflite flatbuffer (no TFL3 identifier); export it again")
    return schema.Model.GetRootAs(content, 0)
