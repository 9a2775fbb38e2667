"""Time-series data: labelled sensor streams (a CSV, or the built-in ``motion``) cut into labelled windows.

Time-series mode is chosen explicitly: by ``window_seconds`` (``--set window_seconds=2``), or by the built-in
``motion`` set, whose windows default to 2 s. A window's label is the majority label among its samples; a window
whose majority holds less than ``min_label_share`` of its samples (it straddles two activities) is dropped and
counted. A numeric label with many distinct values (a quantity, see :func:`recipes.tasks.looks_continuous`) gives
each window the mean of its samples' values instead, for a regression. Each window remembers its recording
(``Dataset.groups``), so the split keeps every recording in one part (:func:`recipes.splitting.group_split`).
What the model sees of a window is its front end's output (:mod:`recipes.windows`). This module imports no
TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recipes.dataset import Dataset, encode_labels, labelled
from recipes.errors import UserError, unknown_choice
from recipes.windows import FRONT_ENDS, Stream, cut, describe, feature_names, model_inputs, read_stream, window_starts

MOTION = "motion"
MIN_WINDOW_STEPS = 4


@dataclass(frozen=True)
class WindowSettings:
    """How a stream becomes windows (the config keys of the same names).

    Args:
        window_seconds: window length.
        stride_seconds: time between window starts; None: half a window.
        sample_rate: samples per second; None: from the stream's ``time`` column.
        group: the column naming each recording; None: ``recording`` when the stream has it.
        front_end: ``raw`` or ``spectral`` (:mod:`recipes.windows`).
        min_label_share: the share of a window's samples its majority label needs, else it is dropped.
        bands: the spectral front end's frequency bands.
    """

    window_seconds: float
    stride_seconds: float | None = None
    sample_rate: float | None = None
    group: str | None = None
    front_end: str = "raw"
    min_label_share: float = 0.8
    bands: int = 8

    @classmethod
    def from_config(cls, config: Any) -> WindowSettings | None:
        """The settings of a config in time-series mode (``window_seconds`` set, or the ``motion`` data); None
        otherwise.

        Raises:
            UserError: values out of range.
        """
        seconds = config.window_seconds
        if seconds is None and config.data == MOTION:
            from recipes.motion import WINDOW_SECONDS

            seconds = WINDOW_SECONDS
        if seconds is None:
            return None
        return cls(
            float(seconds),
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
            if value is not None and not (math.isfinite(value) and value > 0):
                raise UserError(f"{key} must be > 0 seconds, got {value}; e.g. --set {key}=2")
        if not 0.0 < self.min_label_share <= 1.0:
            raise UserError(f"min_label_share must be in (0, 1], got {self.min_label_share}; e.g. 0.8")
        if not 1 <= self.bands <= 64:
            raise UserError(f"spectral_bands must be in 1..64, got {self.bands}")

    def steps(self, sample_rate: float) -> tuple[int, int]:
        """(window, stride) in samples at ``sample_rate``."""
        window = round(self.window_seconds * sample_rate)
        stride = round((self.stride_seconds or self.window_seconds / 2) * sample_rate)
        if window < MIN_WINDOW_STEPS or stride < 1:
            raise UserError(
                f"a window of {self.window_seconds:g} s at {sample_rate:g} Hz holds {window} samples (stride {stride});"
                f" give at least {MIN_WINDOW_STEPS} samples per window and 1 per stride"
            )
        return window, stride


def load_stream_csv(path: Path, label: str, settings: WindowSettings) -> Dataset:
    """A labelled CSV stream as windows (see the module's description)."""
    stream = read_stream(path, settings.sample_rate, label, settings.group)
    return windowed(stream, settings, path.stem, label)


def load_motion(settings: WindowSettings) -> Dataset:
    """The built-in ``motion`` recordings (:mod:`recipes.motion`) as windows."""
    from recipes.motion import CHANNELS, SAMPLE_RATE, motion_recordings

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
    """Cut every recording of a labelled stream into windows and label them.

    Returns:
        A data set of kind ``"timeseries"``: ``x`` the front end's output per window, ``groups`` the recording
        of each window, ``front_end`` the parameters (:func:`recipes.windows.describe`) and ``windows_dropped``
        the windows left out for a mixed label.
    """
    from recipes.tasks import looks_continuous

    window, stride = settings.steps(stream.sample_rate)
    every_label = np.concatenate([np.asarray(labels) for labels in stream.labels])
    from recipes.data import label_values

    values = label_values(every_label.tolist())
    continuous = looks_continuous(labelled(np.zeros((len(values), 1)), values, [label], "tabular", name))
    codes, names = encode_labels(values)
    windows, groups, kept_labels, dropped = [], [], [], 0
    offset = 0
    for index, (_, samples) in enumerate(stream.recordings):
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
            groups.append(index)
    if len(windows) < 3:
        raise UserError(
            f"the stream {name} gives {len(windows)} labelled window(s) of {settings.window_seconds:g} s "
            f"({dropped} dropped for a mixed label); give longer recordings or shorter windows"
        )
    front_end = describe(settings.front_end, stream.sample_rate, window, stride, stream.channels, settings.bands)
    x = model_inputs(np.stack(windows), front_end)
    labels = np.asarray(kept_labels) if continuous else label_values(kept_labels)
    dataset = labelled(x, labels, [label], "timeseries", name, feature_names=feature_names(stream.channels, front_end))
    dataset.front_end = {**front_end, "min_label_share": settings.min_label_share}
    dataset.groups = np.asarray(groups, np.int64)
    dataset.group_names = [recording for recording, _ in stream.recordings]
    dataset.windows_dropped = dropped
    return dataset


def load_windows_npz(x: np.ndarray, labels: np.ndarray, settings: WindowSettings, name: str) -> Dataset:
    """Windows already cut, ``x`` of shape ``(n, steps, channels)``, as a time-series data set (no recordings
    known: the split cannot keep recordings apart)."""
    if settings.sample_rate is None:
        raise UserError(f"an .npz of windows carries no sample rate; give it, e.g. --set sample_rate=50 ({name})")
    channels = [f"c{index}" for index in range(x.shape[2])]
    front_end = describe(settings.front_end, settings.sample_rate, x.shape[1], x.shape[1], channels, settings.bands)
    dataset = labelled(
        model_inputs(x, front_end), labels, ["y"], "timeseries", name, feature_names=feature_names(channels, front_end)
    )
    dataset.front_end = front_end
    return dataset
