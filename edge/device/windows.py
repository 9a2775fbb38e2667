"""Sensor streams cut into windows, and the front ends that turn a window into a model's input.

A stream is a CSV of samples, one row per sample: numeric channel columns (e.g. ``ax, ay, az, gx, gy, gz``), an
optional ``time`` column (seconds, or ISO 8601 datetimes), an optional group column naming the recording, and (for
training) a label column. Recordings are read as loggers write them: jittery timestamps are resampled to the nominal
rate and gaps split a recording into segments (:func:`read_stream` states the rule). Each segment is cut into
windows of ``window_steps`` samples every ``stride_steps`` samples; what the model sees of a window is its front
end's output:

- ``raw``: the samples themselves, ``(window_steps, channels)`` (the model's z-score layer normalizes each
  channel);
- ``spectral``: per channel, in the spirit of Edge Impulse's spectral-analysis block: the mean, the RMS
  of the signal minus its mean, the peak frequency of the Hann-windowed spectrum (Hz), and the log10
  energy in ``bands`` frequency bands from the first FFT bin above 0 Hz to the Nyquist frequency, their edges
  spaced logarithmically (body motion lives below a few hertz, where equal-width bands would lump walking and
  running together); ``channels * (3 + bands)`` values.

Training and the device runtime call the same functions (this module imports numpy only), so the device's front
end equals training's exactly; the front end's parameters travel in ``data.json`` and the manifest
(``front_end`` with ``kind: "windows"``). Series given whole (an ``.npz`` of series, a ``.ts`` file: see
:mod:`edge.device.series_files`) are one window each; their ``sample_rate`` may be None (unknown), which only the raw
front end accepts.
"""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.device.errors import UserError, is_number, plain_floats, printable, quoted

KIND = "windows"
FRONT_ENDS = ("raw", "spectral")
TIME_COLUMN = "time"
DEFAULT_GROUP = "recording"
SPECTRAL_STATISTICS = ("mean", "rms", "peak_hz")
TIMING_TOLERANCE = 0.01  # steps within 1% of the nominal period are regular: the samples are taken as they are
JITTER_LIMITS = (0.5, 1.5)  # in periods: a step inside is jitter (resampled), at or above the upper a gap (split)
LOG_FLOOR = 1e-12  # added to a band's energy before log10


@dataclass
class Stream:
    """The samples of one CSV stream, split into recordings and, at gaps in their timestamps, into segments.

    Args:
        channels: the channel column names, in order.
        recordings: per segment, its recording's name and its samples ``(steps, channels)`` float32 (a recording
            without gaps is one segment; the segments of one recording share its name).
        labels: per segment, each sample's label text (None when the stream has no label column).
        times: per segment, each sample's time in seconds (None without a ``time`` column).
        sample_rate: samples per second (from the ``time`` column, or as given).
        resampled: recordings whose timestamps jittered, resampled to the nominal rate.
        gaps: gaps at which a recording was split into segments.
    """

    channels: list[str]
    recordings: list[tuple[str, np.ndarray]]
    labels: list[list[str]] | None
    times: list[np.ndarray] | None
    sample_rate: float
    resampled: int = 0
    gaps: int = 0

    def note(self) -> str | None:
        """One line saying what reading changed (resampled recordings, gaps), or None when nothing was."""
        parts = []
        if self.resampled:
            parts.append(
                f"resampled {self.resampled} recording(s) with jittery timestamps to {self.sample_rate:g} Hz "
                "(linear interpolation)"
            )
        if self.gaps:
            parts.append(f"split recordings at {self.gaps} gap(s) in their timestamps (no window crosses a gap)")
        return "stream: " + "; ".join(parts) if parts else None


