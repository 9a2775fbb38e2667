"""The labelled data set every loader returns and every later step reads (its own module, so that the loaders,
the audio front end and the synthetic sets can all build one without importing each other)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Dataset:
    """A labelled data set, features raw (unscaled).

    Args:
        x: float32 features: images ``(n, height, width, channels)``, tabular ``(n, features)``.
        y: int32 class indices ``0 .. num_classes - 1``, shape ``(n,)``.
        class_names: label text of each class index.
        kind: ``"image"``, ``"tabular"``, ``"audio"`` (MFCCs ``(n, frames, coefficients, 1)``) or ``"timeseries"``
            (windows of a sensor stream: ``(n, steps, channels)``, or their spectral features ``(n, values)``).
        name: the built-in set's name, or the file or folder stem.
        feature_names: tabular column names when known. Defaults to None.
        front_end: how raw signals became ``x``, when they did (the audio front end's parameters,
            which a device must repeat before calling the model). Defaults to None.
        targets: float64 ``(n, outputs)``, the label's values as numbers when every label is a finite number
            (what a regression learns); None for text labels. Defaults to None.
        target_names: the name of each column of ``targets`` (the CSV label columns). Defaults to None.
        groups: for windows of a stream, the index of each window's recording (the split keeps a recording in one
            part); None otherwise.
        group_names: the name of each recording ``groups`` indexes.
        windows_dropped: windows of a stream left out because no label held enough of their samples.
        changes: what the loader changed in the data, counted by kind (a stream's ``resampled_recordings`` and
            ``gaps``, a ``.ts`` file's ``resampled_series`` and ``missing_values``); ``data.json`` holds them.
        notes: one line per kind of change, for the console.
        sources: the file each example was read from, when each is one file (a folder of clips); None otherwise.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]
    kind: str
    name: str
    feature_names: list[str] | None = None
    front_end: dict | None = None
    targets: np.ndarray | None = None
    target_names: list[str] | None = None
    groups: np.ndarray | None = None
    group_names: list[str] | None = None
    windows_dropped: int = 0
    changes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sources: list[Path] | None = None

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example."""
        return tuple(self.x.shape[1:])


def encode_labels(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Map sorted unique labels to indices 0..k-1; numbers sort numerically, text alphabetically.

    Args:
        values: 1-D array of integer, float or string labels.

    Returns:
        The int32 index of each label and the text of each class.
    """
    unique, indices = np.unique(values, return_inverse=True)
    return indices.astype(np.int32).reshape(-1), [str(value) for value in unique.tolist()]


def labelled(x: np.ndarray, labels: np.ndarray, label_names: list[str], kind: str, name: str, **fields) -> Dataset:
    """A :class:`Dataset` from raw labels: class indices of a single label column, and its numbers as ``targets``.

    Args:
        x: the features.
        labels: ``(n,)`` or ``(n, columns)`` labels, numbers or text.
        label_names: the name of each label column.
        kind, name, fields: as :class:`Dataset`.

    Returns:
        The data set: ``y`` and ``class_names`` encode a single label column (several columns can only be
        regressed: ``y`` is then 0 and ``class_names`` empty); ``targets`` holds the labels as float64 numbers
        when every one is a finite number.
    """
    labels = np.asarray(labels)
    columns = labels.reshape(len(labels), -1)
    targets = None
    if columns.dtype.kind in "biuf":
        numbers = columns.astype(np.float64)
        targets = numbers if np.isfinite(numbers).all() else None
    if columns.shape[1] == 1:
        y, class_names = encode_labels(columns[:, 0])
    else:
        y, class_names = np.zeros(len(columns), np.int32), []
    return Dataset(
        x=x,
        y=y,
        class_names=class_names,
        kind=kind,
        name=name,
        targets=targets,
        target_names=list(label_names),
        **fields,
    )
