"""What training feeds a model: the data loaded, split and described once (:class:`PreparedData`), and the
tf.data pipeline of each epoch (the epoch-keyed shuffle, the batch size the data decides, augmentation of images
and sensor windows, a bounded read-ahead from disk). TensorFlow is imported inside the functions that build the
pipeline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from recipes.adaptive_defaults import adapt_to_data
from recipes.config import TrainConfig
from recipes.data import load_config_data
from recipes.dataset import Dataset
from recipes.layers import spec_examples
from recipes.models import DataSpec
from recipes.normalization import normalization_statistics
from recipes.records import TRAINING_READ_AHEAD, RecordArray, on_disk, read_rows, take
from recipes.splitting import Split, split_fractions
from recipes.tasks import Task, choose_task, task_named


@dataclass
class PreparedData:
    """A data set with its split, the model-facing description of it and its task (with the line announcing an
    automatic choice of task, if one was made)."""

    dataset: Dataset
    split: Split
    spec: DataSpec
    task: Task = task_named("classification")
    note: str | None = None

    def part(self, name: str) -> tuple[np.ndarray | RecordArray, np.ndarray]:
        """(x, y) of split part ``name`` ("train", "dev" or "test"); x is a lazy view when the features are read
        from disk (:func:`recipes.records.take`)."""
        indices = getattr(self.split, name)
        return take(self.dataset.x, indices), self.dataset.y[indices]

    def validation(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) that training watches each epoch: the dev split, as the task takes it (an anomaly detector
        watches its normal examples only)."""
        return self.task.validation(*self.part("dev"))


def prepare_data(config: TrainConfig, progress: Callable[[str], None] | None = None) -> PreparedData:
    """Load ``config.data``, choose the task, split (seeded, stratified) and compute training-split statistics
    (``progress``: called with progress lines of long steps, such as decoding a large folder)."""
    dataset = load_config_data(config, progress)
    task, note = choose_task(config, dataset)
    task.check_config(config)
    dataset = task.prepare(dataset, config)
    fractions = tuple(config.split) if config.split else split_fractions(len(dataset.y))
    split = task.split(dataset, fractions, config.seed)
    return PreparedData(dataset, split, data_spec(dataset, split, task), task, note)


def data_spec(dataset: Dataset, split: Split, task: Task) -> DataSpec:
    """What a builder needs to know about ``dataset``: shape, outputs, training-split statistics, task."""
    mean, variance = normalization_statistics(take(dataset.x, split.train))
    return DataSpec(
        dataset.input_shape,
        task.outputs(dataset),
        mean,
        variance,
        len(split.train),
        task.name,
        examples=spec_examples(dataset.x, split.train),
        **task.spec_fields(dataset, split),
    )


def batch_size_for(config: TrainConfig, num_train: int) -> int:
    """Examples per step: ``full`` (batch gradient descent) is the whole training split, ``auto`` the rule of
    :mod:`recipes.adaptive_defaults`."""
    config, _ = adapt_to_data(config, num_train)
    return num_train if config.batch_size == "full" else min(int(config.batch_size), num_train)


def augmenter(config: TrainConfig, data: PreparedData) -> Callable[[Any], Any] | None:
    """The training-only augmentation for this data kind, or None when none is configured."""
    import keras
    import tensorflow as tf

    if data.dataset.kind == "image":
        layers = []
        if config.flip != "none":
            layers.append(keras.layers.RandomFlip(config.flip, seed=config.seed))
        if config.rotation > 0:
            layers.append(keras.layers.RandomRotation(config.rotation, seed=config.seed))
        if config.translation > 0:
            layers.append(keras.layers.RandomTranslation(config.translation, config.translation, seed=config.seed))
        if config.zoom > 0:
            layers.append(keras.layers.RandomZoom(config.zoom, seed=config.seed))
        if not layers:
            return None
        pipeline = keras.Sequential(layers)
        return lambda x: pipeline(x, training=True)
    steps: list[Callable[[Any], Any]] = []
    if data.dataset.kind == "timeseries" and len(data.spec.input_shape) == 2:
        steps += _window_augmentation(config, data)
    if config.noise_stddev > 0:
        # Noise in z-score units: scaled by each feature's training std, added to the raw input.
        scale = tf.constant(config.noise_stddev * np.sqrt(data.spec.variance), tf.float32)
        steps.append(lambda x: x + tf.random.normal(tf.shape(x), seed=config.seed) * scale)
    if not steps:
        return None

    def augment(x: Any) -> Any:
        for step in steps:
            x = step(x)
        return x

    return augment


