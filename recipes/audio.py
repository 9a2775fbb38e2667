"""Audio front end: WAV clips → the MLPerf Tiny keyword-spotting MFCCs (49 frames × 10 coefficients).

A data folder with one subfolder of ``.wav`` clips per class becomes a data set of kind ``"audio"``
with ``x`` of shape ``(n, 49, 10, 1)``, the input of the ``ds_cnn`` recipe. The features follow the
reference's front end (``keyword_spotting/get_dataset.py`` in github.com/mlcommons/tiny, all in
``tf.signal``), with the parameters of :data:`FRONT_END`:

1. read the clip: PCM WAV (plain or WAVE_FORMAT_EXTENSIBLE), 8/16/24/32-bit integer samples scaled to [-1, 1],
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

import math
import os
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recipes.dataset import Dataset
from recipes.errors import UserError
from recipes.limits import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from recipes.suffixes import WAV_SUFFIX

if TYPE_CHECKING:  # the device runtime imports this module for its front end, never the cache
    from recipes.feature_cache import CacheSettings

FRONT_END = {
    "sample_rate": 16000,
    "clip_samples": 16000,
    "window_samples": 480,
    "stride_samples": 320,
    "fft_length": 512,
    "window": "hann",
    "mel_bins": 40,
    "lower_hz": 20.0,
    "upper_hz": 4000.0,
    "log_offset": 1e-6,
    "mfcc_coefficients": 10,
    "peak_normalized": True,
}
# Integer PCM sample widths in bytes and the value of full scale.
_FULL_SCALE = {1: 128.0, 2: 32768.0, 3: 8388608.0, 4: 2147483648.0}


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a mono integer-PCM WAV file.

    The RIFF chunks are parsed here rather than by the standard ``wave`` module, so that the
    ``WAVE_FORMAT_EXTENSIBLE`` header (what sox and ffmpeg write above 16 bits) reads on every Python: plain
    PCM (format tag 1) and EXTENSIBLE with the PCM sub-format are read; IEEE-float samples (format tag 3, or
    EXTENSIBLE with the float sub-format) and compressed formats are refused in one line.

    Args:
        path: the ``.wav`` file.

    Returns:
        The samples as float32 in [-1, 1] and the sample rate in Hz.

    Raises:
        UserError: the file is not a readable PCM WAV, is not mono, or holds no samples.
    """
    path = Path(path)
    try:
        channels, width, rate, data = _read_riff(path)
    except (_Unreadable, OSError) as error:
        reason = (error.strerror if isinstance(error, OSError) else None) or str(error) or type(error).__name__
        raise UserError(
            f"WAV file {path} cannot be read ({reason}); save it as integer PCM (e.g. 16-bit) WAV"
        ) from None
    if channels != 1:
        raise UserError(
            f"WAV file {path} has {channels} channels; the front end takes mono clips: downmix it first, "
            "e.g. sox in.wav -c 1 out.wav"
        )
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise UserError(
            f"WAV file {path} declares a sample rate of {rate:,} Hz (limits {MIN_SAMPLE_RATE:,}-{MAX_SAMPLE_RATE:,}); "
            "its header is damaged: save it again, e.g. sox in.wav -r 16000 out.wav"
        )
    if len(data) < width:
        raise UserError(f"WAV file {path} is empty (no samples); record it again or remove it")
    if width not in _FULL_SCALE:
        raise UserError(f"WAV file {path} has {8 * width}-bit samples; save it as 8, 16, 24 or 32-bit PCM")
    return _decode(data[: len(data) // width * width], width) / np.float32(_FULL_SCALE[width]), rate


class _Unreadable(Exception):
    """A file that is not a RIFF WAVE of integer PCM; the message says what is wrong with it."""


# WAVE format tags, and the tail every sub-format GUID of WAVE_FORMAT_EXTENSIBLE shares after its first two bytes
# (which hold the plain format tag: 00000001-0000-0010-8000-00aa00389b71 is PCM, 00000003-... IEEE float).
_PCM, _IEEE_FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_MAX_FMT_BYTES = 1 << 16  # a fmt chunk is 16-40 bytes; a larger size is a damaged header
_UNKNOWN_SIZE = 0xFFFFFFFF  # the data size of a WAV written to a pipe (sox, ffmpeg): the samples run to the end


def _read_riff(path: Path) -> tuple[int, int, int, bytes]:
    """The channels, sample width in bytes, sample rate and sample bytes of a RIFF WAVE file of integer PCM.

    A data chunk shorter than its header says is a file cut short (a copy interrupted, a disk that filled up): the
    standard ``wave`` module gives the samples that are there, which a model then hears as a clip of silence; here it
    is refused, except for the size 0xFFFFFFFF that writers streaming to a pipe put there (read to the end).

    Raises:
        _Unreadable: not a RIFF WAVE file, a header cut short or damaged, or samples that are not integer PCM.
        UserError: a data chunk cut short.
        OSError: the file cannot be opened or read.
    """
    with path.open("rb") as file:
        length = os.fstat(file.fileno()).st_size
        riff = file.read(12)
        if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
            raise _Unreadable("not a RIFF WAVE file")
        fmt: tuple[int, int, int] | None = None
        while True:
            header = file.read(8)
            if len(header) < 8:
                raise _Unreadable("no data chunk" if fmt is not None else "no fmt chunk")
            name, size = struct.unpack("<4sI", header)
            left = length - file.tell()  # a chunk size is read no further than the file goes: nothing is reserved
            if name == b"fmt ":
                if size > _MAX_FMT_BYTES:
                    raise _Unreadable(f"a fmt chunk of {size:,} bytes (at most {_MAX_FMT_BYTES:,})")
                fmt = _format(file.read(min(size, left)), size)
            elif name == b"data":
                if fmt is None:
                    raise _Unreadable("the data chunk comes before the fmt chunk")
                if left < size != _UNKNOWN_SIZE:
                    raise UserError(
                        f"WAV file {path} is cut short: its data chunk declares {size:,} bytes but the file holds "
                        f"{left:,}; copy or record it again"
                    )
                return (*fmt, file.read(min(size, left)))
            else:
                file.seek(size, os.SEEK_CUR)
            if size % 2:  # chunks are padded to an even size
                file.seek(1, os.SEEK_CUR)


def _format(body: bytes, size: int) -> tuple[int, int, int]:
    """Channels, sample width in bytes and sample rate from a ``fmt`` chunk of integer PCM (plain or EXTENSIBLE)."""
    if size < 16 or len(body) < 16:
        raise _Unreadable("fmt chunk cut short")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _EXTENSIBLE:
        if len(body) < 40:
            raise _Unreadable("WAVE_FORMAT_EXTENSIBLE fmt chunk cut short")
        valid_bits, _, guid = struct.unpack("<HI16s", body[18:40])
        if guid[2:] != _GUID_TAIL:
            raise _Unreadable(f"WAVE_FORMAT_EXTENSIBLE sub-format {guid.hex()} is not integer PCM")
        if valid_bits > bits:
            raise _Unreadable(f"{valid_bits} valid bits in {bits}-bit samples")
        tag = int.from_bytes(guid[:2], "little")
    if tag == _IEEE_FLOAT:
        raise _Unreadable(f"{bits}-bit IEEE float samples")
    if tag != _PCM:
        raise _Unreadable(f"format tag {tag:#06x} is not integer PCM")
    if channels == 0 or bits == 0:
        raise _Unreadable(f"the header declares {channels} channels of {bits}-bit samples")
    return channels, (bits + 7) // 8, rate


def _decode(data: bytes, width: int) -> np.ndarray:
    """Little-endian PCM bytes → float32 sample values (8-bit WAV is unsigned, the rest signed)."""
    if width == 1:
        return np.frombuffer(data, np.uint8).astype(np.float32) - 128.0
    if width == 3:
        triples = np.frombuffer(data[: len(data) // 3 * 3], np.uint8).reshape(-1, 3).astype(np.int32)
        values = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        return np.where(values >= 1 << 23, values - (1 << 24), values).astype(np.float32)
    return np.frombuffer(data, np.dtype(f"<i{width}")).astype(np.float32)


def prepare_clip(samples: np.ndarray, rate: int) -> np.ndarray:
    """Resample to 16 kHz, keep the first second (pad with silence), divide by the peak magnitude.

    Args:
        samples: mono samples in [-1, 1].
        rate: their sample rate in Hz.

    Returns:
        float32 array of :data:`FRONT_END` ``clip_samples`` samples.
    """
    target = FRONT_END["sample_rate"]
    if rate != target:
        try:
            from scipy.signal import resample_poly
        except ImportError:  # a device bundle installs the runtime's packages only
            raise UserError(
                f"the clip is sampled at {rate} Hz and the model's front end at {target} Hz; resampling needs "
                f"scipy: pip install scipy, or record at {target} Hz"
            ) from None

        divisor = math.gcd(rate, target)
        samples = resample_poly(samples, target // divisor, rate // divisor)
    clip = np.zeros(FRONT_END["clip_samples"], np.float32)
    kept = samples[: len(clip)]
    clip[: len(kept)] = kept
    peak = np.abs(clip).max()
    return clip / peak if peak > 0 else clip


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
        from recipes.data import DECODING_THREADS

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
