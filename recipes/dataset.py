"""The labelled data set every loader returns and every later step reads (its own module, so that the loaders,
the audio front end and the synthetic sets can all build one without importing each other)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Dataset:
    """A labelled data set, features raw (unscaled).

    Args:
        x: float32 features: images ``(n, height, width, channels)``, tabular ``(n, features)``.
        y: int32 class indices ``0 .. num_classes - 1``, shape ``(n,)``.
        class_names: label text of each class index.
        kind: ``"image"``, ``"tabular"`` or ``"audio"`` (MFCCs ``(n, frames, coefficients, 1)``).
        name: the built-in set's name, or the file or folder stem.
        feature_names: tabular column names when known. Defaults to None.
        front_end: how raw signals became ``x``, when they did (the audio front end's parameters,
            which a device must repeat before calling the model). Defaults to None.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]
    kind: str
    name: str
    feature_names: list[str] | None = None
    front_end: dict | None = None

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example."""
        return tuple(self.x.shape[1:])