def read_stream(
    path: Path,
    sample_rate: float | None,
    label: str | None = None,
    group: str | None = None,
    channels: list[str] | None = None,
) -> Stream:
    """Read a CSV stream, resampling jittery recordings and splitting them at gaps.

    The ``time`` column holds seconds (numbers) or ISO 8601 datetimes (``2024-03-01T12:00:00.020Z``,
    ``1970-01-01 00:04:40.015``; read as seconds since the recording's first sample, UTC offsets applied). A
    recording's nominal period is ``1 / sample_rate`` when given, else the median step between its timestamps
    (refined to the mean of its steps within (0.5, 1.5) medians, so that jitter averages out); each step then is

    - within 1% of the period: regular, the samples are taken as they are;
    - within (0.5, 1.5) periods: jitter: the recording (each of its segments) is resampled to the nominal rate,
      each channel linearly interpolated at ``t0 + k / rate`` (labels: the nearest sample's);
    - 1.5 periods or more: a gap: the recording is split there into segments, which are cut into windows
      separately (no window crosses a gap; a segment shorter than a window gives none);
    - half a period or less (or not increasing): an error naming the line.

    Args:
        path: the CSV file (a header row, one row per sample).
        sample_rate: samples per second; None takes it from the ``time`` column.
        label: the label column (training); None for a stream to predict on.
        group: the column naming the recording; None uses ``recording`` when the stream has it, else the
            whole file is one recording.
        channels: the channel columns to read (a model's, from its manifest); None: every other column.

    Raises:
        UserError: a missing column, a cell that is not a number, no time column and no sample rate, timestamps
            of mixed or unreadable formats, or timestamps that do not increase by more than half a period.
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
    if not has_time:
        recordings = []
        for name in order:
            lines = [line for line, _ in parts[name]]
            recordings.append(
                (name, _numbers([[row[i] for i in wanted] for _, row in parts[name]], lines, channels, path))
            )
        labels = [[row[header.index(label)] for _, row in parts[name]] for name in order] if label else None
        return Stream(channels, recordings, labels, None, _sample_rate(sample_rate, [], path))
    time_index = header.index(TIME_COLUMN)
    datetimes = not is_number(rows[0][1][time_index])
    read = []
    for name in order:
        lines = [line for line, _ in parts[name]]
        values = _numbers([[row[index] for index in wanted] for _, row in parts[name]], lines, channels, path)
        stamps = _seconds([row[time_index] for _, row in parts[name]], lines, datetimes, path)
        texts = [row[header.index(label)] for _, row in parts[name]] if label else None
        read.append((name, lines, values, stamps, texts))
    rate = _sample_rate(sample_rate, [_rate(stamps, lines, name, path) for name, lines, _, stamps, _ in read], path)
    stream = Stream(channels, [], [] if label else None, [], rate)
    for name, lines, values, stamps, texts in read:
        _add_recording(stream, name, lines, values, stamps, texts, path)
    return stream


def _seconds(cells: list[str], lines: list[int], datetimes: bool, path: Path) -> np.ndarray:
    """A recording's timestamps as float64 seconds: numbers as they are, ISO 8601 datetimes as seconds since its
    first sample (numpy's parser: UTC offsets and ``Z`` are applied). Every cell must be of the first's kind."""
    if not datetimes:
        return _numbers([[cell] for cell in cells], lines, [TIME_COLUMN], path)[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy warns that it converts a datetime with a UTC offset to UTC
        try:
            stamps = np.array(cells, dtype="datetime64[ns]")
        except ValueError:
            stamps = None
        if stamps is None or np.isnat(stamps).any():
            for line, cell in zip(lines, cells, strict=True):
                try:
                    bad = is_number(cell) or np.isnat(np.datetime64(cell, "ns"))
                except ValueError:
                    bad = True
                if bad:
                    raise UserError(
                        f"CSV stream {path} line {line}: '{TIME_COLUMN}' holds '{printable(cell)}', which is not an "
                        "ISO 8601 datetime like the stream's first (e.g. 2024-03-01T12:00:00.020Z); write every time "
                        "as a datetime or every time as seconds"
                    )
    return (stamps - stamps[0]).astype(np.int64) / 1e9


def _rate(stamps: np.ndarray, lines: list[int], name: str, path: Path) -> float | None:
    """The nominal rate of one recording (None for one sample): one over its nominal period, the median step of its
    timestamps refined to the mean of the steps within :data:`JITTER_LIMITS` of it (the mean of jittery steps is the
    logger's true period; gaps do not count); a UserError naming the first line whose timestamp does not
    increase."""
    if len(stamps) < 2:
        return None
    steps = np.diff(stamps)
    back = np.flatnonzero(steps <= 0)
    if len(back):
        at = int(back[0])
        raise UserError(
            f"CSV stream {path} line {lines[at + 1]}: recording '{name}' has a timestamp {stamps[at + 1]:.6g} s "
            f"that does not come after the previous one ({stamps[at]:.6g} s); sort the samples by time and drop "
            "repeated rows"
        )
    median = float(np.median(steps))
    low, high = JITTER_LIMITS
    regular = steps[(steps > low * median) & (steps < high * median)]  # gaps left out; jitter averages out
    return 1.0 / float(np.mean(regular))


def _add_recording(
    stream: Stream,
    name: str,
    lines: list[int],
    values: np.ndarray,
    stamps: np.ndarray,
    texts: list[str] | None,
    path: Path,
) -> None:
    """Append one recording to ``stream`` as segments split at its gaps, each resampled to the stream's rate when
    its timestamps jitter (see :func:`read_stream`)."""
    period = 1.0 / stream.sample_rate
    steps = np.diff(stamps)
    low, high = JITTER_LIMITS
    close = np.flatnonzero(steps <= low * period)
    if len(close):
        at = int(close[0])
        raise UserError(
            f"CSV stream {path} line {lines[at + 1]}: recording '{name}' steps {steps[at]:.6g} s after the previous "
            f"sample, not more than half its period of {period:.6g} s (timestamps must increase by about one "
            "period); drop repeated or extra samples, or give the true --set sample_rate"
        )
    cuts = np.flatnonzero(steps >= high * period) + 1
    stream.gaps += len(cuts)
    jittered = False
    for first, last in zip([0, *cuts.tolist()], [*cuts.tolist(), len(stamps)], strict=True):
        times, samples = stamps[first:last], values[first:last]
        labels = texts[first:last] if texts is not None else None
        if len(times) > 1 and np.any(np.abs(np.diff(times) - period) > TIMING_TOLERANCE * period):
            jittered = True
            times, samples, labels = resample(times, samples, labels, stream.sample_rate)
        stream.recordings.append((name, samples))
        stream.times.append(times)
        if stream.labels is not None:
            stream.labels.append(labels)
    stream.resampled += jittered


def resample(
    times: np.ndarray, values: np.ndarray, labels: list[str] | None, rate: float
) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Resample one segment of a recording to ``rate``: the times ``t0 + k / rate`` up to its last sample, each
    channel linearly interpolated there, each label the nearest sample's (the earlier on a tie).

    Returns:
        The new times (float64), values (float32 ``(steps, channels)``) and labels.
    """
    count = int(math.floor((times[-1] - times[0]) * rate * (1 + 1e-9))) + 1
    grid = times[0] + np.arange(count) / rate
    columns = [np.interp(grid, times, values[:, channel].astype(np.float64)) for channel in range(values.shape[1])]
    samples = np.stack(columns, axis=1).astype(np.float32)
    if labels is None:
        return grid, samples, None
    after = np.clip(np.searchsorted(times, grid), 1, len(times) - 1)
    nearest = np.where(grid - times[after - 1] <= times[after] - grid, after - 1, after)
    return grid, samples, [labels[index] for index in nearest.tolist()]


def _numbers(cells: list[list[str]], lines: list[int], names: list[str], path: Path) -> np.ndarray:
    """The cells as float32 (float64 for the time column), or a UserError naming the first that is not a finite
    number."""
    try:
        values = plain_floats(cells)
    except ValueError:
        for line, row in zip(lines, cells, strict=True):
            for name, cell in zip(names, row, strict=True):
                if not is_number(cell):
                    mixed = "; write every time as seconds or every time as a datetime" if name == TIME_COLUMN else ""
                    raise UserError(
                        f"CSV stream {path} line {line}: column '{name}' holds '{quoted(cell)}', which is not a "
                        f"number{mixed}"
                    ) from None
        raise
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        row, column = bad[0]
        raise UserError(f"CSV stream {path} line {lines[row]}: column '{names[column]}' is not a finite number")
    return values.astype(np.float32) if names != [TIME_COLUMN] else values


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
    return spectral_features(windows, spectral_rate(front_end), front_end["bands"])


def spectral_rate(front_end: dict[str, Any]) -> float:
    """The sample rate the spectral front end's peak frequency is measured in: the series', or 1 for series of
    unknown rate (a ``.ts`` file, an ``.npz`` without ``sample_rate``), whose peak frequency is then in cycles per
    sample. The band energies do not depend on it."""
    rate = front_end.get("sample_rate")
    return 1.0 if rate is None else float(rate)


def describe(
    front_end: str, sample_rate: float | None, window_steps: int, stride_steps: int, channels: list[str], bands: int
) -> dict[str, Any]:
    """The front end's parameters as ``data.json`` and the manifest hold them (``sample_rate`` None: series of
    unknown rate, whose seconds are then None too and whose spectral peak frequency is in cycles per sample, see
    :func:`spectral_rate`)."""
    return {
        "kind": KIND,
        "front_end": front_end,
        "sample_rate": None if sample_rate is None else float(sample_rate),
        "window_steps": int(window_steps),
        "stride_steps": int(stride_steps),
        "window_seconds": None if sample_rate is None else window_steps / sample_rate,
        "stride_seconds": None if sample_rate is None else stride_steps / sample_rate,
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
            ``time`` column, or with datetimes).
        end_times: the time just after each window's last sample.
        note: what reading the stream changed (:meth:`Stream.note`), or None.
    """

    x: np.ndarray
    recordings: list[str]
    start_times: np.ndarray
    end_times: np.ndarray
    note: str | None = None


def stream_windows(path: Path, front_end: dict[str, Any]) -> StreamWindows:
    """Read a CSV stream with a model's front end (its manifest's) and cut every recording into its windows, as
    training did: jittery recordings resampled, recordings split at gaps (:func:`read_stream`).

    Raises:
        UserError: the model was trained on series without a sample rate, the stream lacks a channel of the
            model, or is sampled at another rate, or no segment of a recording holds a whole window.
    """
    rate, steps, stride = front_end["sample_rate"], front_end["window_steps"], front_end["stride_steps"]
    if rate is None:
        raise UserError(
            f"the model was trained on series of {steps} steps without a sample rate, so it cannot cut a CSV stream "
            "into windows; give the series as an .npy/.npz (x of shape (n, steps, channels)) or a .ts file"
        )
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
            f"CSV stream {path} holds no whole window of {steps} samples ({steps / rate:g} s) between gaps; give a "
            "longer recording"
        )
    return StreamWindows(
        np.concatenate(inputs), names, np.concatenate(starts_all), np.concatenate(ends_all), stream.note()
    )
