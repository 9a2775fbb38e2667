"""Audio clips as the device reads them: a WAV file's samples, and the one-second clip the MFCC front end takes.

:func:`read_wav` reads mono 8/16/24/32-bit integer PCM, including WAVE_FORMAT_EXTENSIBLE headers and the unknown
data size of a WAV written to a pipe, with numpy alone;
:func:`prepare_clip` resamples to :data:`FRONT_END`'s rate (scipy, when it must), keeps the first second and
divides by the peak. Training (:mod:`recipes.data.audio`) and the device runtime both call them.
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

import numpy as np

from edge.device.errors import UserError
from edge.device.limits import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

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
