"""Loading a data set: a built-in set, a CSV or NPZ file, or a folder of images or of WAV clips.

:func:`load_dataset` turns any of these into a :class:`Dataset` of raw float32 features and int32
class indices. Nothing is scaled here: normalization is learned from the training split and lives in
the model (except for WAV clips, which become MFCC features: see :mod:`recipes.data.audio`). Every mistake
in the user's data raises :class:`~edge.device.errors.UserError` with one line that names the problem and
the fix. This module imports no TensorFlow; scikit-learn, PIL and the audio front end are imported
only by the loaders that need them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.device.errors import UserError, closest
from recipes.data.arrays import load_npz
from recipes.data.builtins import load_builtin
from recipes.data.images import check_image_size, load_folder
from recipes.data.tables import load_csv
from recipes.dataset import Dataset
from recipes.feature_cache import CacheSettings

# scikit-learn's embedded sets, then the synthetic machine-vibration set (recipes/data/machine.py).
BUILTIN_DATASETS = ("digits", "iris", "wine", "breast_cancer", "machine", "diabetes", "linnerud", "motion")

_SOURCE_HINT = (
    f"pass a path to a .csv/.npz/.ts file, an image or .wav folder, or a built-in set ({', '.join(BUILTIN_DATASETS)})"
)


def load_config_data(config: Any, progress: Callable[[str], None] | None = None) -> Dataset:
    """The data set a training config names, with its label column(s), image size, feature cache
    (:class:`recipes.feature_cache.CacheSettings`) and, in time-series mode, its windows
    (:class:`recipes.data.streams.WindowSettings`); ``progress`` receives progress lines of long steps."""
    from recipes.data.streams import WindowSettings

    return load_dataset(
        config.data,
        config.label,
        config.image_size,
        WindowSettings.from_config(config),
        cache=CacheSettings.from_config(config),
        progress=progress,
    )


def load_dataset(
    source: str,
    label: str = "label",
    image_size: list[int] | None = None,
    windows: Any = None,
    *,
    cache: CacheSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> Dataset:
    """Load a built-in set, a ``.csv``, ``.npz`` or ``.ts`` file, or a folder with one subfolder per class.

    Args:
        source: a name from :data:`BUILTIN_DATASETS` or a path.
        label: CSV column that holds the label; several columns separated by commas (a regression with several
            outputs). Defaults to ``"label"``.
        image_size: ``[height, width]`` that folder images are resized to. Defaults to None (the
            first image's size).
        windows: a :class:`recipes.data.streams.WindowSettings` for time-series mode: with ``window_seconds`` a CSV is a
            stream cut into windows, ``motion`` the built-in stream; with or without it an ``.npz`` holds series
            ``(n, steps, channels)`` or ``(n, steps)``, each one window (without settings, only an ``.npz`` with a
            ``sample_rate`` array does). A ``.ts`` file is always series. Defaults to None.
        cache: where a folder's features (decoded images, MFCCs) are cached, and how large they may be in memory
            before they are read from disk a batch at a time. Defaults to None: computed in memory, not cached.
        progress: called with progress lines of long steps (decoding a large folder). Defaults to None.

    Returns:
        The data set, with at least two classes (or, for several label columns, numeric targets).

    Raises:
        UserError: the source does not exist or its content is not usable.
    """
    source = str(source)
    if windows is not None and windows.window_seconds is not None:
        dataset = _load_windows(source, label, windows)
    elif source in BUILTIN_DATASETS:
        dataset = load_builtin(source)
    else:
        path = Path(source)
        if path.is_dir():
            dataset = load_folder(path, check_image_size(image_size), label, cache, progress)
        elif path.is_file():
            dataset = _load_file(path, label, windows)
        else:
            raise _missing_source(source)
    _check_classes(dataset, source)
    return dataset


def _load_windows(source: str, label: str, windows: Any) -> Dataset:
    """Time-series mode with ``window_seconds``: ``motion``, a CSV stream, or an ``.npz`` of series (each a window
    that long)."""
    from recipes.data import streams

    windows.check()
    path = Path(source)
    if source == streams.MOTION:
        return streams.load_motion(windows)
    if path.is_file() and path.suffix.lower() == ".csv":
        return streams.load_stream_csv(path, label, windows)
    if path.is_file() and path.suffix.lower() in (".npz", ".ts"):
        return _load_file(path, label, windows)
    if not path.exists() and source not in BUILTIN_DATASETS:
        raise _missing_source(source)
    raise UserError(
        f"window_seconds cuts a CSV stream or the built-in '{streams.MOTION}' into windows, not {source}; drop --set "
        "window_seconds (an .npz of series (n, steps, channels) or a .ts file needs none: each series is one window)"
    )


def _missing_source(source: str) -> UserError:
    """The error for a source that is neither a built-in name nor an existing path."""
    looks_like_path = "/" in source or "\\" in source or bool(Path(source).suffix)
    if looks_like_path:
        return UserError(f"data file {source} does not exist; {_SOURCE_HINT}")
    hint = closest(source, BUILTIN_DATASETS)
    return UserError(f"unknown data set '{source}': no such built-in set or path; {_SOURCE_HINT}{hint}")


def _load_file(path: Path, label: str, windows: Any = None) -> Dataset:
    """Dispatch a data file on its suffix (``windows``: the time-series settings, when series are asked for)."""
    from recipes.data import streams

    suffix = path.suffix.lower()
    if suffix == ".csv":
        return load_csv(path, label)
    if suffix == ".npz":
        return load_npz(path, windows)
    if suffix == ".ts":
        settings = windows or streams.WindowSettings(None)
        settings.check()
        return streams.load_ts(path, settings)
    raise UserError(f"data file {path} has unsupported suffix '{path.suffix}'; {_SOURCE_HINT}")


def _check_classes(dataset: Dataset, source: str) -> None:
    """Refuse a single label column holding one value: there is nothing to learn (several columns are checked
    by the regression task, one by one)."""
    if dataset.num_classes < 2 and not (dataset.targets is not None and dataset.targets.shape[1] > 1):
        only = f" ('{dataset.class_names[0]}')" if dataset.class_names else ""
        raise UserError(
            f"data {source} has only one class{only}; a classifier needs examples of at least two "
            "classes and a regression a target that varies (for a CSV, check that --label names the label column)"
        )
