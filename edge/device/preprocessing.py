"""The z-score a full-integer model needs in front of it, in numpy and in C: one formula, two writings.

Raw sensor features come in mixed units (Pa next to g next to °C); quantizing them with the one scale an
int8 input tensor has wipes out every small-range feature before normalization could run. So a
full-integer model is converted *without* its z-score layer and takes standardized inputs, and whatever
feeds it (this module on a device with Python, the C function written beside the C array on a
microcontroller) maps each raw value straight to the model's input:

    int8 input:   q[i] = clamp(rint((x[i] - mean[c]) * multiplier[c]) + zero_point, -128, 127)
    float input:  z[i] = (x[i] - mean[c]) * inverse_std[c]

with ``c = i % channels`` (statistics are per feature of a table, per channel of an image, per coefficient of
MFCCs: the last axis), ``inverse_std = 1/std`` and ``multiplier = 1/(std * input_scale)``, every step in
float32 and rounded half to even. numpy and C perform the same float32 operations in the same order, so they
produce the same bytes (tested by compiling the C function). This module imports numpy only: the device
runtime uses it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.device.errors import UserError

ZSCORE = "zscore"
VALUE = "value"  # a regression's last layer: value = z * std + mean (recipes.tasks.VALUE_LAYER)
INPUT_FORMULA = "z = (x - mean[c]) / std[c], c the index on the last axis"
OUTPUT_FORMULA = "value[c] = z[c] * std[c] + mean[c]: the model outputs z-scores, targets are in their units"


@dataclass(frozen=True)
class Standardization:
    """Per-channel z-score statistics applied outside the model: ``(x - mean) / std`` on the last axis.

    Args:
        mean: float32, one value per channel (last axis of an example).
        std: float32 standard deviation per channel, every value > 0.
    """

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", np.asarray(self.mean, np.float32).reshape(-1))
        object.__setattr__(self, "std", np.asarray(self.std, np.float32).reshape(-1))

    @classmethod
    def from_variance(cls, mean: Any, variance: Any) -> Standardization:
        """From a Normalization layer's mean and variance (its divisor is max(sqrt(variance), 1e-7), as Keras's)."""
        mean = np.asarray(mean, np.float32).reshape(-1)
        std = np.maximum(np.sqrt(np.asarray(variance, np.float64).reshape(-1)), 1e-7).astype(np.float32)
        return cls(mean, std)

    @classmethod
    def from_dict(cls, entry: Any, where: str) -> Standardization:
        """Read ``{"kind": "zscore", "mean": [...], "std": [...]}`` as written by :meth:`to_dict`.

        Raises:
            UserError: not that shape, lengths that differ, or a value that is not a finite number (std > 0).
        """
        damaged = f"{where} has a damaged input standardization; export again"
        if not isinstance(entry, dict) or entry.get("kind") != ZSCORE:
            raise UserError(damaged)
        try:
            mean = np.asarray(entry["mean"], np.float64)
            std = np.asarray(entry["std"], np.float64)
        except (KeyError, TypeError, ValueError):
            raise UserError(damaged) from None
        if (
            mean.ndim != 1
            or mean.shape != std.shape
            or len(mean) == 0
            or not np.isfinite(mean).all()
            or not np.isfinite(std).all()
            or not (std > 0).all()
        ):
            raise UserError(damaged)
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def to_dict(self, formula: str = INPUT_FORMULA) -> dict[str, Any]:
        """Plain data for ``manifest.json`` (float32 values written so that they read back exactly)."""
        return {
            "kind": ZSCORE,
            "axis": -1,
            "mean": [float(value) for value in self.mean],
            "std": [float(value) for value in self.std],
            "formula": formula,
        }

    @property
    def channels(self) -> int:
        """Values per statistic: the length of an example's last axis."""
        return len(self.mean)

    def check_shape(self, input_shape: tuple[int, ...], where: str) -> None:
        """Refuse statistics that do not fit examples of ``input_shape`` (a damaged or foreign manifest)."""
        if not input_shape or input_shape[-1] != self.channels:
            raise UserError(
                f"{where} standardizes {self.channels} channels but the model takes examples of shape "
                f"{tuple(input_shape)}; export again"
            )

    def inverse_std(self) -> np.ndarray:
        """float32 1/std per channel (what a float-input model's values are multiplied by)."""
        return (1.0 / self.std.astype(np.float64)).astype(np.float32)

    def multiplier(self, scale: float) -> np.ndarray:
        """float32 1/(std * scale) per channel: raw value minus mean to quantized steps of the input tensor."""
        return (1.0 / (self.std.astype(np.float64) * float(scale))).astype(np.float32)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Raw values → float32 z-scores (the last axis of ``x`` holds the channels)."""
        return (np.asarray(x, np.float32) - self.mean) * self.inverse_std()

    def invert(self, z: np.ndarray) -> np.ndarray:
        """z-scores → float32 values in the original units: ``z * std + mean`` (a regression's outputs)."""
        return (np.asarray(z, np.float32) * self.std + self.mean).astype(np.float32)

    def c_postprocess(self, identifier: str, output_dtype: str, scale: float, zero_point: int) -> str:
        """C text: a ``<identifier>_postprocess`` function turning the model's output tensor (z-scores) into
        values in target units, as the runtime's dequantize-then-:meth:`invert` does, in float32."""
        channels = self.channels
        read = (
            f"((float)((int)out[c] - ({int(zero_point)})) * {float(scale)!r}f)" if output_dtype == "int8" else "out[c]"
        )
        kind = "int8_t" if output_dtype == "int8" else "float"
        return (
            f"static const float {identifier}_target_mean[{channels}] = {{{_c_floats(self.mean)}}};\n"
            f"static const float {identifier}_target_std[{channels}] = {{{_c_floats(self.std)}}};\n\n"
            f"// Model output (z-scores) -> the {channels} target value(s) in their own units.\n"
            f"static inline void {identifier}_postprocess(const {kind}* out, float* value) {{\n"
            f"  for (int c = 0; c < {channels}; ++c) {{\n"
            f"    value[c] = {read} * {identifier}_target_std[c] + {identifier}_target_mean[c];\n"
            f"  }}\n}}\n"
        )

    def steps(self, x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
        """Raw values → integer steps of the input tensor before saturation: rint((x - mean) * multiplier) + zero
        point, as int64 (so a caller can count the values that :meth:`quantize` saturates)."""
        steps = np.rint((np.asarray(x, np.float32) - self.mean) * self.multiplier(scale))
        return steps.astype(np.int64) + int(zero_point)

    def quantize(self, x: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
        """Raw values → the integer input tensor: :meth:`steps`, saturated at the dtype's limits."""
        limits = np.iinfo(dtype)
        return np.clip(self.steps(x, scale, zero_point), limits.min, limits.max).astype(dtype)

    def c_declarations(self, identifier: str, input_dtype: str, scale: float, zero_point: int, size: int) -> str:
        """C text: the constants and a ``<identifier>_preprocess`` function turning one raw example into the
        model's input tensor, exactly as :meth:`quantize` (int8 input) or :meth:`apply` (float input) does.

        Args:
            identifier: the model array's C name; the function and constants take it as prefix.
            input_dtype: the model's input dtype, ``"int8"`` or ``"float32"``.
            scale: the input tensor's scale (int8 input).
            zero_point: the input tensor's zero point (int8 input).
            size: values per example (the product of the input shape).
        """
        channels = self.channels
        means = _c_floats(self.mean)
        doc = (
            f"// Raw example (x[0..{size - 1}], channel c = i % {channels}) -> model input.\n"
            f"// Statistics of the training split; every step in float32, rounding half to even (rintf),\n"
            f"// as edge/device/preprocessing.py does: the same bytes as the Python runtime.\n"
        )
        if input_dtype == "int8":
            factors = _c_floats(self.multiplier(scale))
            body = (
                f"    const float v = (raw[i] - {identifier}_input_mean[c]) * {identifier}_input_multiplier[c];\n"
                f"    long q = lrintf(v) + ({int(zero_point)});\n"
                f"    out[i] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));\n"
            )
            constants = (
                f"static const float {identifier}_input_mean[{channels}] = {{{means}}};\n"
                f"// 1 / (std * input scale {float(scale)!r})\n"
                f"static const float {identifier}_input_multiplier[{channels}] = {{{factors}}};\n"
            )
            signature = f"static inline void {identifier}_preprocess(const float* raw, int8_t* out)"
        else:
            factors = _c_floats(self.inverse_std())
            body = f"    out[i] = (raw[i] - {identifier}_input_mean[c]) * {identifier}_input_inverse_std[c];\n"
            constants = (
                f"static const float {identifier}_input_mean[{channels}] = {{{means}}};\n"
                f"static const float {identifier}_input_inverse_std[{channels}] = {{{factors}}};\n"
            )
            signature = f"static inline void {identifier}_preprocess(const float* raw, float* out)"
        return (
            f"#include <math.h>\n#include <stdint.h>\n\n{constants}\n{doc}{signature} {{\n"
            f"  for (int i = 0; i < {size}; ++i) {{\n    const int c = i % {channels};\n{body}  }}\n}}\n"
        )


def _c_floats(values: np.ndarray) -> str:
    """float32 values as C literals that parse back to the same float32 (9 significant digits)."""
    literals = []
    for value in np.asarray(values, np.float32):
        text = f"{float(value):.9g}"
        if not math.isfinite(float(value)):
            raise ValueError(f"cannot write {value} as a C float")
        literals.append(text + ("f" if any(mark in text for mark in ".e") else ".0f"))
    return ", ".join(literals)
