"""Features that take time to compute (decoded and resized images, MFCCs of clips) computed once, kept on disk.

A folder's features are computed a chunk of files at a time (memory is bounded by the chunk, not by the folder)
and written to ``<cache folder>/<front end>-<key>.npy``, one row per file. The key is a hash of the folder's
path and the front end's parameters. Beside the array, ``.files`` lists every row's file identity (relative path,
size, modification time) and ``.json`` a hash of them all. A later run of the same folder and parameters reuses
the array as it is; when files were changed, added or removed, a new array is written in which only those files
are computed and every other row is copied from the old one (replacing it, so a cache folder holds one array per
folder and front end). Another parameter is another key. Arrays are written to a temporary file and renamed into
place, so a kill leaves the old cache or the new one, never half of one.

Features that fit in ``in_memory_bytes`` (as float32) are loaded into memory; larger ones stay on disk as a
:class:`recipes.records.RecordArray` and are read a batch at a time.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edge.device.errors import UserError
from recipes.progress import Progress
from recipes.records import RecordArray
from recipes.rundir import temp_file, write_atomic

# Files computed at a time: bounds the memory of a chunk (512 clips' spectrograms: about 250 MiB).
CHUNK_FILES = 512
FORMAT_VERSION = 1
# Room left free on the cache's disk beyond the array itself.
DISK_MARGIN_BYTES = 64 * 2**20


@dataclass(frozen=True)
class CacheSettings:
    """Where features are cached and how much of them may be held in memory.

    Args:
        folder: the cache folder; None computes the features in memory and keeps nothing.
        in_memory_bytes: features larger than this (as float32) stay on disk and are read a batch at a time.
    """

    folder: Path | None = None
    in_memory_bytes: float = float("inf")

    @classmethod
    def from_config(cls, config: Any) -> CacheSettings:
        """The settings of a training config: ``cache_dir`` (default ``<out>/cache``) and ``in_memory_mb``."""
        folder = Path(config.cache_dir) if config.cache_dir else Path(config.out) / "cache"
        return cls(folder, float(config.in_memory_mb) * 2**20)


class FrontEnd(Protocol):
    """What turns files into rows of features."""

    name: str  # e.g. "images", "mfcc"
    noun: str  # what a file is, e.g. "clips"

    def parameters(self) -> dict[str, Any]:
        """Everything the features depend on besides the files (the cache key)."""

    def layout(self, files: Sequence[Path], progress: Callable[[str], None] | None) -> tuple[tuple[int, ...], Any]:
        """The shape of one row and the dtype stored, checking every file that can be checked cheaply first."""

    def compute(self, files: Sequence[Path]) -> np.ndarray:
        """The rows of ``files``, ``(len(files), *row_shape)``, in the stored dtype."""


def folder_features(
    root: Path,
    files: Sequence[Path],
    front_end: FrontEnd,
    settings: CacheSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> np.ndarray | RecordArray:
    """The features of ``files`` (all inside ``root``), from the cache when it is current.

    Args:
        root: the data folder (part of the cache key; file identities are relative to it).
        files: the files, in the data set's order.
        front_end: what computes a file's features.
        settings: cache folder and memory limit; None computes in memory without caching.
        progress: called with progress lines of a long computation.

    Returns:
        float32 features ``(len(files), *row_shape)``: in memory, or on disk when larger than the memory limit.

    Raises:
        UserError: a file cannot be used, or the cache's disk is full.
    """
    settings = settings or CacheSettings()
    if settings.folder is None:
        row_shape, _ = front_end.layout(files, progress)
        out = np.empty((len(files), *row_shape), np.float32)
        for start, rows in _chunks(files, front_end, progress):
            out[start : start + len(rows)] = rows
        return out
    identities = _identities(root, files)
    identity = hashlib.sha256("\n".join(identities).encode()).hexdigest()
    key = hashlib.sha256(
        json.dumps([FORMAT_VERSION, str(root.resolve()), front_end.name, front_end.parameters()]).encode()
    ).hexdigest()[:20]
    path = settings.folder / f"{front_end.name}-{key}.npy"
    if not _current(path, identity):
        _build(path, identity, identities, files, front_end, progress)
    records = RecordArray(path)
    if records.nbytes <= settings.in_memory_bytes:
        return np.asarray(records)
    return records


def _identities(root: Path, files: Sequence[Path]) -> list[str]:
    """Each file's path relative to ``root``, size and modification time, in order."""
    identities = []
    for file in files:
        status = file.stat()
        identities.append(f"{os.path.relpath(file, root)}\0{status.st_size}\0{status.st_mtime_ns}")
    return identities


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _rows_path(path: Path) -> Path:
    """The identity of each row of the array at ``path``, one per line (what a rebuild may reuse)."""
    return path.with_suffix(".files")


