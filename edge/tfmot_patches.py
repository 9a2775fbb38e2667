"""Every change this project makes to tensorflow-model-optimization (tfmot), in one place.

tfmot is imported here at module level, so this module is imported only by the compression code path, through
:func:`import_tfmot`, which checks the tested version (0.8.1) before any private module of tfmot is imported and
keeps tfmot's ``TF_USE_LEGACY_KERAS=1`` out of the process environment. Each piece works around a tfmot 0.8.1 behaviour,
and ``tests/test_edge_compression.py`` holds a canary per piece that fails once upstream changes it:

- :class:`ZscoreOutputQuantizeConfig`: tfmot has no quantize config for ``Normalization``;
- :class:`PerChannelDenseQuantizeConfig`: tfmot's QAT quantizes a Dense kernel with one scale for the whole
  matrix while the converter's post-training int8 gives every output unit its own;
- :func:`calibrate_activation_ranges`: tfmot's activation ranges start at [-6, 6] and move by a 0.999 moving
  average per step, so a short fine-tuning clips wider activations; it swaps tfmot's private quantizer ops for
  recorders while it calibrates.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy as np
import tensorflow as tf

from edge.device.errors import UserError
from recipes.training import EVALUATION_BATCH

LEGACY_KERAS_VARIABLE = "TF_USE_LEGACY_KERAS"
TFMOT_TESTED_VERSIONS = ("0.8.1",)  # the private quantizers and configs used here are 0.8.1's


def import_tfmot() -> ModuleType:
    """Import tensorflow-model-optimization without leaving ``TF_USE_LEGACY_KERAS`` changed.

    tfmot's ``keras/compat.py`` sets the variable to ``1`` on import (so that ``tf.keras`` means tf_keras).
    The project never uses ``tf.keras`` and tfmot keeps the tf_keras module it picked, so the variable is
    restored (or removed) at once: other commands and child processes see the environment as it was.

    Raises:
        UserError: a tfmot version other than :data:`TFMOT_TESTED_VERSIONS`: this module swaps its private
            quantizers (:func:`calibrate_activation_ranges`) and subclasses its quantize configs, which another
            version may lay out differently.
    """
    from importlib.metadata import version

    installed = version("tensorflow-model-optimization")
    if installed not in TFMOT_TESTED_VERSIONS:
        raise UserError(
            f"tensorflow-model-optimization {installed} is installed, but compression is tested with "
            f"{', '.join(TFMOT_TESTED_VERSIONS)} only (edge/tfmot_patches.py); install it with: pip install -e ."
        )
    saved = os.environ.get(LEGACY_KERAS_VARIABLE)
    try:
        import tensorflow_model_optimization as tfmot
    finally:
        if saved is None:
            os.environ.pop(LEGACY_KERAS_VARIABLE, None)
        else:
            os.environ[LEGACY_KERAS_VARIABLE] = saved
    return tfmot


tfmot = import_tfmot()
quantization = tfmot.quantization.keras

from tensorflow_model_optimization.python.core.quantization.keras import quant_ops  # noqa: E402
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (  # noqa: E402
    default_8bit_quantize_registry,
)


def calibrate_activation_ranges(
    model: Any,
    x: np.ndarray,
    batch: int = EVALUATION_BATCH,
    kinds: tuple[str, ...] = ("MovingAvgQuantize", "AllValuesQuantize"),
) -> int:
    """Set the range of every activation fake-quantizer of a QAT model to what its float tensor spans on ``x``.

    tfmot starts each range at [-6, 6] and moves it by an exponential moving average with decay 0.999 per
    training step, so a few epochs of fine-tuning (51 steps on digits) leave it near [-6, 6]: values past 6
    are clipped and a ReLU output wastes half its 256 levels on negatives. Post-training int8 instead
    calibrates each range to the float activations. This pass does the same before fine-tuning: it runs
    ``x`` through the model with its moving-average and all-values quantizers swapped for recorders that
    widen the range to the tensor's minimum and maximum (taken with 0, as tfmot does) and pass it on
    unquantized. Weights are untouched; the moving average then goes on from these ranges.

    Returns:
        The number of ranges set.
    """
    seen: set[int] = set()

    def record(
        inputs: Any,
        min_var: Any,
        max_var: Any,
        per_channel: bool = False,
        symmetric: bool = False,
        num_bits: int = 8,
        narrow_range: bool = False,
        **_: Any,
    ) -> Any:
        axes = list(range(len(inputs.shape) - 1)) if per_channel and len(inputs.shape) >= 2 else None
        low = tf.minimum(tf.reduce_min(inputs, axis=axes), 0.0)
        high = tf.maximum(tf.reduce_max(inputs, axis=axes), 0.0)
        if symmetric:  # tfmot's symmetric limits (quant_ops.MovingAvgQuantize)
            ratio = -1.0 if narrow_range else -((1 << num_bits) - 2) / (1 << num_bits)
            low, high = tf.minimum(low, high / ratio), tf.maximum(high, low * ratio)
        if id(min_var) not in seen:
            seen.add(id(min_var))
            min_var.assign(tf.broadcast_to(low, min_var.shape))
            max_var.assign(tf.broadcast_to(high, max_var.shape))
        else:
            min_var.assign(tf.minimum(min_var, low))
            max_var.assign(tf.maximum(max_var, high))
        return inputs

    originals = {kind: getattr(quant_ops, kind) for kind in kinds}
    for kind in kinds:
        setattr(quant_ops, kind, record)
    try:
        for start in range(0, len(x), batch):
            model(x[start : start + batch], training=False)
    finally:
        for kind, original in originals.items():
            setattr(quant_ops, kind, original)
    return len(seen)


class ZscoreOutputQuantizeConfig(quantization.QuantizeConfig):
    """For the z-score layer, which has no weights and for which tfmot has no config: quantize its output to 8
    bits with a moving-average range; no weights, no activations."""

    def get_weights_and_quantizers(self, layer: Any) -> list:
        return []

    def get_activations_and_quantizers(self, layer: Any) -> list:
        return []

    def set_quantize_weights(self, layer: Any, quantize_weights: list) -> None:
        return None

    def set_quantize_activations(self, layer: Any, quantize_activations: list) -> None:
        return None

    def get_output_quantizers(self, layer: Any) -> list:
        return [
            quantization.quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False
            )
        ]

    def get_config(self) -> dict[str, Any]:
        return {}


class PerChannelKernelQuantizer(quantization.quantizers.Quantizer):
    """Round each output unit's weights onto 255 symmetric levels of step ``max|w| / 127``."""

    def __init__(self, preserve_zeros: bool = False) -> None:
        self.preserve_zeros = preserve_zeros

    def build(self, tensor_shape: Any, name: str, layer: Any) -> dict[str, Any]:
        if not self.preserve_zeros:
            return {}
        kernel = getattr(layer.layer, name)
        return {"nonzero": tf.math.divide_no_nan(kernel, kernel)}

    def __call__(self, inputs: Any, training: Any, weights: dict[str, Any], **kwargs: Any) -> Any:
        if self.preserve_zeros:
            inputs = inputs * weights["nonzero"]
        units = tf.reduce_max(tf.abs(inputs), axis=list(range(len(inputs.shape) - 1)))
        scale = tf.maximum(units, 1e-12) / 127.0
        rounded = tf.clip_by_value(tf.round(inputs / scale), -127.0, 127.0) * scale
        return inputs + tf.stop_gradient(rounded - inputs)

    def get_config(self) -> dict[str, Any]:
        return {"preserve_zeros": self.preserve_zeros}


