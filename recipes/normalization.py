"""z-score statistics from the training split, baked into the model as its first layer."""

from __future__ import annotations

import numpy as np

from recipes.records import CHUNK_ROWS, RecordArray, chunks, on_disk

# A feature whose training variance is below this is constant: it is centred but not scaled,
# so an unseen value on the device cannot be blown up by a division by ~0.
CONSTANT_VARIANCE = 1e-12


def normalization_statistics(x_train: np.ndarray | RecordArray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (tabular) or per-channel (images) mean and variance of the training split.

    The seed's z-score: mu and sigma^2 come from the training split only and the same values
    are applied to dev, test and the device. Statistics are over every axis but the last, so
    images get one mean/variance per channel and tabular data one per column. Features read from disk are
    walked a chunk at a time, the chunks' float64 means and squared deviations merged exactly (Chan et al.'s
    pairwise update), so memory holds one chunk; in-memory features are one chunk.

    Args:
        x_train: raw training inputs, shape (n, ..., features_or_channels).

    Returns:
        (mean, variance), each of shape (x_train.shape[-1],), float32; constant features get
        variance 1.
    """
    axes = tuple(range(len(x_train.shape) - 1))
    count, mean, squares = 0, np.zeros(x_train.shape[-1]), np.zeros(x_train.shape[-1])
    for chunk in chunks(x_train, CHUNK_ROWS if on_disk(x_train) else max(len(x_train), 1)):  # on disk: 16 MiB
        values = chunk.astype(np.float64)
        size = values.size // values.shape[-1]
        chunk_mean = values.mean(axis=axes)
        chunk_squares = values.var(axis=axes) * size
        total = count + size
        delta = chunk_mean - mean
        mean = mean + delta * (size / total)
        squares = squares + chunk_squares + delta**2 * (count * size / total)
        count = total
    variance = squares / count
    variance = np.where(variance < CONSTANT_VARIANCE, 1.0, variance)
    return mean.astype(np.float32), variance.astype(np.float32)
