"""``.npz`` archives: ``x`` (features, images, or series) and ``y`` (labels), checked before they are loaded."""

from __future__ import annotations

import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from edge.device.errors import UserError, first_line
from edge.device.limits import MAX_ARRAY_BYTES, array_header_refusal, zip_too_large
from recipes.dataset import Dataset, labelled

_NPZ_HINT = "save it with np.savez(path, x=features, y=labels)"


def load_npz(path: Path, windows: Any = None) -> Dataset:
    """Load arrays ``x`` (features) and ``y`` (labels) from an ``.npz`` file, never unpickling.

    ``x`` is read as series, each one window (:func:`recipes.data.streams.load_series_npz`), when series are asked for
    (``windows`` given: a sample rate, the spectral front end, a recipe of series, or ``window_seconds``) or the file
    holds a ``sample_rate`` array: ``(n, steps, channels)``, or ``(n, steps)`` for one channel. Otherwise a 2-D ``x``
    is a table and a 3-D or 4-D one images, as always.
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(f"NPZ file {path} cannot be read ({first_line(error)}); {_NPZ_HINT}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UserError(f"NPZ file {path} holds a single array, not x and y; {_NPZ_HINT}")
    with archive:
        x = _npz_array(archive, "x", path)
        y = _npz_array(archive, "y", path)
        rate = _npz_sample_rate(archive, path) if "sample_rate" in archive.files else None
    series = windows is not None or rate is not None
    if series and x.ndim not in (2, 3):
        raise UserError(
            f"NPZ file {path}: array 'x' has shape {x.shape}; series need (series, steps, channels), or "
            "(series, steps) for one channel"
        )
    dimensions = x.ndim
    x = _npz_features(x, path)
    labels = _npz_labels(y, path)
    if len(labels) != len(x):
        raise UserError(
            f"NPZ file {path}: array 'x' has {len(x)} examples but array 'y' has {len(labels)} labels; "
            "give one label per example"
        )
    if series:
        from recipes.data.streams import WindowSettings, load_series_npz

        settings = windows or WindowSettings(None)
        settings.check()
        return load_series_npz(x[..., 0] if dimensions == 3 else x[..., np.newaxis], labels, settings, path.stem, rate)
    kind = "tabular" if x.ndim == 2 else "image"
    names = ["y"] if labels.ndim == 1 else [f"y{column}" for column in range(labels.shape[1])]
    return labelled(x, labels, names, kind, path.stem)


def _npz_sample_rate(archive, path: Path) -> float:
    """An ``.npz``'s ``sample_rate`` array: one positive finite number."""
    value = _npz_array(archive, "sample_rate", path)
    if value.size != 1 or value.dtype.kind not in "iuf" or not (np.isfinite(value).all() and float(value) > 0):
        raise UserError(
            f"NPZ file {path}: array 'sample_rate' must be one number of samples per second > 0, e.g. "
            "np.savez(path, x=series, y=labels, sample_rate=50)"
        )
    return float(value.reshape(-1)[0])


def _npz_array(archive, name: str, path: Path) -> np.ndarray:
    """Read array ``name`` from an open ``.npz`` archive, never unpickling. Its zip entry's declared size and its
    header (dtype and shape) are checked before anything is inflated: an array of Python objects, one larger than
    :data:`edge.device.limits.MAX_ARRAY_BYTES` and a damaged or cut-short file are each their own line."""
    if name not in archive.files:
        present = ", ".join(archive.files) or "none"
        raise UserError(f"NPZ file {path} has no array '{name}' (arrays: {present}); {_NPZ_HINT}")
    where = f"NPZ file {path}: array '{name}'"
    smaller = "save smaller arrays (or fewer examples)"
    try:
        info = archive.zip.getinfo(f"{name}.npy" if f"{name}.npy" in archive.zip.namelist() else name)
        refusal = zip_too_large(where, [info], MAX_ARRAY_BYTES, smaller)
        if refusal is not None:
            raise UserError(refusal)
        with archive.zip.open(info) as member:
            refusal = array_header_refusal(
                member, where, smaller, "save plain numeric x and integer or string y arrays"
            )
        if refusal is not None:
            raise UserError(refusal)
        return archive[name]
    except UserError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        raise UserError(f"NPZ file {path} is damaged or cut short ({first_line(error)}); save it again") from None
    except (SyntaxError, tokenize.TokenError):  # numpy parses the header as a Python literal
        raise UserError(
            f"NPZ file {path} is damaged or cut short (array '{name}' has a damaged header); save it again"
        ) from None


def _npz_features(x: np.ndarray, path: Path) -> np.ndarray:
    """Check ``x`` and return it as float32 ``(n, d)`` or ``(n, h, w, c)``."""
    if x.dtype.kind not in "biuf":
        raise UserError(f"NPZ file {path}: array 'x' has dtype {x.dtype}; x must hold numbers")
    if x.ndim not in (2, 3, 4):
        raise UserError(
            f"NPZ file {path}: array 'x' has shape {x.shape}; use (examples, features), "
            "(examples, height, width) or (examples, height, width, channels)"
        )
    if len(x) == 0:
        raise UserError(f"NPZ file {path}: array 'x' has no examples")
    if 0 in x.shape[1:]:
        raise UserError(
            f"NPZ file {path}: array 'x' has shape {x.shape}, no values per example; save at least one feature"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # too large for float32 becomes inf, reported below
        x = x.astype(np.float32)
    finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if not finite.all():
        raise UserError(
            f"NPZ file {path}: array 'x' has NaN or infinite values (first in example "
            f"{int(np.argmin(finite))}); fill in or drop those examples"
        )
    return x[..., np.newaxis] if x.ndim == 3 else x


def _npz_labels(y: np.ndarray, path: Path) -> np.ndarray:
    """Check ``y`` and return it as a 1-D integer, float or string array, or ``(n, outputs)`` numbers."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.ndim not in (1, 2) or (y.ndim == 2 and y.dtype.kind not in "biuf"):
        raise UserError(
            f"NPZ file {path}: array 'y' has shape {y.shape}; give one label per example, shape (n,), or one "
            "number per output of a regression, shape (n, outputs)"
        )
    if y.dtype.kind == "S":
        return y.astype(str)
    if y.dtype.kind in "biuU":
        return y
    if y.dtype.kind == "f" and np.isfinite(y).all():
        return y.astype(np.int64) if (y == np.round(y)).all() else y.astype(np.float64)
    if y.dtype.kind == "f":
        raise UserError(f"NPZ file {path}: array 'y' has NaN or infinite values; fill in or drop those examples")
    raise UserError(f"NPZ file {path}: array 'y' has dtype {y.dtype}; y must hold numbers or string labels")