class PerChannelDenseQuantizeConfig(default_8bit_quantize_registry.Default8BitQuantizeConfig):
    """tfmot's Dense config (kernel, activation) with :class:`PerChannelKernelQuantizer` on the kernel: one
    weight scale per output unit, as post-training int8 has.

    tfmot's default config quantizes a Dense kernel with a single scale for the whole matrix, while the
    converter's post-training int8 gives every output unit its own (per-channel, as for convolutions), so a
    unit with small weights keeps its resolution; QAT would otherwise train against, and export, a coarser
    kernel than the post-training int8 it is meant to beat. tfmot's per-channel fake-quant op cannot be used
    here: the converter transposes a Dense kernel into a FULLY_CONNECTED one and refuses a per-channel
    quantized transpose. So the kernel is rounded with plain ops onto the grid the converter's own per-channel
    int8 uses (symmetric, ``scale = max|w| / 127`` per unit) with a straight-through gradient; the converter
    folds the rounded kernel into a constant and quantizes it per channel back onto exactly that grid.
    With ``preserve_zeros`` the kernel is multiplied by its nonzero mask first (as tfmot's pruning-preserving
    quantizer does), so pruned zeros stay zero.
    """

    def __init__(self, preserve_zeros: bool = False) -> None:
        super().__init__(["kernel"], ["activation"], False)
        self.preserve_zeros = preserve_zeros
        self.weight_quantizer = PerChannelKernelQuantizer(preserve_zeros)

    def get_config(self) -> dict[str, Any]:
        return {"preserve_zeros": self.preserve_zeros}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        return cls(**config)
