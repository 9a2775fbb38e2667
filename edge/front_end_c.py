"""The front ends in C: what turns one raw example into the features a model was trained on, written for a device.

:func:`front_end_source` writes ``front_end.c`` of the firmware package: ``model_front_end`` (raw example →
features), ``model_quantize_input`` (features → the int8 input tensor) and ``model_output_values`` (the int8 output
tensor → what ``predict`` prints). The constants (window, twiddle factors, filter bank, DCT, statistics) are computed
here in float64 and written as C literals, so the C code does only arithmetic, and the same steps as the Python code
the device runtime runs:

- **none** (tables, images, raw sensor windows): the features are the raw values.
- **MFCC** (keyword spotting, :mod:`edge.device.mfcc`): 16-bit PCM → scaled to [-1, 1) and divided by the clip's peak
  magnitude → frames × periodic Hann → 512-point FFT → magnitudes → mel filter bank → ``log(mel + offset)`` → DCT.
  In float32 (a Cortex-M4F has a float32 unit); numpy computes in float64, so the features differ by float32
  rounding: within :data:`MFCC_TOLERANCE` on in-band clips (tested; the int8 input bytes of spoken clips are
  tested too).
- **spectral** (sensor windows, :func:`edge.device.windows.spectral_features`): per channel the mean, the RMS about it,
  the peak frequency and log10 band energies of a symmetric-Hann-windowed DFT, in double precision as numpy
  computes them (the windows are short; a peak frequency is an argmax, which float32 could move to the next bin):
  within :data:`SPECTRAL_TOLERANCE` of numpy.

``model_quantize_input`` is :meth:`edge.device.preprocessing.Standardization.c_declarations` (the same bytes as the
runtime); ``model_output_values`` dequantizes in float32 as :meth:`edge.device.model.EdgeModel.dequantize` and, for a
regression, puts the targets' units back (:meth:`edge.device.preprocessing.Standardization.c_postprocess`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.device.mfcc import dct_matrix, hann_window, mel_weight_matrix
from edge.device.preprocessing import Standardization, _c_floats
from edge.device.windows import LOG_FLOOR, band_edges, spectral_rate

# Largest |C - numpy| of an MFCC on in-band clips (chirp 0.006, tones 0.0009, noise and silence 4e-5; features span
# about -124 to 25; one input step of a z-scored MFCC is about 0.2): float32 FFT rounding where a band holds only
# leakage, which the log magnifies. A 7 kHz tone, outside the 20 Hz-4 kHz bands, differs by 0.14 (tf.signal's
# float32 features, which training used, differ from numpy's by 0.46 there).
MFCC_TOLERANCE = 0.01
SPECTRAL_TOLERANCE = 1e-6  # largest relative |C - numpy| of a spectral feature
PCM_FULL_SCALE = 32768.0  # a 16-bit sample's full scale, as recipes.data.audio reads WAV files


def front_end_kind(front_end: dict[str, Any] | None) -> str:
    """``"mfcc"``, ``"spectral"`` or ``"none"``: which C front end a model's manifest ``front_end`` needs."""
    if not front_end:
        return "none"
    if "mel_bins" in front_end:
        return "mfcc"
    if front_end.get("kind") == "windows" and front_end.get("front_end") == "spectral":
        return "spectral"
    return "none"


def raw_values(front_end: dict[str, Any] | None, input_values: int) -> int:
    """Values of one raw example: PCM samples of a clip, the samples of a spectral window, else the model's input."""
    kind = front_end_kind(front_end)
    if kind == "mfcc":
        return int(front_end["clip_samples"])
    if kind == "spectral":
        return int(front_end["window_steps"]) * len(front_end["channels"])
    return input_values


