"""Sensor streams cut into windows, and the front ends that turn a window into a model's input.

A stream is a CSV of samples, one row per sample: numeric channel columns (e.g. ``ax, ay, az, gx, gy, gz``), an
optional ``time`` column in seconds, an optional group column naming the recording, and (for training) a label
column. Each recording is cut into windows of ``window_steps`` samples every ``stride_steps`` samples; what the
model sees of a window is its front end's output:

- ``raw``: the samples themselves, ``(window_steps, channels)`` (the model's z-score layer normalizes each
  channel);
- ``spectral``: per channel, in the spirit of Edge Impulse's spectral-analysis block: the mean, the RMS
  of the signal minus its mean, the peak frequency of the Hann-windowed spectrum (Hz), and the log10
  energy in ``bands`` frequency bands from the first FFT bin above 0 Hz to the Nyquist frequency, their edges
  spaced logarithmically (body motion lives below a few hertz, where equal-width bands would lump walking and
  running together); ``channels * (3 + bands)`` values.

Training and the device runtime call the same functions (this module imports numpy only), so the device's front
end equals training's exactly; the front end's parameters travel in ``data.json`` and the manifest
(``front_end`` with ``kind: "windows"``).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recipes.errors import UserError

KIND = "windows"
FRONT_ENDS = ("raw", "spectral")
TIME_COLUMN = "time"
DEFAULT_GROUP = "recording"
SPECTRAL_STATISTICS = ("mean", "rms", "peak_hz")
TIMING_TOLERANCE = 0.01  # a sample period may differ from the stream's median period by 1%
LOG_FLOOR = 1e-12  # added to a band's energy before log10


@dataclass
class Stream:
    """The samples of one CSV stream, split into recordings.

    Args:
        channels: the channel column names, in order.
        recordings: per recording, its name and samples ``(steps, channels)`` float32.
        labels: per recording, each sample's label text (None when the stream has no label column).
        times: per recording, each sample's time in seconds (None without a ``time`` column).
        sample_rate: samples per second (from the ``time`` column, or as given).
    """

    channels: list[str]
    recordings: list[tuple[str, np.ndarray]]
    labels: list[list[str]] | None
    times: list[np.ndarray] | None
    sample_rate: float


def read_stream(
    path: Path,
    sample_rate: float | None,
    label: str | None = None,
    group: str | None = None,
    channels: list[str] | None = None,
) -> Stream:
    """Read a CSV stream.

    Args:
        path: the CSV file (a header row, one row per sample).
        sample_rate: samples per second; None takes it from the ``time`` column.
        label: the label column (training); None for a stream to predict on.
        group: the column naming the recording; None uses ``recording`` when the stream has it, else the
            whole file is one recording.
        channels: the channel columns to read (a model's, from its manifest); None: every other column.

    Raises:
        UserError: a missing column, a cell that is not a number, no time column and no sample rate, or
            timestamps that go back or are irregular.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [cell.strip() for cell in next(reader, [])]
            rows = [(reader.line_num, [cell.strip() for cell in row]) for row in reader if any(c.strip() for c in row)]
    except (UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"CSV stream {path} cannot be read ({error}); save it as UTF-8 CSV") from None
    if not rows:
        raise UserError(f"CSV stream {path} has no samples; write a header row, then one row per sample")
    group = group or (DEFAULT_GROUP if DEFAULT_GROUP in header else None)
    for name in (label, group, *(channels or [])):
        if name is not None and name not in header:
            raise UserError(f"CSV stream {path} has no column '{name}' (columns: {', '.join(header)})")
    special = {label, group, TIME_COLUMN}
    channels = channels or [name for name in header if name not in special]
    if not channels:
        raise UserError(f"CSV stream {path} has no channel columns besides {', '.join(sorted(filter(None, special)))}")
    wanted = [header.index(name) for name in channels]
    has_time = TIME_COLUMN in header
    order: list[str] = []
    parts: dict[str, list[tuple[int, list[str]]]] = {}
    for line, row in rows:
        if len(row) != len(header):
            raise UserError(f"CSV stream {path} line {line} has {len(row)} fields but the header has {len(header)}")
        name = row[header.index(group)] if group else path.stem
        if name not in parts:
            order.append(name)
            parts[name] = []
        parts[name].append((line, row))
    recordings, labels, times = [], [] if label else None, [] if has_time else None
    rates = []
    for name in order:
        lines = [line for line, _ in parts[name]]
        values = _numbers([[row[index] for index in wanted] for _, row in parts[name]], lines, channels, path)
        recordings.append((name, values))
        if labels is not None:
            labels.append([row[header.index(label)] for _, row in parts[name]])
        if times is not None:
            stamps = _numbers([[row[header.index(TIME_COLUMN)]] for _, row in parts[name]], lines, ["time"], path)
            times.append(stamps[:, 0].astype(np.float64))
            rates.append(_rate(times[-1], lines, name, path))
    return Stream(channels, recordings, labels, times, _sample_rate(sample_rate, rates, path))


def _numbers(cells: list[list[str]], lines: list[int], names: list[str], path: Path) -> np.ndarray:
    """The cells as float32, or a UserError naming the first that is not a finite number."""
    try:
        values = np.asarray(cells, dtype=np.float64)
    except ValueError:
        for line, row in zip(lines, cells, strict=True):
            for name, cell in zip(names, row, strict=True):
                try:
                    float(cell)
                except ValueError:
                    raise UserError(
                        f"CSV stream {path} line {line}: column '{name}' holds '{cell}', which is not a number"
                    ) from None
        raise
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        row, column = bad[0]
        raise UserError(f"CSV stream {path} line {lines[row]}: column '{names[column]}' is not a finite number")
    return values.astype(np.float32) if names != ["time"] else values


def _rate(stamps: np.ndarray, lines: list[int], name: str, path: Path) -> float | None:
    """The sample rate of one recording's timestamps; a UserError when they go back or are irregular."""
    if len(stamps) < 2:
        return None
    periods = np.diff(stamps)
    period = float(np.median(periods))
    if period <= 0:
        raise UserError(f"CSV stream {path}: recording '{name}' has timestamps that do not increase")
    off = np.flatnonzero(np.abs(periods - period) > TIMING_TOLERANCE * period)
    if len(off):
        at = int(off[0])
        raise UserError(
            f"CSV stream {path} line {lines[at + 1]}: recording '{name}' jumps {periods[at]:.6g} s where its "
            f"samples are {period:.6g} s apart (missing or irregular timestamps); resample the recording to a "
            "fixed rate, or split it into recordings at the gap"
        )
    return 1.0 / period


def _sample_rate(given: float | None, rates: list[float | None], path: Path) -> float:
    """The stream's sample rate: as given (checked against the timestamps), else the timestamps'."""
    measured = [rate for rate in rates if rate is not None]
    if given is None and not measured:
        raise UserError(
            f"CSV stream {path} has no '{TIME_COLUMN}' column; give the sample rate, e.g. --set sample_rate=50"
        )
    rate = float(given) if given is not None else float(np.median(measured))
    if not (math.isfinite(rate) and rate > 0):
        raise UserError(f"sample_rate must be > 0 samples per second, got {rate}")
    for other in measured:
        if abs(other - rate) > TIMING_TOLERANCE * rate:
            raise UserError(
                f"CSV stream {path} has recordings sampled at {other:.6g} Hz and at {rate:.6g} Hz; resample them to "
                "one rate"
            )
    return rate


def window_starts(steps: int, window_steps: int, stride_steps: int) -> np.ndarray:
    """The first sample of each whole window of a recording of ``steps`` samples."""
    if steps < window_steps:
        return np.zeros(0, np.int64)
    return np.arange(0, steps - window_steps + 1, stride_steps, dtype=np.int64)


def cut(values: np.ndarray, starts: np.ndarray, window_steps: int) -> np.ndarray:
    """Windows ``(len(starts), window_steps, channels)`` of one recording's samples."""
    if len(starts) == 0:
        return np.zeros((0, window_steps, values.shape[1]), np.float32)
    index = starts[:, None] + np.arange(window_steps)[None, :]
    return values[index]


def spectral_features(windows: np.ndarray, sample_rate: float, bands: int) -> np.ndarray:
    """Per window and channel: mean, RMS about the mean, peak frequency (Hz), log10 energy in ``bands`` bands
    with logarithmically spaced edges (:func:`band_edges`).

    Args:
        windows: ``(n, steps, channels)`` samples.
        sample_rate: samples per second.
        bands: frequency bands between the first bin above 0 Hz and the Nyquist frequency.

    Returns:
        float32 ``(n, channels * (3 + bands))``, channel by channel (see :func:`feature_names`).
    """
    windows = np.asarray(windows, np.float64)
    steps = windows.shape[1]
    mean = windows.mean(axis=1)
    centred = windows - mean[:, None, :]
    rms = np.sqrt(np.mean(centred**2, axis=1))
    spectrum = np.abs(np.fft.rfft(centred * np.hanning(steps)[None, :, None], axis=1)) ** 2  # (n, bins, channels)
    frequencies = np.fft.rfftfreq(steps, 1.0 / sample_rate)
    peak = frequencies[1:][np.argmax(spectrum[:, 1:, :], axis=1)]  # the DC bin left out
    edges = band_edges(len(frequencies), bands)
    energy = np.stack([spectrum[:, low:high, :].sum(axis=1) for low, high in _band_pairs(edges)], 1)
    logs = np.log10(energy + LOG_FLOOR)  # (n, bands, channels)
    per_channel = np.concatenate([mean[:, None], rms[:, None], peak[:, None], logs], axis=1)  # (n, 3 + bands, ch)
    return per_channel.transpose(0, 2, 1).reshape(len(windows), -1).astype(np.float32)


def band_edges(bins: int, bands: int) -> np.ndarray:
    """FFT bin edges of ``bands`` bands over bins ``1 .. bins - 1``: geometrically spaced, every band at least one
    bin wide (so the lowest bands hold one bin each when the window is short)."""
    edges = np.geomspace(1, bins, bands + 1)
    whole = [1]
    for edge in edges[1:]:
        whole.append(max(int(round(edge)), whole[-1] + 1))
    return np.minimum(np.asarray(whole), bins)


def _band_pairs(edges: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive (low, high) pairs of band edges."""
    return [(int(low), int(high)) for low, high in zip(edges[:-1], edges[1:], strict=True)]


def feature_names(channels: list[str], front_end: dict[str, Any]) -> list[str]:
    """Names of the model's input values: ``<channel>`` for raw windows, ``<channel>_<statistic>`` for spectral."""
    if front_end["front_end"] == "raw":
        return list(channels)
    statistics = [*SPECTRAL_STATISTICS, *(f"band{band}" for band in range(front_end["bands"]))]
    return [f"{channel}_{statistic}" for channel in channels for statistic in statistics]


def model_inputs(windows: np.ndarray, front_end: dict[str, Any]) -> np.ndarray:
    """What the model takes for ``windows`` ``(n, steps, channels)``: the windows, or their spectral features."""
    if front_end["front_end"] == "raw":
        return np.asarray(windows, np.float32)
    return spectral_features(windows, front_end["sample_rate"], front_end["bands"])


def describe(
    front_end: str, sample_rate: float, window_steps: int, stride_steps: int, channels: list[str], bands: int
) -> dict[str, Any]:
    """The front end's parameters as ``data.json`` and the manifest hold them."""
    return {
        "kind": KIND,
        "front_end": front_end,
        "sample_rate": float(sample_rate),
        "window_steps": int(window_steps),
        "stride_steps": int(stride_steps),
        "window_seconds": window_steps / sample_rate,
        "stride_seconds": stride_steps / sample_rate,
        "channels": list(channels),
        "bands": int(bands),
    }


@dataclass
class StreamWindows:
    """A stream's windows as a model takes them, with where each came from.

    Args:
        x: model inputs, one row per window.
        recordings: the recording of each window.
        start_times: each window's first sample's time in seconds (from the recording's start without a
            ``time`` column).
        end_times: the time just after each window's last sample.
    """

    x: np.ndarray
    recordings: list[str]
    start_times: np.ndarray
    end_times: np.ndarray


def stream_windows(path: Path, front_end: dict[str, Any]) -> StreamWindows:
    """Read a CSV stream with a model's front end (its manifest's) and cut every recording into its windows.

    Raises:
        UserError: the stream lacks a channel of the model, or is sampled at another rate, or no recording
            holds a whole window.
    """
    rate, steps, stride = front_end["sample_rate"], front_end["window_steps"], front_end["stride_steps"]
    stream = read_stream(Path(path), rate, channels=list(front_end["channels"]))  # timestamps checked against it
    inputs, names, starts_all, ends_all = [], [], [], []
    for index, (name, values) in enumerate(stream.recordings):
        starts = window_starts(len(values), steps, stride)
        origin = stream.times[index][0] if stream.times is not None else 0.0
        inputs.append(model_inputs(cut(values, starts, steps), front_end))
        names += [name] * len(starts)
        starts_all.append(origin + starts / rate)
        ends_all.append(origin + (starts + steps) / rate)
    if not names:
        raise UserError(
            f"CSV stream {path} holds no whole window of {steps} samples ({steps / rate:g} s); give a longer recording"
        )
    return StreamWindows(np.concatenate(inputs), names, np.concatenate(starts_all), np.concatenate(ends_all))
