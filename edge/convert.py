"""Keras model → ``.tflite`` bytes: the one place that drives the TFLite converter.

Everything else in ``edge`` sees only :func:`convert_model` and bytes, so the converter (today
``tf.lite.TFLiteConverter.from_keras_model``, announced for removal from TensorFlow) can be swapped
for LiteRT's own without touching parity, packaging or the runtime. Normalization is the model's
first layer, so every variant takes raw inputs.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from edge.native_output import captured_native_output
from edge.variants import Variant
from recipes.backend import import_keras
from recipes.errors import UserError


def calibration_samples(x_train: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Draw the representative data set for int8: ``count`` raw training examples, seeded.

    Args:
        x_train: raw inputs of the run's training split.
        count: examples wanted; all of the training split when it holds fewer.
        seed: seed of the draw (the run's seed, so an export repeats exactly).

    Returns:
        float32 array ``(min(count, len(x_train)), *input_shape)``.
    """
    generator = np.random.default_rng(seed)
    chosen = generator.choice(len(x_train), size=min(count, len(x_train)), replace=False)
    return np.asarray(x_train[np.sort(chosen)], dtype=np.float32)


def convert_model(model: Any, variant: Variant, calibration: np.ndarray | None = None,
                  float_io: bool = False) -> bytes:
    """Convert a Keras 3 model to the ``.tflite`` flatbuffer of ``variant``.

    Args:
        model: a Keras 3 model taking raw inputs.
        variant: the row of :data:`edge.variants.VARIANTS` to build.
        calibration: raw representative inputs; required when ``variant.full_integer``.
        float_io: for full-integer variants, keep float32 input and output (quantize inside the
            model) instead of int8.

    Returns:
        The flatbuffer bytes.

    Raises:
        UserError: full integer without calibration data, or a model the converter rejects.
    """
    import_keras()
    import tensorflow as tf
    from tensorflow.lite.python.convert_phase import ConverterError  # not exported under tf.lite

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant.optimize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant.weight_type == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant.full_integer:
        if calibration is None or len(calibration) == 0:
            raise UserError(f"{variant.name} needs representative data; give --calibration-samples >= 1")
        converter.representative_dataset = lambda: ([example[np.newaxis]] for example in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if not float_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    try:
        with captured_native_output(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bytes(converter.convert())
    except ConverterError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"the model cannot be converted to {variant.name} ({first_line}); "
                        "try another variant, e.g. --quantization float32") from None