def _window_augmentation(config: TrainConfig, data: PreparedData) -> list[Callable[[Any], Any]]:
    """Raw windows ``(batch, steps, channels)``: each scaled about the channels' training means by a factor in
    1 ± ``amplitude_scale``, and shifted in time by up to ``time_shift`` of its length (the edge sample repeated)."""
    import tensorflow as tf

    steps = []
    mean = tf.constant(np.asarray(data.spec.mean, np.float32))
    if config.amplitude_scale > 0:
        low, high = 1 - config.amplitude_scale, 1 + config.amplitude_scale

        def scale(x: Any) -> Any:
            factor = tf.random.uniform([tf.shape(x)[0], 1, 1], low, high, seed=config.seed)
            return mean + (x - mean) * factor

        steps.append(scale)
    length = int(data.spec.input_shape[0])
    shift = round(config.time_shift * length)
    if shift > 0:

        def move(x: Any) -> Any:
            offsets = tf.random.uniform([tf.shape(x)[0], 1], -shift, shift + 1, tf.int32, seed=config.seed)
            index = tf.clip_by_value(tf.range(length)[None, :] + offsets, 0, length - 1)
            return tf.gather(x, index, batch_dims=1)

        steps.append(move)
    return steps


def training_dataset(config: TrainConfig, data: PreparedData, epoch: Any = None) -> Any:
    """Training batches as a ``tf.data`` pipeline, reshuffled every epoch, augmented if configured.

    The order of each epoch is a function of the seed and the epoch's number alone (a stateless shuffle keyed by
    the ``epoch`` variable, which :func:`fit_keras` sets as each epoch begins), so a run resumed at epoch k meets
    the batches an uninterrupted run would. Features in memory are gathered a batch at a time; features on disk
    are read a batch at a time (:class:`recipes.records.RecordArray`), so memory holds a few batches.

    Args:
        config: the training config (seed, batch size, augmentation).
        data: the prepared data; its training split is read.
        epoch: a ``tf.Variable`` (int64) holding the epoch about to run; None for epoch 0.
    """
    import tensorflow as tf

    x, y = data.part("train")
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False) if epoch is None else epoch
    seed = tf.constant(config.seed, tf.int64)

    def order(_: Any) -> Any:
        positions = tf.random.experimental.stateless_shuffle(
            tf.range(len(y), dtype=tf.int64), seed=tf.stack([seed, epoch.read_value()])
        )
        return tf.data.Dataset.from_tensor_slices(positions)

    labels = tf.constant(y)
    if on_disk(x):
        fetch = lambda positions: (read_rows(x, positions), tf.gather(labels, positions))  # noqa: E731
    else:
        features = tf.constant(x)
        fetch = lambda positions: (tf.gather(features, positions), tf.gather(labels, positions))  # noqa: E731
    batch = batch_size_for(config, len(y))
    pipeline = tf.data.Dataset.range(1).flat_map(order).batch(batch)
    pipeline = pipeline.apply(tf.data.experimental.assert_cardinality(-(-len(y) // batch)))  # steps per epoch
    pipeline = pipeline.map(fetch, num_parallel_calls=tf.data.AUTOTUNE)
    augment = augmenter(config, data)
    if augment is not None:
        pipeline = pipeline.map(lambda xb, yb: (augment(xb), yb), num_parallel_calls=tf.data.AUTOTUNE)
    # From disk, a fixed read-ahead: tf.data's autotuned buffer may grow to a share of the machine's memory.
    return pipeline.prefetch(TRAINING_READ_AHEAD if on_disk(x) else tf.data.AUTOTUNE)
