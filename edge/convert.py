"""Keras model → ``.tflite`` bytes: the one place that drives the TFLite converter.

Everything else in ``edge`` sees only :func:`convert_model` and bytes, so the converter (today
``tf.lite.TFLiteConverter.from_keras_model``, announced for removal from TensorFlow) can be swapped
for LiteRT's own without touching parity, packaging or the runtime. Every recipe's model starts with its
z-score layer, so a float variant takes raw inputs; a full-integer variant is converted from the model
without that layer (:func:`split_standardization`) and takes z-scores, applied in float in front of it by
the runtime or the C package (:mod:`edge.device.preprocessing`): one int8 scale cannot hold raw features whose
ranges differ by orders of magnitude. A regression's last layer, which maps z-scored outputs back to target
units, is split off the same way: the int8 model outputs z-scores (one int8 scale serves targets in any units)
and the runtime or the C package puts the targets' mean and deviation back.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from edge.device.errors import UserError, first_line
from edge.device.native_output import captured_native_output
from edge.device.preprocessing import VALUE, ZSCORE, Standardization
from edge.variants import Variant
from recipes.backend import import_keras


def calibration_samples(x_train: np.ndarray, count: int, seed: int, y_train: np.ndarray | None = None) -> np.ndarray:
    """Draw the representative data set for int8: ``count`` raw training examples, seeded.

    With labels the draw is stratified: every class gets its share of ``count`` (at least one example), so
    the activation ranges see every class, a rare one too.

    Args:
        x_train: raw inputs of the run's training split.
        count: examples wanted; all of the training split when it holds fewer.
        seed: seed of the draw (the run's seed, so an export repeats exactly).
        y_train: class index of each training example; None draws uniformly.

    Returns:
        float32 array ``(min(count, len(x_train)), *input_shape)``, in training-split order.
    """
    generator = np.random.default_rng(seed)
    wanted = min(count, len(x_train))
    if y_train is None or wanted == len(x_train):
        chosen = generator.choice(len(x_train), size=wanted, replace=False)
        return np.asarray(x_train[np.sort(chosen)], dtype=np.float32)
    classes, counts = np.unique(np.asarray(y_train), return_counts=True)
    share = counts / counts.sum() * wanted
    taken = np.minimum(np.maximum(np.floor(share).astype(int), 1), counts)
    for index in np.argsort(-(share - np.floor(share)), kind="stable"):  # largest remainders first
        if taken.sum() >= wanted:
            break
        taken[index] = min(taken[index] + 1, counts[index])
    chosen = np.concatenate(
        [
            generator.choice(np.flatnonzero(y_train == label), size=size, replace=False)
            for label, size in zip(classes, taken, strict=True)
        ]
    )
    return np.asarray(x_train[np.sort(chosen)], dtype=np.float32)


def convert_for_device(
    model: Any,
    variant: Variant,
    calibration: np.ndarray | None = None,
    float_io: bool = False,
    standardization: Standardization | None = None,
) -> tuple[bytes, Standardization | None, Standardization | None]:
    """Convert ``model`` as a device runs ``variant``: a full-integer variant without the model's z-score layer
    (and without a regression's output scaling).

    Args:
        model: a recipe model taking raw inputs, or (with ``standardization``) one already split from its
            z-score layer, taking z-scores.
        variant: the row of :data:`edge.variants.VARIANTS` to build.
        calibration: raw representative inputs; required when ``variant.full_integer``.
        float_io: see :func:`convert_model`.
        standardization: the statistics ``model`` was split from, when it already was.

    Returns:
        The flatbuffer, the z-score the runtime must apply in front of it (None: it takes raw inputs) and the
        scaling it must invert on its outputs (None: they are in target units, or not a regression's).
    """
    output = None
    if variant.full_integer and standardization is None:
        split = split_standardization(model)
        if split is not None:
            model, standardization, output = split
    if standardization is None:
        return convert_model(model, variant, calibration, float_io), None, output
    calibration = None if calibration is None else standardization.apply(calibration)
    return convert_model(model, variant, calibration, float_io), standardization, output


def split_standardization(model: Any) -> tuple[Any, Standardization, Standardization | None] | None:
    """Split a recipe model into its z-score statistics, the model after its ``zscore`` layer and, for a
    regression, before its ``value`` layer (which maps z-scored outputs to target units), and that layer's
    statistics.

    Works on Keras 3 models and on tf_keras twins (same builder, same layer names). The rest of the model
    is a new functional model on the same layers (weights shared), whose input is the z-scored example.

    Returns:
        ``(core model, input statistics, output statistics or None)``, or None when the model has no ``zscore``
        layer right after its input (then it is converted whole).
    """
    try:
        layer = model.get_layer(ZSCORE)
    except ValueError:
        return None
    if layer.input is not model.inputs[0]:
        return None
    config = layer.get_config()
    statistics = Standardization.from_variance(config["mean"], config["variance"])
    module = __import__(type(model).__module__.split(".")[0])
    last, output, outputs = model.layers[-1], None, model.output
    if last.name == VALUE and last.get_config().get("invert"):
        settings = last.get_config()
        output, outputs = Standardization.from_variance(settings["mean"], settings["variance"]), last.input
    core = module.Model(layer.output, outputs, name=f"{model.name}_on_zscores")
    return core, statistics, output


def convert_model(model: Any, variant: Variant, calibration: np.ndarray | None = None, float_io: bool = False) -> bytes:
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
        reason = first_line(error)
        raise UserError(
            f"the model cannot be converted to {variant.name} ({reason}); "
            "try another variant, e.g. --quantization float32"
        ) from None
