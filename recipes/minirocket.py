"""The ``minirocket`` recipe: MiniRocket's fixed convolutions as a Keras model that runs on TFLite Micro in int8.

MiniRocket (Dempster, Schmidt and Webb, KDD 2021) classifies a series by a linear model on features that no
training touches: 84 fixed kernels of length 9 (weights -1, and 2 at three of the nine taps: every choice of the
three, so each kernel sums to 0) at exponentially spaced dilations, each convolution output compared with biases
drawn from quantiles of that convolution on training examples, the feature being the proportion of positive
values (PPV) over time. This module computes the same kernels, dilations, channel subsets and biases in numpy
(seeded, from training examples the builder gets in :class:`recipes.layers.DataSpec`), and
:func:`build_minirocket` turns them into standard Keras layers:

- the z-score input (per channel, from the training split), as every recipe;
- per dilation and padding, Conv1D layers whose kernels are the fixed weights (not trainable) and whose biases are
  the negated quantiles, with a ReLU6 on ``6 (c - b) / w``: the step function of PPV becomes a ramp of width
  ``w`` (``rocket_ramp`` times the spread of that convolution's output on its example), which int8 rounds
  smoothly; each filter is one feature (kernel, dilation, bias), half the (kernel, dilation) pairs on the padded
  series and half on its valid part, as MiniRocket alternates them;
- a global average over time of each ramp (MEAN on the device): PPV, up to the ramp;
- a fixed Normalization of the features with their mean and variance on the training examples, and the task's
  dense output layer (a logistic regression over ``rocket_features`` features), the only trained weights.

The convolutions of one dilation are cut into groups whose output (steps × filters) holds at most
:data:`GROUP_BYTES` int8 values, each group averaged at once, so TFLite Micro's arena holds one group's output at a
time, not the whole feature map. The int8 export maps Conv1D with dilation to CONV_2D and the average to MEAN.
"""

from __future__ import annotations

import itertools
import math
from types import ModuleType
from typing import Any

import numpy as np

from edge.device.errors import UserError
from recipes.config import TrainConfig
from recipes.layers import DataSpec, keras_module_or_default, zscore_input

KERNEL_LENGTH = 9
# The 84 kernels: -1 everywhere and 2 at each choice of three of the nine taps (MiniRocket's kernel set).
KERNEL_TAPS = np.array(list(itertools.combinations(range(KERNEL_LENGTH), 3)), np.int64)
MAX_DILATIONS = 32  # MiniRocket's max_dilations_per_kernel
GROUP_BYTES = 16384  # largest int8 output (steps × filters) of one convolution group before its average
# The features' z-score divides by at least this (in ramp units, 0 to 6: 5% of the proportion of positive values):
# a feature that hardly varies over the training examples would otherwise magnify int8's rounding of it.
FEATURE_STD_FLOOR = 0.3
GOLDEN = (math.sqrt(5.0) + 1.0) / 2.0
MAX_CONCATENATED = 10  # TFLite Micro's CONCATENATION takes at most 10 inputs (kMaxInputNum)
EPSILON = 1e-7  # the z-score layer's floor of the deviation (Keras Normalization's)


def kernel_weights() -> np.ndarray:
    """The 84 MiniRocket kernels as a (9, 84) array: -1, and 2 at the three taps of each kernel."""
    weights = -np.ones((KERNEL_LENGTH, len(KERNEL_TAPS)), np.float32)
    for kernel, taps in enumerate(KERNEL_TAPS):
        weights[taps, kernel] = 2.0
    return weights


def quantile_points(count: int) -> np.ndarray:
    """MiniRocket's low-discrepancy quantiles: the fractional parts of ``i`` times the golden ratio, i = 1..count."""
    return (np.arange(1, count + 1) * GOLDEN) % 1.0


