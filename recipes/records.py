"""Examples kept on disk: a ``.npy`` file read a few rows at a time, so memory is bounded by the batch.

A data set too large for memory (a folder of 100k images or clips) keeps its features in the feature cache
(:mod:`recipes.feature_cache`), one fixed-size row per example. :class:`RecordArray` reads those rows on demand
with ``os.pread``: no memory map, so the rows read do not stay in the process's memory (the operating system's
page cache keeps what fits, and gives it back under pressure). Indexing it as a numpy array (an int, a slice, an
index array or a mask) reads just those rows and returns float32; :func:`take` makes a lazy view of some rows (a
split part) that reads nothing until indexed.

Everything that feeds a model goes through :func:`keras_inputs` and :func:`batches`: an in-memory array is passed
to Keras as it is, a :class:`RecordArray` as a ``tf.data`` pipeline of batches read in order.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

# What one read from disk may hold: rows read at a time when an array is walked (statistics, evaluation) are
# capped so that a chunk of float32 rows stays within this (512 rows of 96x96x3 images would be 216 MiB).
CHUNK_BYTES = 16 * 2**20
CHUNK_ROWS = 512
# Evaluation batches read from disk at once, and ready ahead of the model (each up to CHUNK_BYTES).
READERS = 2
# Training batches read ahead from disk (small batches: 64 images of 96x96x3 are 7 MiB).
TRAINING_READ_AHEAD = 8
# Examples per step when a model only reads (evaluate, predict): the batch size of evaluation.
EVALUATION_BATCH = 1024


class RecordArray:
    """Rows of a 2-D-or-more ``.npy`` file (C order, fixed-size rows), read on demand as float32.

    Args:
        path: the ``.npy`` file.
        rows: the file rows this array shows, in order (a view); None for all of them.
    """

    def __init__(self, path: str | Path, rows: np.ndarray | None = None) -> None:
        self.path = Path(path)
        with self.path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            formats = np.lib.format
            read_header = formats.read_array_header_1_0 if version == (1, 0) else formats.read_array_header_2_0
            shape, fortran, dtype = read_header(handle)
            self.offset = handle.tell()
        if fortran or dtype.hasobject or len(shape) < 2:
            raise ValueError(f"{self.path} is not a C-order numeric array of rows")
        self.stored_dtype = dtype
        self.row_shape = tuple(int(side) for side in shape[1:])
        self.row_bytes = int(np.prod(self.row_shape)) * dtype.itemsize
        self.file_rows = int(shape[0])
        self.rows = np.arange(self.file_rows, dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
        self._descriptor = os.open(self.path, os.O_RDONLY)

    @property
    def shape(self) -> tuple[int, ...]:
        """``(rows, *row_shape)``, as numpy's."""
        return (len(self.rows), *self.row_shape)

    @property
    def ndim(self) -> int:
        """Number of dimensions, as numpy's."""
        return 1 + len(self.row_shape)

    dtype = np.dtype(np.float32)

    @property
    def complete(self) -> bool:
        """Whether the file holds every row its header declares (a copy or a write cut short does not)."""
        return self.path.stat().st_size == self.offset + self.file_rows * self.row_bytes

    @property
    def nbytes(self) -> int:
        """Bytes the rows would take in memory as float32."""
        return len(self.rows) * int(np.prod(self.row_shape)) * 4

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: Any) -> np.ndarray:
        """The rows ``key`` selects (an int, a slice, an index array or a boolean mask), read now, as float32."""
        if isinstance(key, tuple):
            first, rest = key[0], key[1:]
            return self[first][(slice(None), *rest) if not np.isscalar(first) else rest]
        if isinstance(key, int | np.integer):
            return self._read(self.rows[[int(key)]])[0]
        return self._read(self.rows[key])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        values = self._read(self.rows)
        return values if dtype is None else values.astype(dtype)

    def take(self, indices: np.ndarray) -> RecordArray:
        """A view of the rows at ``indices`` (positions in this array); nothing is read."""
        return RecordArray(self.path, self.rows[np.asarray(indices, np.int64)])

    def rows_within(self, limit: int, size_bytes: int = CHUNK_BYTES) -> int:
        """At most ``limit`` rows, fewer when ``limit`` float32 rows would take more than ``size_bytes``."""
        return max(1, min(int(limit), size_bytes // max(1, self.nbytes // max(1, len(self)))))

    def raw(self, rows: Any) -> np.ndarray:
        """File rows ``rows`` as stored (e.g. uint8 pixels), not converted to float32."""
        return self._read(np.asarray(rows, np.int64), self.stored_dtype)

    def _read(self, rows: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """Read file rows ``rows`` (any order, repeats allowed) with one ``pread`` per run of consecutive rows."""
        rows = np.asarray(rows, np.int64).reshape(-1)
        out = np.empty((len(rows), *self.row_shape), dtype)
        if not len(rows):
            return out
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        breaks = np.flatnonzero(np.diff(ordered) != 1) + 1
        for run in np.split(np.arange(len(ordered)), breaks):
            first, count = int(ordered[run[0]]), len(run)
            data = os.pread(self._descriptor, count * self.row_bytes, self.offset + first * self.row_bytes)
            if len(data) != count * self.row_bytes:
                raise OSError(f"{self.path} is shorter than its header says; delete it to rebuild the cache")
            values = np.frombuffer(data, self.stored_dtype).reshape(count, *self.row_shape)
            out[order[run]] = values
        return out

    def __del__(self) -> None:
        if getattr(self, "_descriptor", None) is not None:
            os.close(self._descriptor)

    def __getstate__(self) -> dict[str, Any]:  # a copy (another process) opens its own descriptor
        return {key: value for key, value in self.__dict__.items() if key != "_descriptor"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._descriptor = os.open(self.path, os.O_RDONLY)


def take(x: np.ndarray | RecordArray, indices: np.ndarray) -> np.ndarray | RecordArray:
    """The rows of ``x`` at ``indices``: a copy for an in-memory array, a lazy view for a :class:`RecordArray`."""
    return x.take(indices) if isinstance(x, RecordArray) else x[indices]


def on_disk(x: Any) -> bool:
    """Whether ``x`` is read from disk as needed rather than held in memory."""
    return isinstance(x, RecordArray)


def chunks(x: np.ndarray | RecordArray, size: int = CHUNK_ROWS) -> Iterator[np.ndarray]:
    """The rows of ``x`` in order, ``size`` at a time (fewer for large rows on disk: :data:`CHUNK_BYTES`)."""
    if on_disk(x):
        size = x.rows_within(size)
    for start in range(0, len(x), size):
        yield x[start : start + size]


def batches(x: RecordArray, y: np.ndarray | None, batch_size: int) -> Any:
    """A ``tf.data`` pipeline of ``x`` (and ``y``) in order, ``batch_size`` rows at a time (fewer when they would
    take more than :data:`CHUNK_BYTES`), :data:`READERS` batches read ahead."""
    import tensorflow as tf

    batch_size = x.rows_within(batch_size)
    pipeline = tf.data.Dataset.range(len(x)).batch(batch_size)
    if y is None:
        pipeline = pipeline.map(lambda positions: read_rows(x, positions), num_parallel_calls=READERS)
    else:
        labels = tf.constant(y)
        pipeline = pipeline.map(
            lambda positions: (read_rows(x, positions), tf.gather(labels, positions)),
            num_parallel_calls=READERS,
        )
    return pipeline.prefetch(READERS)


def read_rows(x: RecordArray, positions: Any) -> Any:
    """Inside a ``tf.data`` pipeline: the float32 rows of ``x`` at the int64 tensor ``positions``."""
    import tensorflow as tf

    values = tf.numpy_function(lambda indices: x[indices], [positions], tf.float32, stateful=False)
    return tf.ensure_shape(values, (None, *x.row_shape))


def keras_inputs(
    x: np.ndarray | RecordArray, y: np.ndarray | None = None, batch_size: int = EVALUATION_BATCH
) -> dict[str, Any]:
    """Keyword arguments for ``model.evaluate``/``model.predict``: the arrays themselves when in memory, a
    pipeline of batches read from disk otherwise."""
    if on_disk(x):
        return {"x": batches(x, y, batch_size)}
    return {"x": x, "batch_size": batch_size} | ({} if y is None else {"y": y})
