"""The audio front end in numpy: a ``.wav`` clip → the MFCCs an audio model takes, without TensorFlow.

Training computes the features with ``tf.signal`` (:func:`recipes.data.audio.mfcc_features`); this module
repeats those steps in numpy, so that the device runtime (:mod:`edge.device`, which imports no
TensorFlow) can take ``.wav`` clips. The parameters come from the ``front_end`` that the export copies
from the run's ``data.json`` into ``manifest.json``:

1. frames of ``window_samples`` every ``stride_samples`` (none padded at the end), each multiplied by a
   periodic Hann window (``0.5 - 0.5 cos(2 pi n / N)``, as ``tf.signal.hann_window``), real FFT of
   ``fft_length`` points, magnitude (``tf.signal.stft``, ``tf.abs``);
2. the mel filter bank of ``tf.signal.linear_to_mel_weight_matrix``: ``mel_bins`` triangles on the HTK mel
   scale (``1127 ln(1 + f / 700)``) whose edges are evenly spaced in mel between ``lower_hz`` and
   ``upper_hz``, evaluated at the FFT bins' frequencies, the DC bin weighted zero;
3. ``log(mel + log_offset)``;
4. ``tf.signal.mfccs_from_log_mel_spectrograms``: the unnormalized DCT-II (``2 sum x_n cos(pi k (2n + 1) / 2N)``)
   times ``1 / sqrt(2N)``, which is the orthonormal DCT-II except for the first coefficient (``sqrt(2)``
   larger), then the first ``mfcc_coefficients``.

Computed in float64 and returned as float32. Measured: equal to the same ``tf.signal`` steps run in float64
within 1e-13. Against the float32 features training used, the differences are ``tf.signal``'s float32
rounding, largest where a mel band holds little but leakage and the log magnifies it: up to 0.04 on tones
of 100 Hz-3 kHz, a 200-3800 Hz chirp and a tone padded with silence, 4e-6 on noise and silence, and 0.46 on
a 7 kHz tone, outside the 20 Hz-4 kHz bands, whose every band is leakage; the features span about -124 to 25.
``tests/test_edge_audio.py`` holds the float64 identity to the float32 rounding of the result (2e-5) and the
difference from training's features on in-band clips to 0.05.
Clips are read and prepared (16 kHz, first second, peak-normalized) by :mod:`recipes.data.audio`, which imports
no TensorFlow either; scipy only when a clip needs resampling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge.device.errors import UserError

MEL_BREAK_HZ = 700.0
MEL_HIGH_FREQUENCY_Q = 1127.0
# The front-end parameters this module computes; the clip preparation's must equal edge.device.audio.FRONT_END.
MFCC_KEYS = (
    "window_samples",
    "stride_samples",
    "fft_length",
    "mel_bins",
    "lower_hz",
    "upper_hz",
    "log_offset",
    "mfcc_coefficients",
)
CLIP_KEYS = ("sample_rate", "clip_samples", "peak_normalized")


def hann_window(length: int) -> np.ndarray:
    """The periodic Hann window of ``length`` samples (``tf.signal.hann_window``'s default)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)


def hertz_to_mel(frequencies: np.ndarray) -> np.ndarray:
    """Frequencies in Hz on the HTK mel scale, as ``tf.signal`` computes it."""
    return MEL_HIGH_FREQUENCY_Q * np.log1p(np.asarray(frequencies, np.float64) / MEL_BREAK_HZ)


def mel_weight_matrix(front_end: dict[str, Any]) -> np.ndarray:
    """The ``(fft_length // 2 + 1, mel_bins)`` filter bank of ``tf.signal.linear_to_mel_weight_matrix``."""
    spectrogram_bins = front_end["fft_length"] // 2 + 1
    bins_mel = hertz_to_mel(np.linspace(0.0, front_end["sample_rate"] / 2.0, spectrogram_bins)[1:])[:, np.newaxis]
    edges = np.linspace(
        hertz_to_mel(front_end["lower_hz"]), hertz_to_mel(front_end["upper_hz"]), front_end["mel_bins"] + 2
    )
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel - lower) / (center - lower)
    falling = (upper - bins_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.concatenate([np.zeros((1, front_end["mel_bins"])), weights])  # the DC bin weighs nothing


def dct_matrix(size: int) -> np.ndarray:
    """``(size, size)`` matrix of ``tf.signal.mfccs_from_log_mel_spectrograms``'s scaled DCT-II (input × matrix)."""
    n = np.arange(size)[:, np.newaxis]
    k = np.arange(size)[np.newaxis, :]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * size)) / np.sqrt(2.0 * size)


def mfcc(clips: np.ndarray, front_end: dict[str, Any]) -> np.ndarray:
    """The MFCCs of prepared clips.

    Args:
        clips: ``(n, clip_samples)`` samples, prepared as :func:`edge.device.audio.prepare_clip` does.
        front_end: the front end's parameters (:data:`edge.device.audio.FRONT_END`).

    Returns:
        float32 array ``(n, frames, mfcc_coefficients, 1)``.
    """
    clips = np.asarray(clips, np.float64)
    window, stride = front_end["window_samples"], front_end["stride_samples"]
    frames = 1 + (clips.shape[-1] - window) // stride
    starts = stride * np.arange(frames)[:, np.newaxis] + np.arange(window)[np.newaxis, :]
    magnitudes = np.abs(np.fft.rfft(clips[:, starts] * hann_window(window), n=front_end["fft_length"]))
    log_mel = np.log(magnitudes @ mel_weight_matrix(front_end) + front_end["log_offset"])
    coefficients = log_mel @ dct_matrix(front_end["mel_bins"])
    return coefficients[..., : front_end["mfcc_coefficients"], np.newaxis].astype(np.float32)


def wav_features(path: str | Path, front_end: dict[str, Any]) -> np.ndarray:
    """Read one ``.wav`` clip and compute its MFCCs.

    Args:
        path: a mono integer-PCM WAV file.
        front_end: the model's front end, from its manifest.

    Returns:
        float32 array ``(1, frames, mfcc_coefficients, 1)``.

    Raises:
        UserError: a clip that cannot be read (see :func:`edge.device.audio.read_wav`), a front end this module
            does not compute, or a clip that needs resampling without scipy installed.
    """
    from edge.device.audio import FRONT_END, prepare_clip, read_wav

    missing = [key for key in MFCC_KEYS if key not in front_end]
    different = [key for key in CLIP_KEYS if front_end.get(key) != FRONT_END[key]]
    if missing or different:
        raise UserError(
            f"the model's audio front end ({', '.join(missing + different)} missing or different) is "
            "not the one this runtime computes; give its MFCC features as a .npy file instead"
        )
    samples, rate = read_wav(path)
    try:
        clip = prepare_clip(samples, rate)
    except ImportError:
        raise UserError(
            f"{path} is sampled at {rate} Hz and resampling to {FRONT_END['sample_rate']} Hz needs "
            "scipy; pip install scipy, or record the clip at 16 kHz"
        ) from None
    return mfcc(clip[np.newaxis], front_end)
