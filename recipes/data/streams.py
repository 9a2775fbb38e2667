"""Time-series data: labelled sensor streams (a CSV, or the built-in ``motion``) cut into labelled windows, and
series given whole (an ``.npz`` of equal-length series, a UCR/UEA ``.ts`` file), each one window.

Time-series mode is chosen explicitly: a stream is cut into windows by ``window_seconds``
(``--set window_seconds=2``; the built-in ``motion`` set's windows default to 2 s). A stream's recordings are read as
loggers write them (:func:`edge.device.windows.read_stream`): jittery timestamps are resampled to the nominal rate, gaps
split a recording into segments and no window crosses a gap; what was changed is counted (``Dataset.changes``) and
said in one line (``Dataset.notes``). A window's label is the majority label among its samples; a window whose
majority holds less than ``min_label_share`` of its samples (it straddles two activities) is dropped and counted. A
numeric label with many distinct values (a quantity, see :func:`recipes.tasks.looks_continuous`) gives each window
the mean of its samples' values instead, for a regression. Each window remembers its recording (``Dataset.groups``;
the segments of a recording are one group), so the split keeps every recording in one part
(:func:`recipes.splitting.group_split`).

Series given whole need no ``window_seconds``: a ``.ts`` file always holds series, and an ``.npz`` does when series
are asked for (:func:`asks_for_series`: a sample rate, the spectral front end or a recipe of series such as
``cnn1d``); its ``x`` is ``(n, steps, channels)`` or ``(n, steps)`` (one channel). The raw front end works without a
sample rate; the spectral one needs it. What the model sees of a window is its front end's output
(:mod:`edge.device.windows`). This module imports no TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.device.errors import UserError, printable, unknown_choice
from edge.device.series_files import RESAMPLED, SUFFIX, fit_length, read_ts
from edge.device.windows import (
    FRONT_ENDS,
    Stream,
    cut,
    describe,
    feature_names,
    model_inputs,
    read_stream,
    window_starts,
)
from recipes.dataset import Dataset, encode_labels, labelled
from recipes.registry import recipe_named

MOTION = "motion"
MIN_WINDOW_STEPS = 4


@dataclass(frozen=True)
class WindowSettings:
    """How a stream becomes windows (the config keys of the same names).

    Args:
        window_seconds: window length; None: series given whole (an ``.npz`` of series, a ``.ts`` file), each one
            window.
        stride_seconds: time between window starts; None: half a window.
        sample_rate: samples per second; None: from the stream's ``time`` column.
        group: the column naming each recording; None: ``recording`` when the stream has it.
        front_end: ``raw`` or ``spectral`` (:mod:`edge.device.windows`).
        min_label_share: the share of a window's samples its majority label needs, else it is dropped.
        bands: the spectral front end's frequency bands.
    """

    window_seconds: float | None
    stride_seconds: float | None = None
    sample_rate: float | None = None
    group: str | None = None
    front_end: str = "raw"
    min_label_share: float = 0.8
    bands: int = 8

    @classmethod
    def from_config(cls, config: Any) -> WindowSettings | None:
        """The settings of a config in time-series mode (``window_seconds`` set, or the ``motion`` data), or that
        asks for series given whole (:func:`asks_for_series`, ``window_seconds`` None); None otherwise.

        Raises:
            UserError: values out of range.
        """
        seconds = config.window_seconds
        if seconds is None and config.data == MOTION:
            from recipes.data.motion import WINDOW_SECONDS

            seconds = WINDOW_SECONDS
        if seconds is None and not asks_for_series(config):
            return None
        return cls(
            None if seconds is None else float(seconds),
            config.window_stride_seconds,
            config.sample_rate,
            config.group,
            config.front_end,
            config.min_label_share,
            config.spectral_bands,
        )

    def check(self) -> None:
        """Refuse impossible values in one line."""
        if self.front_end not in FRONT_ENDS:
            raise unknown_choice("front_end", self.front_end, FRONT_ENDS)
        for key, value in (("window_seconds", self.window_seconds), ("window_stride_seconds", self.stride_seconds)):
            if value is not None and not (math.isfinite(value) and value > 0):  # None: series given whole
                raise UserError(f"{key} must be > 0 seconds, got {value}; e.g. --set {key}=2")
        if self.sample_rate is not None and not (math.isfinite(self.sample_rate) and self.sample_rate > 0):
            raise UserError(f"sample_rate must be > 0 samples per second, got {self.sample_rate}; e.g. 50")
        if not 0.0 < self.min_label_share <= 1.0:
            raise UserError(f"min_label_share must be in (0, 1], got {self.min_label_share}; e.g. 0.8")
        if not 1 <= self.bands <= 64:
            raise UserError(f"spectral_bands must be in 1..64, got {self.bands}")

    def steps(self, sample_rate: float) -> tuple[int, int]:
        """(window, stride) in samples at ``sample_rate``."""
        if self.window_seconds is None:
            raise UserError("a stream is cut into windows of window_seconds; give it, e.g. --set window_seconds=2")
        window = round(self.window_seconds * sample_rate)
        stride = round((self.stride_seconds or self.window_seconds / 2) * sample_rate)
        if window < MIN_WINDOW_STEPS or stride < 1:
            raise UserError(
                f"a window of {self.window_seconds:g} s at {sample_rate:g} Hz holds {window} samples (stride {stride});"
                f" give at least {MIN_WINDOW_STEPS} samples per window and 1 per stride"
            )
        return window, stride


def asks_for_series(config: Any) -> bool:
    """Whether a config asks for series without windows of a stream: a ``.ts`` file, a sample rate, the spectral
    front end, or a recipe of series (its registry row's ``series``). An ``.npz``'s ``x`` is then read as series
    (each one window) rather than a table (2-D) or grayscale images (3-D)."""
    return (
        Path(str(config.data)).suffix.lower() == SUFFIX
        or config.sample_rate is not None
        or config.front_end != "raw"
        or recipe_named(config.recipe).series
    )


def load_stream_csv(path: Path, label: str, settings: WindowSettings) -> Dataset:
    """A labelled CSV stream as windows (see the module's description)."""
    stream = read_stream(path, settings.sample_rate, label, settings.group)
    dataset = windowed(stream, settings, path.stem, label)
    dataset.changes = {"resampled_recordings": stream.resampled, "gaps": stream.gaps}
    dataset.notes = [note] if (note := stream.note()) else []
    return dataset


def load_motion(settings: WindowSettings) -> Dataset:
    """The built-in ``motion`` recordings (:mod:`recipes.data.motion`) as windows."""
    from recipes.data.motion import CHANNELS, SAMPLE_RATE, motion_recordings

    recordings = motion_recordings()
    stream = Stream(
        list(CHANNELS),
        [(name, samples) for name, _, samples in recordings],
        [[activity] * len(samples) for _, activity, samples in recordings],
        None,
        settings.sample_rate or SAMPLE_RATE,
    )
    return windowed(stream, settings, MOTION, "activity")


def windowed(stream: Stream, settings: WindowSettings, name: str, label: str) -> Dataset:
    """Cut every segment of a labelled stream into windows and label them.

    Returns:
        A data set of kind ``"timeseries"``: ``x`` the front end's output per window, ``groups`` the recording
        of each window (the segments of a recording, split at gaps, are one group), ``front_end`` the parameters
        (:func:`edge.device.windows.describe`) and ``windows_dropped`` the windows left out for a mixed label.
    """
    from recipes.tasks import looks_continuous

    window, stride = settings.steps(stream.sample_rate)
    every_label = np.concatenate([np.asarray(labels) for labels in stream.labels])
    from recipes.data.tables import label_values

    values = label_values(every_label.tolist())
    continuous = looks_continuous(labelled(np.zeros((len(values), 1)), values, [label], "tabular", name))
    codes, names = encode_labels(values)
    recording_names = list(dict.fromkeys(recording for recording, _ in stream.recordings))
    group_of = {recording: index for index, recording in enumerate(recording_names)}
    windows, groups, kept_labels, dropped = [], [], [], 0
    offset = 0
    for recording, samples in stream.recordings:
        starts = window_starts(len(samples), window, stride)
        own = codes[offset : offset + len(samples)]
        numbers = values[offset : offset + len(samples)]
        offset += len(samples)
        for start in starts:
            part = own[start : start + window]
            if continuous:
                kept_labels.append(float(np.mean(numbers[start : start + window])))
            else:
                counts = np.bincount(part, minlength=len(names))
                if counts.max() < settings.min_label_share * window:
                    dropped += 1
                    continue
                kept_labels.append(names[int(counts.argmax())])
            windows.append(cut(samples, np.array([start]), window)[0])
            groups.append(group_of[recording])
    if len(windows) < 3:
        gaps = f", {stream.gaps} gap(s) split the recordings" if stream.gaps else ""
        raise UserError(
            f"the stream {name} gives {len(windows)} labelled window(s) of {settings.window_seconds:g} s "
            f"({dropped} dropped for a mixed label{gaps}); give longer recordings or shorter windows"
        )
    front_end = describe(settings.front_end, stream.sample_rate, window, stride, stream.channels, settings.bands)
    x = model_inputs(np.stack(windows), front_end)
    labels = np.asarray(kept_labels) if continuous else label_values(kept_labels)
    dataset = labelled(x, labels, [label], "timeseries", name, feature_names=feature_names(stream.channels, front_end))
    dataset.front_end = {**front_end, "min_label_share": settings.min_label_share}
    dataset.groups = np.asarray(groups, np.int64)
    dataset.group_names = recording_names
    dataset.windows_dropped = dropped
    return dataset


def load_series_npz(
    x: np.ndarray, labels: np.ndarray, settings: WindowSettings, name: str, sample_rate: float | None = None
) -> Dataset:
    """An ``.npz`` of equal-length series, ``x`` of shape ``(n, steps, channels)``, each series one window (no
    recordings known: the split cannot keep recordings apart).

    Args:
        x: the series, float32.
        labels: one label per series (text or numbers).
        settings: the front end; ``window_seconds``, when given, must equal a series' length.
        name: the data set's name.
        sample_rate: the ``.npz``'s own ``sample_rate`` array, if it has one.

    Raises:
        UserError: a sample rate that disagrees with the file's, ``window_seconds`` that is not a series' length or
            cannot be checked, the spectral front end without a sample rate, or series too short.
    """
    rate = _series_rate(settings.sample_rate, sample_rate, name)
    steps = x.shape[1]
    if settings.window_seconds is not None:
        if rate is None:
            raise UserError(
                f"an .npz of series carries no sample rate, so window_seconds cannot be matched to its {steps} "
                f"steps; drop --set window_seconds (each series is one window) or give it, e.g. --set "
                f"sample_rate=50 ({name})"
            )
        if abs(settings.window_seconds * rate - steps) > 0.5:
            raise UserError(
                f"the series of {name} are {steps} steps ({steps / rate:g} s at {rate:g} Hz), each one window, not "
                f"windows of {settings.window_seconds:g} s; drop --set window_seconds"
            )
    channels = [f"c{index}" for index in range(x.shape[2])]
    front_end = _series_front_end(settings, rate, steps, channels, name)
    dataset = labelled(
        model_inputs(x, front_end), labels, ["y"], "timeseries", name, feature_names=feature_names(channels, front_end)
    )
    dataset.front_end = front_end
    return dataset


def load_ts(path: Path, settings: WindowSettings) -> Dataset:
    """A UCR/UEA ``.ts`` file (:func:`edge.device.series_files.read_ts`) as series, each one window.

    Series of unequal length are linearly resampled to the file's longest (:func:`edge.device.series_files.fit_length`;
    ``front_end["lengths"]`` is then ``"resampled"``, so predict does the same); missing values were filled by
    interpolation. ``@classLabel`` classes keep their declared order (those without a series left out, said in a
    note); ``@targetLabel`` targets make a regression.

    Raises:
        UserError: a malformed file (the line named), no labels, ``window_seconds`` given, or series too short.
    """
    if settings.window_seconds is not None:
        raise UserError(f"a .ts file holds whole series, each one window; drop --set window_seconds ({path})")
    series_file = read_ts(path)
    if series_file.labels is None:
        raise UserError(
            f".ts file {path} has no labels (no '@classLabel true ...' or '@targetLabel true'); training needs a "
            "label after each series"
        )
    lengths = series_file.lengths
    steps = max(lengths)
    x, resampled = fit_length(series_file.series, steps)
    channels = [f"c{index}" for index in range(x.shape[2])]
    front_end = _series_front_end(settings, _series_rate(settings.sample_rate, None, path.stem), steps, channels, path)
    front_end["lengths"] = RESAMPLED if resampled else "equal"
    inputs = model_inputs(x, front_end)
    names = feature_names(channels, front_end)
    notes = [f"{path.stem}: {note}"] if (note := series_file.note()) else []
    if resampled:
        notes.append(
            f"{path.stem}: resampled {resampled} of {len(lengths)} series ({min(lengths)} to {steps} steps) to "
            f"{steps} steps, the longest (linear interpolation; predict resamples each series the same way)"
        )
    if series_file.regression:
        targets = np.asarray(series_file.labels, np.float64)
        dataset = labelled(inputs, targets, ["target"], "timeseries", path.stem, feature_names=names)
    else:
        present = set(series_file.labels)
        classes = [label for label in series_file.class_labels if label in present]
        absent = [label for label in series_file.class_labels if label not in present]
        if absent:
            notes.append(
                f"{path.stem}: @classLabel's {', '.join(map(printable, absent))} label no series; the model leaves "
                "them out"
            )
        index = {label: position for position, label in enumerate(classes)}
        y = np.asarray([index[label] for label in series_file.labels], np.int32)
        dataset = Dataset(inputs, y, classes, "timeseries", path.stem, names, target_names=["label"])
    dataset.front_end = front_end
    dataset.changes = {"resampled_series": resampled, "missing_values": series_file.missing}
    dataset.notes = notes
    return dataset


def _series_rate(given: float | None, stored: float | None, name: Any) -> float | None:
    """The series' sample rate: ``--set sample_rate`` or the file's own, which must agree; None when neither."""
    if given is not None and stored is not None and abs(given - stored) > 0.01 * stored:
        raise UserError(
            f"sample_rate {given:g} disagrees with the sample_rate {stored:g} stored in {name}; drop --set sample_rate"
        )
    return given if given is not None else stored


def _series_front_end(
    settings: WindowSettings, rate: float | None, steps: int, channels: list[str], name: Any
) -> dict[str, Any]:
    """The front end of series given whole: one window per series."""
    if steps < MIN_WINDOW_STEPS:
        raise UserError(f"the series of {name} have {steps} steps; give at least {MIN_WINDOW_STEPS} per series")
    return describe(settings.front_end, rate, steps, steps, channels, settings.bands)
