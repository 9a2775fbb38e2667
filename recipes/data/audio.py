"""Audio front end: WAV clips → the MLPerf Tiny keyword-spotting MFCCs (49 frames × 10 coefficients).

A data folder with one subfolder of ``.wav`` clips per class becomes a data set of kind ``"audio"``
with ``x`` of shape ``(n, 49, 10, 1)``, the input of the ``ds_cnn`` recipe. The features follow the
reference's front end (``keyword_spotting/get_dataset.py`` in github.com/mlcommons/tiny, all in
``tf.signal``), with the parameters of :data:`FRONT_END`:

1. read the clip (:mod:`edge.device.audio`, which the device runtime shares): PCM WAV (plain or
   WAVE_FORMAT_EXTENSIBLE), 8/16/24/32-bit integer samples scaled to [-1, 1],
   mono only (a stereo clip is an error that says to downmix: mixing channels silently could cancel a signal);
2. resample to 16 kHz when the clip has another rate (``scipy.signal.resample_poly``, polyphase with an
   anti-aliasing filter);
3. keep the first second, padding a shorter clip with silence at the end;
4. divide by the peak magnitude (the reference normalizes every clip to its maximum; a silent clip
   stays zero);
5. short-time Fourier transform with a 480-sample (30 ms) Hann window every 320 samples (20 ms),
   512-point FFT → 49 frames of 257 magnitudes;
6. 40 mel bands between 20 Hz and 4 kHz, log(mel + 1e-6), DCT-II → the first 10 coefficients.

The features are data preparation, not part of the model: a device must compute the same MFCCs
before calling the model (the parameters are recorded in the run's ``data.json`` as ``front_end``).
TensorFlow is imported only to compute the features; scipy only to resample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.device.audio import FRONT_END, prepare_clip, read_wav
from edge.device.errors import UserError
from edge.device.suffixes import WAV_SUFFIX
from recipes.dataset import Dataset

if TYPE_CHECKING:
    from recipes.feature_cache import CacheSettings


def mfcc_features(clips: np.ndarray) -> np.ndarray:
    """The reference MFCCs of 1-second 16 kHz clips.

    Args:
        clips: float32 array ``(n, 16000)`` from :func:`prepare_clip`.

    Returns:
        float32 array ``(n, 49, 10, 1)``: frames × coefficients × one channel.
    """
    from recipes.backend import import_keras

    import_keras()
    import tensorflow as tf

    stft = tf.signal.stft(
        tf.constant(clips, tf.float32),
        frame_length=FRONT_END["window_samples"],
        frame_step=FRONT_END["stride_samples"],
        fft_length=FRONT_END["fft_length"],
        window_fn=tf.signal.hann_window,
    )
    magnitudes = tf.abs(stft)
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(
        FRONT_END["mel_bins"],
        magnitudes.shape[-1],
        FRONT_END["sample_rate"],
        FRONT_END["lower_hz"],
        FRONT_END["upper_hz"],
    )
    log_mel = tf.math.log(tf.tensordot(magnitudes, mel_matrix, 1) + FRONT_END["log_offset"])
    mfccs = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., : FRONT_END["mfcc_coefficients"]]
    return mfccs.numpy().astype(np.float32)[..., np.newaxis]


class MfccFrontEnd:
    """WAV clips → the reference MFCCs (:data:`FRONT_END`), ``(49, 10, 1)`` float32 per clip."""

    name = "mfcc"
    noun = "clips"

    def parameters(self) -> dict[str, Any]:
        """:data:`FRONT_END` (the cache key)."""
        return dict(FRONT_END)

    def layout(self, files: Sequence[Path], progress: Callable[[str], None] | None) -> tuple[tuple[int, ...], Any]:
        """Every clip gives the same shape: frames × coefficients × one channel."""
        frames = 1 + (FRONT_END["clip_samples"] - FRONT_END["window_samples"]) // FRONT_END["stride_samples"]
        return (frames, FRONT_END["mfcc_coefficients"], 1), np.float32

    def compute(self, files: Sequence[Path]) -> np.ndarray:
        """Read and prepare the clips in parallel threads, then compute their MFCCs together."""
        from recipes.data.images import DECODING_THREADS

        with ThreadPoolExecutor(DECODING_THREADS) as pool:
            clips = list(pool.map(lambda file: prepare_clip(*read_wav(file)), files))
        return mfcc_features(np.stack(clips))


def load_wav_folder(
    folder: Path,
    class_folders: list[Path],
    cache: CacheSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> Dataset:
    """Load every ``.wav`` clip of each class subfolder and compute its MFCCs (through the feature cache).

    Args:
        folder: the data folder (its name becomes the data set's name).
        class_folders: its class subfolders, sorted (subfolder name = class name).
        cache: where the MFCCs are cached (:mod:`recipes.feature_cache`); None computes them in memory.
        progress: called with progress lines while the MFCCs of a large folder are computed.

    Returns:
        A data set of kind ``"audio"``, ``x`` of shape ``(n, 49, 10, 1)``, ``front_end`` = :data:`FRONT_END`.

    Raises:
        UserError: a class folder without clips, or a clip that cannot be used (see :func:`read_wav`).
    """
    from recipes.feature_cache import folder_features

    files, labels = [], []
    for class_index, class_folder in enumerate(class_folders):
        clips = sorted(
            child
            for child in class_folder.iterdir()
            if child.is_file() and child.suffix.lower() == WAV_SUFFIX and not child.name.startswith(".")
        )
        if not clips:
            raise UserError(f"class folder {class_folder} has no .wav clips; add the class's clips or remove it")
        files.extend(clips)
        labels.extend([class_index] * len(clips))
    return Dataset(
        x=folder_features(folder, files, MfccFrontEnd(), cache, progress),
        y=np.asarray(labels, np.int32),
        class_names=[class_folder.name for class_folder in class_folders],
        kind="audio",
        name=folder.resolve().name,
        front_end=dict(FRONT_END),
        sources=files,
    )