def front_end_source(
    front_end: dict[str, Any] | None,
    input_values: int,
    standardization: Standardization | None,
    input_quantization: tuple[float, int],
    output_quantization: tuple[float, int],
    output_standardization: Standardization | None,
) -> str:
    """The text of ``front_end.c``.

    Args:
        front_end: the manifest's ``front_end`` (None for tables and images).
        input_values: values of the model's input tensor.
        standardization: the z-score in front of the int8 model (None: it takes the features as they are).
        input_quantization: the input tensor's (scale, zero point).
        output_quantization: the output tensor's (scale, zero point).
        output_standardization: a regression's target statistics (the int8 model outputs z-scores), else None.
    """
    kind = front_end_kind(front_end)
    features = {"none": _identity, "mfcc": _mfcc, "spectral": _spectral}[kind](front_end, input_values)
    scale, zero_point = input_quantization
    if standardization is not None:
        quantize = standardization.c_declarations("model", "int8", scale, zero_point, input_values)
        quantize += (
            "\nvoid model_quantize_input(const float* features, int8_t* input) { model_preprocess(features, input); }\n"
        )
    else:
        quantize = (
            "// The model takes the features as they are: q = rint(x / scale) + zero point, in double as numpy.\n"
            "void model_quantize_input(const float* features, int8_t* input) {\n"
            f"  for (int i = 0; i < {input_values}; ++i) {{\n"
            f"    const long q = lrint((double)features[i] / {float(scale)!r}) + ({int(zero_point)});\n"
            "    input[i] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));\n  }\n}\n"
        )
    out_scale, out_zero = output_quantization
    if output_standardization is not None:
        output = output_standardization.c_postprocess("model", "int8", out_scale, out_zero)
        output += (
            "\nvoid model_output_values(const int8_t* output, float* values) { model_postprocess(output, values); }\n"
        )
    else:
        output = (
            "// Dequantized as the runtime does: ((float)q - zero point) * scale, in float32.\n"
            "void model_output_values(const int8_t* output, float* values) {\n"
            "  for (int c = 0; c < MODEL_OUTPUTS; ++c) {\n"
            f"    values[c] = ((float)output[c] - ({float(out_zero)!r}f)) * {_c_floats(np.float32([out_scale]))};\n"
            "  }\n}\n"
        )
    return (
        "// The front end and output mapping of this model, in C. Generated by 'python cli.py export --firmware' "
        "(edge/front_end_c.py); do not edit.\n"
        '#include <math.h>\n#include <stdint.h>\n\n#include "model.h"\n\n'
        f"{features}\n{quantize}\n{output}\n"
        "#if MODEL_TASK_ANOMALY\n"
        "int model_is_anomaly(float score) { return (double)score >= MODEL_ANOMALY_THRESHOLD; }\n"
        "#endif\n"
    )


def _identity(front_end: dict[str, Any] | None, input_values: int) -> str:
    return (
        "// The model's features are the raw values themselves.\n"
        "void model_front_end(const model_raw_t* raw, float* features) {\n"
        f"  for (int i = 0; i < {input_values}; ++i) features[i] = raw[i];\n}}\n"
    )


def _array(c_type: str, name: str, values: np.ndarray) -> str:
    flat = np.asarray(values).reshape(-1)
    text = _c_floats(flat.astype(np.float32)) if c_type == "float" else ", ".join(str(int(v)) for v in flat)
    return f"static const {c_type} {name}[{len(flat)}] = {{{text}}};\n"


def _doubles(values: np.ndarray) -> str:
    return ", ".join(repr(float(value)) for value in np.asarray(values, np.float64).reshape(-1))


