"""Exporting an anomaly detector: int8 calibration that keeps the scores near the threshold, and the threshold in int8.

An anomaly run's model outputs its anomaly score; an example is an anomaly when its score is at or above
the run's threshold (chosen on dev, see :mod:`recipes.anomaly`). Full-integer conversion fits every
activation range to the representative data, and the training split holds normal examples only: calibrated
on it, the ``machine`` autoencoder's int8 output ended at 1.11 with the threshold at 1.10 (10 epochs, seed
0): the test AUC fell from 0.981 to 0.959 and 97.2% of the decisions agreed with Keras; after 30 epochs the
threshold (1.036) lay above the int8 output's largest value (1.01) and only 66% agreed. Stretching just the
output's range (rewriting its scale) does not help: the ranges before it still clip the anomalies' errors,
AUC 0.967, 97.2% agreement. Calibrating on all of dev (its anomalies included) covers scores up to 5.2
but stretches the squared-error tensor so far that normal scores lose their resolution: 89.7% agreement.

What works is to cover the scores whose decision is in question: the representative data are the training
draw plus the dev examples scoring between the threshold and :data:`SCORE_SPAN` times it
(:func:`borderline_examples`). Over six runs (10 and 30 epochs, seeds 0-2) int8 then kept the test AUC
within 0.001 of Keras and agreed on 97.8-100% of the decisions, its output reaching twice the threshold.
A span of 1.5 agreed on 98.1-100% but ends the output at 1.5 thresholds; a span of 3 agreed on 90-97%.
With the span 2 the threshold lies inside the int8 output's range whenever dev flags an example: the
threshold is halfway between the lowest flagged dev score and the highest unflagged one (>= 0), so the lowest
flagged score, above the threshold, is at most twice it and is calibrated. :func:`threshold_warning`
checks every full-integer file anyway.
"""

from __future__ import annotations

import math

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from edge.convert import calibration_samples
from edge.device.model import is_anomaly
from edge.flatbuffer import read_model

SCORE_SPAN = 2.0


def borderline_examples(
    x_dev: np.ndarray, dev_scores: np.ndarray, threshold: float, count: int, seed: int
) -> np.ndarray:
    """The dev examples scoring from ``threshold`` to :data:`SCORE_SPAN` times it, for int8 calibration.

    Args:
        x_dev: raw inputs of the run's dev split.
        dev_scores: the Keras model's anomaly score of each.
        threshold: the run's threshold.
        count: the most examples to return (a seeded draw when more qualify).
        seed: seed of the draw.

    Returns:
        float32 array ``(m, *input_shape)``, ``m <= count``; empty when no dev example qualifies.
    """
    scores = np.asarray(dev_scores, np.float64).reshape(-1)
    chosen = is_anomaly(scores, threshold) & (scores <= SCORE_SPAN * threshold)
    return calibration_samples(x_dev[chosen], count, seed)


def score_quantization(content: bytes) -> tuple[float, int] | None:
    """Scale and zero point of a model's int8 score: its output's, or with float I/O the tensor its final
    DEQUANTIZE reads; None when the score is never int8."""
    model = read_model(content)
    graph = model.Subgraphs(0)
    tensor = graph.Tensors(graph.Outputs(0))
    if tensor.Type() != schema.TensorType.INT8:
        producers = [
            graph.Operators(index)
            for index in range(graph.OperatorsLength())
            if graph.Outputs(0) in graph.Operators(index).OutputsAsNumpy().tolist()
        ]
        code = model.OperatorCodes(producers[0].OpcodeIndex()) if producers else None
        if code is None or max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) != schema.BuiltinOperator.DEQUANTIZE:
            return None
        tensor = graph.Tensors(producers[0].Inputs(0))
    quantization = tensor.Quantization()
    if tensor.Type() != schema.TensorType.INT8 or quantization is None or quantization.ScaleLength() != 1:
        return None
    return float(quantization.Scale(0)), int(quantization.ZeroPoint(0))


def int8_range(scale: float, zero_point: int) -> tuple[float, float]:
    """The smallest and largest real value an int8 tensor with ``scale`` and ``zero_point`` holds."""
    return (-128 - zero_point) * scale, (127 - zero_point) * scale


def quantized_threshold(threshold: float, scale: float, zero_point: int) -> int:
    """The int8 value from which a raw int8 score is an anomaly: ``q >= ceil(zero_point + threshold / scale)``,
    the same decision as ``(q - zero_point) * scale >= threshold`` (up to float rounding)."""
    return math.ceil(zero_point + threshold / scale)


def threshold_warning(name: str, content: bytes, threshold: float) -> str | None:
    """A warning when the threshold is not strictly inside the int8 score's range, else None.

    Above the range no example can reach the threshold (all normal); at or below its bottom every example is
    an anomaly.
    """
    quantization = score_quantization(content)
    if quantization is None:
        return None
    low, high = int8_range(*quantization)
    if low < threshold <= high:
        return None
    verdict = "every example reads as normal" if threshold > high else "every example reads as an anomaly"
    return (
        f"{name}'s int8 score holds {low:.4g} to {high:.4g} but the threshold is {threshold:.4g}: {verdict}; "
        "deploy the float32 or dynamic variant instead, or train again so that dev holds scores above it"
    )
