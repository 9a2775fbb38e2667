"""Features that take time to compute (decoded and resized images, MFCCs of clips) computed once, kept on disk.

A folder's features are computed a chunk of files at a time (memory is bounded by the chunk, not by the folder)
and written to ``<cache folder>/<front end>-<key>.npy``, one row per file. The key is a hash of the folder's
path and the front end's parameters; beside the array a ``.json`` records a hash of every file's identity
(relative path, size, modification time). A later run of the same folder and parameters reuses the array; a
changed, added or removed file, or another parameter, computes it again (replacing the old one, so a cache folder
holds one array per folder and front end). Arrays are written to a temporary file and renamed into place, so a
kill leaves the old cache or the new one, never half of one.

Features that fit in ``in_memory_bytes`` (as float32) are loaded into memory; larger ones stay on disk as a
:class:`recipes.records.RecordArray` and are read a batch at a time.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from recipes.errors import UserError
from recipes.progress import Progress
from recipes.records import RecordArray

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
    identity = _identity(root, files)
    if settings.folder is None:
        row_shape, dtype = front_end.layout(files, progress)
        out = np.empty((len(files), *row_shape), np.float32)
        for start, rows in _computed(files, front_end, progress):
            out[start : start + len(rows)] = rows
        return out
    key = hashlib.sha256(
        json.dumps([FORMAT_VERSION, str(root.resolve()), front_end.name, front_end.parameters()]).encode()
    ).hexdigest()[:20]
    path = settings.folder / f"{front_end.name}-{key}.npy"
    if not _current(path, identity):
        _build(path, identity, files, front_end, progress)
    records = RecordArray(path)
    if records.nbytes <= settings.in_memory_bytes:
        return np.asarray(records)
    return records


def _identity(root: Path, files: Sequence[Path]) -> str:
    """A hash of every file's path relative to ``root``, size and modification time, in order."""
    digest = hashlib.sha256()
    for file in files:
        status = file.stat()
        digest.update(f"{os.path.relpath(file, root)}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _current(path: Path, identity: str) -> bool:
    """Whether the cached array at ``path`` was computed from exactly these files and is whole."""
    try:
        meta = json.loads(_meta_path(path).read_text())
        records = RecordArray(path)
    except (OSError, ValueError):
        return False
    whole = path.stat().st_size == records.offset + records.file_rows * records.row_bytes
    return meta.get("files") == identity and meta.get("rows") == records.file_rows and whole


def _computed(files: Sequence[Path], front_end: FrontEnd, report: Callable[[str], None] | None) -> Any:
    """(start, rows) of each chunk of files, computed in order, with progress lines."""
    progress = Progress(report, "computing features of", front_end.noun, len(files))
    for start in range(0, len(files), CHUNK_FILES):
        chunk = files[start : start + CHUNK_FILES]
        yield start, front_end.compute(chunk)
        progress.advance(len(chunk))
    progress.finish()


def _build(
    path: Path, identity: str, files: Sequence[Path], front_end: FrontEnd, report: Callable[[str], None] | None
) -> None:
    """Compute the features of ``files`` into ``path`` through a temporary file, then record their identity."""
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
    _meta_path(path).unlink(missing_ok=True)  # the old array is no longer current
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False}
            np.lib.format.write_array_header_1_0(handle, {**header, "shape": (len(files), *row_shape)})
            for _, rows in _computed(files, front_end, report):
                handle.write(np.ascontiguousarray(rows, dtype).tobytes())
        os.replace(temporary, path)
        meta = {"files": identity, "rows": len(files), "front_end": front_end.name, **front_end.parameters()}
        _meta_path(path).write_text(json.dumps(meta, default=str))
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