def _mfcc(front_end: dict[str, Any], input_values: int) -> str:
    window, stride = int(front_end["window_samples"]), int(front_end["stride_samples"])
    fft = int(front_end["fft_length"])
    if fft & (fft - 1) or window > fft:
        raise ValueError(f"the C MFCC needs a power-of-two FFT at least as long as the window, not {fft}")
    clip, bands, coefficients = (
        int(front_end["clip_samples"]),
        int(front_end["mel_bins"]),
        int(front_end["mfcc_coefficients"]),
    )
    frames = 1 + (clip - window) // stride
    if frames * coefficients != input_values:
        raise ValueError(f"{frames} frames of {coefficients} MFCCs do not fill the model's {input_values} inputs")
    weights = mel_weight_matrix(front_end)  # (bins, bands)
    first = [int(np.flatnonzero(weights[:, band])[0]) if weights[:, band].any() else 0 for band in range(bands)]
    last = [int(np.flatnonzero(weights[:, band])[-1]) + 1 if weights[:, band].any() else 0 for band in range(bands)]
    offsets = np.cumsum([0, *(high - low for low, high in zip(first, last, strict=True))])
    packed = np.concatenate([weights[low:high, band] for band, (low, high) in enumerate(zip(first, last, strict=True))])
    angles = 2.0 * np.pi * np.arange(fft // 2) / fft
    bits = int(np.log2(fft))
    reversed_index = [int(format(index, f"0{bits}b")[::-1], 2) for index in range(fft)]
    return (
        f"// MFCCs of a {clip}-sample clip: {frames} frames of {window} samples every {stride}, periodic Hann,\n"
        f"// {fft}-point FFT, {bands} mel bands, log(mel + {front_end['log_offset']!r}),\n"
        f"// the first {coefficients} DCT-II coefficients (edge/device/mfcc.py).\n"
        + _array("float", "mfcc_window", hann_window(window))
        + _array("float", "mfcc_cos", np.cos(angles))
        + _array("float", "mfcc_sin", -np.sin(angles))
        + _array("uint16_t", "mfcc_bit_reversed", np.asarray(reversed_index))
        + _array("uint16_t", "mfcc_band_first", np.asarray(first))
        + _array("uint16_t", "mfcc_band_offset", offsets)
        + _array("float", "mfcc_band_weights", packed)
        + _array("float", "mfcc_dct", dct_matrix(bands)[:, :coefficients])
        + f"""
static float mfcc_real[{fft}];
static float mfcc_imag[{fft}];
static float mfcc_magnitude[{fft // 2 + 1}];
static float mfcc_log_mel[{bands}];

// In-place radix-2 FFT of mfcc_real + i mfcc_imag (decimation in time, inputs in bit-reversed order).
static void mfcc_fft(void) {{
  for (int i = 0; i < {fft}; ++i) {{
    const int j = mfcc_bit_reversed[i];
    if (j > i) {{
      const float t = mfcc_real[i];
      mfcc_real[i] = mfcc_real[j];
      mfcc_real[j] = t;
    }}
  }}
  for (int i = 0; i < {fft}; ++i) mfcc_imag[i] = 0.0f;
  for (int size = 2; size <= {fft}; size *= 2) {{
    const int half = size / 2, step = {fft} / size;
    for (int start = 0; start < {fft}; start += size) {{
      for (int k = 0; k < half; ++k) {{
        const float wr = mfcc_cos[k * step], wi = mfcc_sin[k * step];
        const int a = start + k, b = a + half;
        const float tr = wr * mfcc_real[b] - wi * mfcc_imag[b];
        const float ti = wr * mfcc_imag[b] + wi * mfcc_real[b];
        mfcc_real[b] = mfcc_real[a] - tr;
        mfcc_imag[b] = mfcc_imag[a] - ti;
        mfcc_real[a] += tr;
        mfcc_imag[a] += ti;
      }}
    }}
  }}
}}

// The clip is scaled to [-1, 1) and divided by its peak magnitude sample by sample as each frame reads it (the
// same float32 operations as dividing the whole clip first, without a float copy of it in RAM).
static float mfcc_sample(const model_raw_t* raw, int i, float peak) {{
  const float value = (float)raw[i] / {PCM_FULL_SCALE!r}f;
  return peak > 0.0f ? value / peak : value;
}}

void model_front_end(const model_raw_t* raw, float* features) {{
  float peak = 0.0f;
  for (int i = 0; i < {clip}; ++i) {{
    const float magnitude = fabsf((float)raw[i] / {PCM_FULL_SCALE!r}f);
    if (magnitude > peak) peak = magnitude;
  }}
  for (int frame = 0; frame < {frames}; ++frame) {{
    for (int i = 0; i < {fft}; ++i) {{
      mfcc_real[i] = i < {window} ? mfcc_sample(raw, frame * {stride} + i, peak) * mfcc_window[i] : 0.0f;
    }}
    mfcc_fft();
    for (int k = 0; k <= {fft // 2}; ++k) {{
      mfcc_magnitude[k] = sqrtf(mfcc_real[k] * mfcc_real[k] + mfcc_imag[k] * mfcc_imag[k]);
    }}
    for (int band = 0; band < {bands}; ++band) {{
      float mel = 0.0f;
      const float* weights = mfcc_band_weights + mfcc_band_offset[band];
      const int count = mfcc_band_offset[band + 1] - mfcc_band_offset[band];
      for (int k = 0; k < count; ++k) mel += weights[k] * mfcc_magnitude[mfcc_band_first[band] + k];
      mfcc_log_mel[band] = logf(mel + {float(front_end["log_offset"])!r}f);
    }}
    for (int c = 0; c < {coefficients}; ++c) {{
      float sum = 0.0f;
      for (int band = 0; band < {bands}; ++band) sum += mfcc_log_mel[band] * mfcc_dct[band * {coefficients} + c];
      features[frame * {coefficients} + c] = sum;
    }}
  }}
}}
"""
    )


def _spectral(front_end: dict[str, Any], input_values: int) -> str:
    steps, channels, bands = int(front_end["window_steps"]), len(front_end["channels"]), int(front_end["bands"])
    rate = spectral_rate(front_end)
    per_channel = 3 + bands
    if per_channel * channels != input_values:
        raise ValueError(
            f"{channels} channels of {per_channel} statistics do not fill the model's {input_values} inputs"
        )
    bins = steps // 2 + 1
    edges = band_edges(bins, bands)
    angles = 2.0 * np.pi * np.arange(steps) / steps
    return (
        f"// Spectral statistics of a window of {steps} samples x {channels} channels at {rate:g} Hz, per channel:\n"
        "// mean, RMS about the mean, peak frequency of the symmetric-Hann-windowed DFT (DC left out), log10 energy\n"
        f"// + {LOG_FLOOR!r} in {bands} bands (edge/device/windows.py), in double precision as numpy computes them.\n"
        f"static const double spectral_window[{steps}] = {{{_doubles(np.hanning(steps))}}};\n"
        f"static const double spectral_cos[{steps}] = {{{_doubles(np.cos(angles))}}};\n"
        f"static const double spectral_sin[{steps}] = {{{_doubles(np.sin(angles))}}};\n"
        + _array("uint16_t", "spectral_band_edges", edges)
        + f"""static double spectral_centred[{steps}];
static double spectral_power[{bins}];

void model_front_end(const model_raw_t* raw, float* features) {{
  for (int channel = 0; channel < {channels}; ++channel) {{
    double sum = 0.0;
    for (int n = 0; n < {steps}; ++n) sum += raw[n * {channels} + channel];
    const double mean = sum / {steps};
    double squares = 0.0;
    for (int n = 0; n < {steps}; ++n) {{
      spectral_centred[n] = raw[n * {channels} + channel] - mean;
      squares += spectral_centred[n] * spectral_centred[n];
    }}
    for (int k = 0; k < {bins}; ++k) {{
      double re = 0.0, im = 0.0;
      for (int n = 0; n < {steps}; ++n) {{
        const int turn = (int)(((long)k * n) % {steps});
        const double value = spectral_centred[n] * spectral_window[n];
        re += value * spectral_cos[turn];
        im -= value * spectral_sin[turn];
      }}
      spectral_power[k] = re * re + im * im;
    }}
    int peak = 1;
    for (int k = 2; k < {bins}; ++k) {{
      if (spectral_power[k] > spectral_power[peak]) peak = k;
    }}
    float* out = features + channel * {per_channel};
    out[0] = (float)mean;
    out[1] = (float)sqrt(squares / {steps});
    out[2] = (float)(peak / ({steps} * (1.0 / {rate!r})));
    for (int band = 0; band < {bands}; ++band) {{
      double energy = 0.0;
      for (int k = spectral_band_edges[band]; k < spectral_band_edges[band + 1]; ++k) energy += spectral_power[k];
      out[3 + band] = (float)log10(energy + {LOG_FLOOR!r});
    }}
  }}
}}
"""
    )
