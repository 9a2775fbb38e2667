"""``machine``: a seeded synthetic data set of machine vibration, normal and with injected faults.

Each example is 0.16 s of a vibration signal sampled at 8 kHz (1,280 samples), cut into 5 frames of
256 samples; each frame's Hann-windowed log power spectrum gives 128 bands (the Nyquist bin dropped),
so an example has 5 × 128 = 640 features, the layout of the MLPerf Tiny anomaly-detection reference
(5 frames × 128 log-mel bands).

Normal vibration: a shaft turning at about 200 Hz (±3 % per example) gives harmonics 1-6 with
amplitudes 1/k (±20 %), at a random phase and overall gain (±20 %), plus white noise. Faults, each
in equal numbers:

- ``bearing``: a damaged bearing rings a 2.5-3.5 kHz resonance at every ball pass (60-120 Hz), each
  impulse decaying in about 1.5 ms;
- ``harmonic``: misalignment shifts the 2nd or 3rd harmonic up by 8-15 %;
- ``drift``: the amplitude drifts up by 80-150 % across the example, as a loosening mount would.

Labels: ``normal`` and ``fault``. Split for the anomaly task (the autoencoder recipe), the faults go
to dev and test only. This module imports no TensorFlow.
"""

from __future__ import annotations

import numpy as np

from recipes.dataset import Dataset

SAMPLE_RATE = 8000
FRAME_SAMPLES = 256
FRAMES = 5
BANDS = FRAME_SAMPLES // 2  # rfft gives FRAME_SAMPLES // 2 + 1 bins; the Nyquist bin is dropped
NORMAL_EXAMPLES = 1000
FAULT_EXAMPLES = 240
FAULT_KINDS = ("bearing", "harmonic", "drift")
SHAFT_HZ = 200.0
HARMONICS = 6
NOISE_STDDEV = 0.05


def _normal_parts(generator: np.random.Generator) -> tuple[float, np.ndarray, np.ndarray, float]:
    """One normal example's shaft frequency, harmonic amplitudes, phases and gain."""
    shaft = SHAFT_HZ * generator.uniform(0.97, 1.03)
    amplitudes = generator.uniform(0.8, 1.2, HARMONICS) / np.arange(1, HARMONICS + 1)
    phases = generator.uniform(0, 2 * np.pi, HARMONICS)
    return shaft, amplitudes, phases, float(generator.uniform(0.8, 1.2))


def vibration(generator: np.random.Generator, fault: str | None = None) -> np.ndarray:
    """One example's raw signal, ``FRAMES * FRAME_SAMPLES`` samples at :data:`SAMPLE_RATE`.

    Args:
        generator: the random source (seeded by the caller).
        fault: None for normal vibration, or one of :data:`FAULT_KINDS`.
    """
    time = np.arange(FRAMES * FRAME_SAMPLES) / SAMPLE_RATE
    shaft, amplitudes, phases, gain = _normal_parts(generator)
    frequencies = shaft * np.arange(1, HARMONICS + 1)
    if fault == "harmonic":
        shifted = generator.integers(1, 3)  # the 2nd or 3rd harmonic
        frequencies[shifted] *= generator.uniform(1.08, 1.15)
    signal = (amplitudes[:, None] * np.sin(2 * np.pi * frequencies[:, None] * time + phases[:, None])).sum(axis=0)
    if fault == "bearing":
        period = 1.0 / generator.uniform(60, 120)
        since_impulse = (time + generator.uniform(0, period)) % period
        resonance = generator.uniform(2500, 3500)
        signal += 0.6 * np.exp(-since_impulse / 0.0015) * np.sin(2 * np.pi * resonance * since_impulse)
    if fault == "drift":
        signal *= 1.0 + generator.uniform(0.8, 1.5) * time / time[-1]
    return gain * signal + generator.normal(0, NOISE_STDDEV, time.shape)


def spectral_features(signal: np.ndarray) -> np.ndarray:
    """The 640 features of one signal: per frame, the log10 power of 128 Hann-windowed FFT bands."""
    frames = signal.reshape(FRAMES, FRAME_SAMPLES) * np.hanning(FRAME_SAMPLES)
    power = np.abs(np.fft.rfft(frames, axis=1)[:, :BANDS]) ** 2
    return np.log10(power + 1e-10).reshape(-1).astype(np.float32)


def machine_dataset(seed: int = 0) -> Dataset:
    """The ``machine`` data set: :data:`NORMAL_EXAMPLES` normal and :data:`FAULT_EXAMPLES` faulty examples.

    Args:
        seed: seed of the generator; the same seed gives the same data. Defaults to 0.

    Returns:
        A tabular data set of 640 features (``frame<f>_band<b>``), classes ``["normal", "fault"]``
        (label 0 is normal).
    """
    generator = np.random.default_rng(seed)
    kinds = [None] * NORMAL_EXAMPLES + [FAULT_KINDS[i % len(FAULT_KINDS)] for i in range(FAULT_EXAMPLES)]
    x = np.stack([spectral_features(vibration(generator, kind)) for kind in kinds])
    y = np.array([0 if kind is None else 1 for kind in kinds], np.int32)
    names = [f"frame{frame}_band{band}" for frame in range(FRAMES) for band in range(BANDS)]
    return Dataset(x=x, y=y, class_names=["normal", "fault"], kind="tabular", name="machine", feature_names=names)