def _previous(path: Path, row_shape: tuple[int, ...], dtype: np.dtype) -> tuple[RecordArray, dict[str, int]] | None:
    """The old array at ``path`` and the row of each file identity in it, when its rows have this shape and dtype."""
    try:
        records = RecordArray(path)
        identities = _rows_path(path).read_text().split("\n")
    except (OSError, ValueError):
        return None
    if not records.complete or len(identities) != records.file_rows:
        return None
    if records.row_shape != tuple(row_shape) or records.stored_dtype != dtype:
        return None
    return records, {identity: row for row, identity in enumerate(identities)}


def _current(path: Path, identity: str) -> bool:
    """Whether the cached array at ``path`` was computed from exactly these files and is whole."""
    try:
        meta = json.loads(_meta_path(path).read_text())
        records = RecordArray(path)
    except (OSError, ValueError):
        return False
    return meta.get("files") == identity and meta.get("rows") == records.file_rows and records.complete


def _chunks(
    files: Sequence[Path],
    front_end: FrontEnd,
    report: Callable[[str], None] | None,
    old: RecordArray | None = None,
    old_rows: np.ndarray | None = None,
) -> Any:
    """(start, rows) of each chunk of files in order: the rows of files the ``old`` array holds (``old_rows``: the
    row of each file in it, or -1) copied, the others computed, with progress lines counting the computed ones."""
    old_rows = np.full(len(files), -1, np.int64) if old_rows is None else old_rows
    progress = Progress(report, "computing features of", front_end.noun, int(np.sum(old_rows < 0)))
    for start in range(0, len(files), CHUNK_FILES):
        rows_in_old = old_rows[start : start + CHUNK_FILES]
        missing = np.flatnonzero(rows_in_old < 0)
        computed = front_end.compute([files[start + position] for position in missing]) if len(missing) else None
        if len(missing) == len(rows_in_old):
            yield start, computed
        else:
            kept = np.flatnonzero(rows_in_old >= 0)
            values = old.raw(rows_in_old[kept])
            rows = np.empty((len(rows_in_old), *values.shape[1:]), values.dtype)
            rows[kept] = values
            if len(missing):
                rows[missing] = computed
            yield start, rows
        progress.advance(len(missing))
    progress.finish()


def _build(
    path: Path,
    identity: str,
    identities: list[str],
    files: Sequence[Path],
    front_end: FrontEnd,
    report: Callable[[str], None] | None,
) -> None:
    """Compute the features of ``files`` into ``path`` through a temporary file, reusing the rows of files whose
    identity the old array holds, then record their identities."""
    row_shape, dtype = front_end.layout(files, report)
    dtype = np.dtype(dtype)
    needed = len(files) * int(np.prod(row_shape)) * dtype.itemsize
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(path.parent).free
    except OSError as error:
        raise UserError(
            f"the feature cache folder {path.parent} cannot be used ({error.strerror or error}); "
            "pass --cache-dir naming a folder you can write"
        ) from None
    if free < needed + DISK_MARGIN_BYTES:
        raise _disk_full(path.parent, needed)
    previous = _previous(path, row_shape, dtype)
    old, old_rows = None, None
    if previous is not None:
        old, row_of = previous
        old_rows = np.array([row_of.get(identity, -1) for identity in identities], np.int64)

    _meta_path(path).unlink(missing_ok=True)  # the old array is no longer current
    descriptor, temporary = temp_file(path.parent, prefix=f".{path.stem}-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False}
            np.lib.format.write_array_header_1_0(handle, {**header, "shape": (len(files), *row_shape)})
            for _, rows in _chunks(files, front_end, report, old, old_rows):
                handle.write(np.ascontiguousarray(rows, dtype).tobytes())
        _rows_path(path).unlink(missing_ok=True)  # never an old row list beside a new array
        os.replace(temporary, path)
        write_atomic(_rows_path(path), "\n".join(identities))
        meta = {"files": identity, "rows": len(files), "front_end": front_end.name, **front_end.parameters()}
        write_atomic(_meta_path(path), json.dumps(meta, default=str))
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        if error.errno == errno.ENOSPC:
            raise _disk_full(path.parent, needed) from None
        raise
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _disk_full(folder: Path, needed: int) -> UserError:
    """The error for a cache that does not fit on its disk."""
    return UserError(
        f"the feature cache needs {needed / 2**30:.2f} GiB in {folder} and its disk is (nearly) full; "
        "free some space or pass --cache-dir naming a folder on another disk"
    )
