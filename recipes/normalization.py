"""z-score statistics from the training split, baked into the model as its first layer."""

from __future__ import annotations

import numpy as np

# A feature whose training variance is below this is constant: it is centred but not scaled,
# so an unseen value on the device cannot be blown up by a division by ~0.
CONSTANT_VARIANCE = 1e-12


def normalization_statistics(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (tabular) or per-channel (images) mean and variance of the training split.

    The seed's z-score: mu and sigma^2 come from the training split only and the same values
    are applied to dev, test and the device. Statistics are over every axis but the last, so
    images get one mean/variance per channel and tabular data one per column.

    Args:
        x_train: raw training inputs, shape (n, ..., features_or_channels).

    Returns:
        (mean, variance), each of shape (x_train.shape[-1],), float32; constant features get
        variance 1.
    """
    axes = tuple(range(x_train.ndim - 1))
    values = x_train.astype(np.float64)
    mean = values.mean(axis=axes)
    variance = values.var(axis=axes)
    variance = np.where(variance < CONSTANT_VARIANCE, 1.0, variance)
    return mean.astype(np.float32), variance.astype(np.float32)