def dilations_for(length: int, features: int) -> tuple[np.ndarray, np.ndarray]:
    """MiniRocket's dilations for series of ``length`` steps and ``features`` features, and the features (biases)
    of each kernel at each dilation.

    Dilations are ``floor(2^e)`` for up to 32 exponents ``e`` spaced evenly from 0 to ``log2((length - 1) / 8)``
    (the longest a kernel of 9 taps spans inside the series), duplicates merged; the features per kernel
    (``features // 84``) are spread over them, the remainder to the smallest dilations first.
    """
    per_kernel = max(features // len(KERNEL_TAPS), 1)
    count = min(per_kernel, MAX_DILATIONS)
    multiplier = per_kernel / count
    largest = math.log2(max(length - 1, 1) / (KERNEL_LENGTH - 1)) if length > KERNEL_LENGTH else 0.0
    dilations, repeats = np.unique(
        np.floor(np.logspace(0, max(largest, 0.0), count, base=2)).astype(np.int64), return_counts=True
    )
    per_dilation = (repeats * multiplier).astype(np.int64)
    remainder = per_kernel - int(per_dilation.sum())
    index = 0
    while remainder > 0:
        per_dilation[index] += 1
        remainder -= 1
        index = (index + 1) % len(per_dilation)
    return dilations, per_dilation


def channel_masks(channels: int, combinations: int, rng: np.random.Generator) -> np.ndarray:
    """Which channels each (dilation, kernel) sums over, as a (combinations, channels) 0/1 array: MiniRocket draws
    ``floor(2^u)`` channels, ``u`` uniform in [0, log2(min(channels, 9) + 1)), at random for each."""
    masks = np.zeros((combinations, channels), np.float32)
    most = math.log2(min(channels, KERNEL_LENGTH) + 1)
    for row in range(combinations):
        size = min(int(2 ** rng.uniform(0, most)), channels)
        masks[row, rng.choice(channels, size, replace=False)] = 1.0
    return masks


def convolve(z: np.ndarray, weights: np.ndarray, dilation: int) -> np.ndarray:
    """Dilated convolution of z-scored series with zero ("same") padding, as Keras's Conv1D computes it.

    Args:
        z: (examples, steps, channels) series.
        weights: (9, channels, filters) kernels.
        dilation: steps between taps.

    Returns:
        (examples, steps, filters) outputs, float64.
    """
    steps = z.shape[1]
    half = (KERNEL_LENGTH - 1) // 2 * dilation
    padded = np.pad(z.astype(np.float64), ((0, 0), (half, half), (0, 0)))
    out = np.zeros((z.shape[0], steps, weights.shape[2]))
    for tap in range(KERNEL_LENGTH):
        out += padded[:, tap * dilation : tap * dilation + steps] @ weights[tap].astype(np.float64)
    return out


def padded_length(steps: int, dilation: int) -> int:
    """Steps of a series zero-padded at its end to a multiple of ``dilation`` (see :func:`build_minirocket`)."""
    return -(-steps // dilation) * dilation


def pad_to(z: np.ndarray, dilation: int) -> np.ndarray:
    """(examples, steps, channels) series with zeros appended up to :func:`padded_length`."""
    return np.pad(z, ((0, 0), (0, padded_length(z.shape[1], dilation) - z.shape[1]), (0, 0)))


def zscored(x: np.ndarray, spec: DataSpec) -> np.ndarray:
    """``x`` through the model's z-score layer (the spec's per-channel mean and variance)."""
    channels = x.shape[-1]
    mean = np.zeros(channels) if spec.mean is None else np.asarray(spec.mean, np.float64)
    variance = np.ones(channels) if spec.variance is None else np.asarray(spec.variance, np.float64)
    return (np.asarray(x, np.float64) - mean) / np.maximum(np.sqrt(variance), EPSILON)


class RocketPlan:
    """Everything fixed about a minirocket model, drawn from the seed and the training examples.

    Attributes:
        dilations: the dilations, ascending.
        per_dilation: features of each kernel at each dilation.
        masks: per dilation, (84, channels) channel subsets.
        biases: per dilation, (84, features per kernel) biases.
        widths: per dilation, (84,) ramp widths.
    """

    def __init__(self, config: TrainConfig, spec: DataSpec) -> None:
        steps, channels = spec.input_shape
        rng = np.random.default_rng(config.seed)
        self.dilations, self.per_dilation = dilations_for(steps, config.rocket_features)
        kernels = len(KERNEL_TAPS)
        masks = channel_masks(channels, len(self.dilations) * kernels, rng)
        self.masks = [masks[i * kernels : (i + 1) * kernels] for i in range(len(self.dilations))]
        quantiles = quantile_points(kernels * int(self.per_dilation.sum()))
        examples = None if spec.examples is None or len(spec.examples) == 0 else zscored(spec.examples, spec)
        self.biases, self.widths = [], []
        start = 0
        for index, (dilation, count) in enumerate(zip(self.dilations, self.per_dilation, strict=True)):
            kernel = self.kernel(index)
            biases = np.zeros((kernels, count))
            widths = np.full(kernels, float(config.rocket_ramp))
            for k in range(kernels):
                points = quantiles[start : start + count]
                start += count
                if examples is None:
                    continue
                example = pad_to(examples[rng.integers(len(examples))][np.newaxis], int(dilation))
                output = convolve(example, kernel[:, :, k : k + 1], int(dilation))
                output = output.reshape(-1)
                biases[k] = np.quantile(output, points)
                widths[k] = config.rocket_ramp * max(float(np.std(output)), 1e-3)
            self.biases.append(biases)
            self.widths.append(widths)

    def kernel(self, index: int) -> np.ndarray:
        """(9, channels, 84) kernels of dilation ``index``: each of the 84 over its channel subset."""
        return kernel_weights()[:, np.newaxis, :] * self.masks[index].T[np.newaxis]

    def padded(self, index: int) -> np.ndarray:
        """Whether each kernel of dilation ``index`` runs on the padded series (else on its valid part only):
        MiniRocket alternates them by kernel and dilation."""
        return (np.arange(len(KERNEL_TAPS)) + index) % 2 == 0

    def filters(self, index: int, padded: bool) -> tuple[np.ndarray, np.ndarray]:
        """Conv1D kernel (9, channels, filters) and bias (filters,) of dilation ``index``'s padded or valid
        features: ``6 / w`` times the kernel, bias ``-6 b / w``, so ReLU6 of the output is the ramp of width w."""
        kernel = self.kernel(index)
        chosen = np.flatnonzero(self.padded(index) == padded)
        count = int(self.per_dilation[index])
        scale = np.repeat(6.0 / self.widths[index][chosen], count)
        bias = -(self.biases[index][chosen].reshape(-1)) * scale
        weights = np.repeat(kernel[:, :, chosen], count, axis=2) * scale
        return weights.astype(np.float32), bias.astype(np.float32)

    def feature_count(self) -> int:
        """Features of the model: 84 kernels times the features per kernel at each dilation."""
        return len(KERNEL_TAPS) * int(self.per_dilation.sum())

    def features(self, x: np.ndarray, spec: DataSpec) -> np.ndarray:
        """The model's features of raw examples ``x`` in numpy (the ramps' means), in the model's order."""
        z = zscored(x, spec)
        columns = []
        for index, dilation in enumerate(self.dilations):
            half = (KERNEL_LENGTH - 1) // 2 * int(dilation)
            padded_z = pad_to(z, int(dilation))
            for padded in (True, False):
                weights, bias = self.filters(index, padded)
                if weights.shape[2] == 0:
                    continue
                output = np.clip(convolve(padded_z, weights, int(dilation)) + bias, 0.0, 6.0)
                if not padded:
                    output = output[:, half : padded_z.shape[1] - half]
                columns.append(output.mean(axis=1))
        return np.concatenate(columns, axis=1)


def build_minirocket(config: TrainConfig, spec: DataSpec, keras_module: ModuleType | None = None) -> Any:
    """MiniRocket as a Keras model: z-score → fixed dilated Conv1D ramps (ReLU6) → mean over time → fixed
    feature z-score → the task's dense output (see the module docstring).

    Args:
        config: training config (``rocket_features``, ``rocket_ramp``, ``seed``; the output layer's ``l2``).
        spec: input shape (steps, channels), outputs, statistics, and training examples (``examples``) for the
            biases and the feature statistics; without examples the biases are 0 and the features unscaled (a
            model whose weights are copied in afterwards, or one built only to be counted).
        keras_module: ``keras`` (default) or ``tf_keras``.

    Returns:
        An uncompiled model taking raw series and returning class probabilities (or a regression's values).
    """
    if len(spec.input_shape) != 2:
        raise UserError(
            f"the minirocket recipe needs series (steps, channels); this data has shape {spec.input_shape}: give "
            "an .npz whose x is (examples, steps, channels) or a CSV stream with --set window_seconds=S"
        )
    if spec.task != "classification":
        raise UserError(f"the minirocket recipe classifies; this is a {spec.task} task: use --recipe cnn1d")
    if spec.input_shape[0] < KERNEL_LENGTH:
        raise UserError(
            f"the minirocket recipe needs series of at least {KERNEL_LENGTH} steps (its kernels span 9); this data "
            f"has {spec.input_shape[0]}"
        )
    keras = keras_module_or_default(keras_module)
    from recipes.layers import kernel_regularizer

    plan = RocketPlan(config, spec)
    steps = spec.input_shape[0]
    if spec.examples is not None and len(spec.examples) > 0:
        values = plan.features(np.asarray(spec.examples), spec)
        feature_mean, feature_std = values.mean(axis=0), np.maximum(values.std(axis=0), FEATURE_STD_FLOOR)
    else:
        feature_mean, feature_std = np.zeros(plan.feature_count()), np.ones(plan.feature_count())
    inputs, z = zscore_input(keras, spec)
    logits, done = [], 0
    for index, dilation in enumerate(plan.dilations):
        # A dilated convolution without a dilation: the series, zero-padded to a multiple of d steps, as an image of
        # d columns, each row d steps after the one above, so a plain 9x1 convolution down the rows is the dilated
        # one. TensorFlow runs a dilated Conv1D/Conv2D as space-to-batch around a convolution with its bias added
        # after it, which the converter leaves unfused and int8 then quantizes before the ramp.
        d = int(dilation)
        length = padded_length(steps, d)
        image = keras.layers.ZeroPadding1D((0, length - steps), name=f"pad_d{d}")(z) if length > steps else z
        image = keras.layers.Reshape((length // d, d, spec.input_shape[1]), name=f"rows_d{d}")(image)
        for padded in (True, False):
            weights, bias = plan.filters(index, padded)
            rows = length // d if padded else length // d - (KERNEL_LENGTH - 1)
            group = max(GROUP_BYTES // max(rows * d, 1), 1)
            for first in range(0, weights.shape[2], group):
                kernel = weights[:, np.newaxis, :, first : first + group]
                count = kernel.shape[3]
                name = f"d{d}_{'same' if padded else 'valid'}_{first}"
                conv = keras.layers.Conv2D(
                    count,
                    (KERNEL_LENGTH, 1),
                    padding="same" if padded else "valid",
                    activation="relu6",
                    trainable=False,
                    name=f"rocket_{name}",
                )
                ramps = conv(image)
                conv.set_weights([kernel, bias[first : first + group]])
                # The features' z-score, per step (a mean commutes with it): a fixed 1x1 depthwise scale and shift.
                scale = keras.layers.DepthwiseConv2D(1, trainable=False, name=f"scaled_{name}")
                scaled = scale(ramps)
                mean, std = feature_mean[done : done + count], feature_std[done : done + count]
                scale.set_weights(
                    [(1.0 / std).reshape(1, 1, count, 1).astype(np.float32), (-mean / std).astype(np.float32)]
                )
                done += count
                # The linear head on each step, averaged over time: int8 rounds per-step contributions that the
                # average then smooths, instead of rounding each feature (a mean) to 1/256 of its range.
                head = keras.layers.Conv2D(
                    spec.num_classes,
                    1,
                    kernel_initializer="zeros",
                    kernel_regularizer=kernel_regularizer(config, spec, keras),
                    name=f"head_{name}",
                )(scaled)
                logits.append(keras.layers.GlobalAveragePooling2D(name=f"logits_{name}")(head))
    stacked = _concatenated(keras, logits, "group_logits")
    total = keras.layers.Dense(
        spec.num_classes, activation="softmax", use_bias=False, trainable=False, name="probabilities"
    )
    probabilities = total(stacked)
    total.set_weights([np.tile(np.eye(spec.num_classes, dtype=np.float32), (len(logits), 1))])
    return keras.Model(inputs, probabilities, name="minirocket")


def _concatenated(keras: ModuleType, tensors: list[Any], name: str) -> Any:
    """``tensors`` concatenated on their last axis, at most :data:`MAX_CONCATENATED` at a time (a tree of
    concatenations, in order), so that TFLite Micro can prepare every CONCATENATION."""
    level = 0
    while len(tensors) > 1:
        chunks = [tensors[first : first + MAX_CONCATENATED] for first in range(0, len(tensors), MAX_CONCATENATED)]
        last = len(chunks) == 1
        tensors = [
            chunk[0]
            if len(chunk) == 1
            else keras.layers.Concatenate(name=name if last else f"{name}_{level}_{index}")(chunk)
            for index, chunk in enumerate(chunks)
        ]
        level += 1
    return tensors[0]
