"""Loading a data set: a built-in set, a CSV or NPZ file, or a folder of images or of WAV clips.

:func:`load_dataset` turns any of these into a :class:`Dataset` of raw float32 features and int32
class indices. Nothing is scaled here: normalization is learned from the training split and lives in
the model (except for WAV clips, which become MFCC features: see :mod:`recipes.audio`). Every mistake
in the user's data raises :class:`~edge.device.errors.UserError` with one line that names the problem and
the fix. This module imports no TensorFlow; scikit-learn, PIL and the audio front end are imported
only by the loaders that need them.
"""

from __future__ import annotations

import csv
import os
import tokenize
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from edge.device.errors import UserError, closest, first_line, is_number, quoted
from edge.device.limits import MAX_ARRAY_BYTES, array_header_refusal, image_too_large, open_image, zip_too_large
from edge.device.suffixes import IMAGE_SUFFIXES, WAV_SUFFIX
from recipes.dataset import Dataset, labelled
from recipes.feature_cache import CacheSettings, folder_features
from recipes.progress import Progress

# scikit-learn's embedded sets, then the synthetic machine-vibration set (recipes/synthetic.py).
BUILTIN_DATASETS = ("digits", "iris", "wine", "breast_cancer", "machine", "diabetes", "linnerud", "motion")
REGRESSION_BUILTINS = ("diabetes", "linnerud")
LABELS_FILE = "labels.csv"  # in an image folder: one row per image, its path (FILE_COLUMN) and its label(s)
FILE_COLUMN = "file"  # continuous targets: disease progression; three body measurements
GRAYSCALE_MODES = ("L", "1", "I", "F")

_SOURCE_HINT = (
    f"pass a path to a .csv/.npz/.ts file, an image or .wav folder, or a built-in set ({', '.join(BUILTIN_DATASETS)})"
)
_NPZ_HINT = "save it with np.savez(path, x=features, y=labels)"
# Threads decoding files for the feature cache (Pillow and the WAV reader's numpy release the GIL while decoding).
DECODING_THREADS = min(8, os.cpu_count() or 2)


def load_config_data(config: Any, progress: Callable[[str], None] | None = None) -> Dataset:
    """The data set a training config names, with its label column(s), image size, feature cache
    (:class:`recipes.feature_cache.CacheSettings`) and, in time-series mode, its windows
    (:class:`recipes.streams.WindowSettings`); ``progress`` receives progress lines of long steps."""
    from recipes.streams import WindowSettings

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
        windows: a :class:`recipes.streams.WindowSettings` for time-series mode: with ``window_seconds`` a CSV is a
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
        dataset = _load_builtin(source)
    else:
        path = Path(source)
        if path.is_dir():
            dataset = _load_folder(path, _check_image_size(image_size), label, cache, progress)
        elif path.is_file():
            dataset = _load_file(path, label, windows)
        else:
            raise _missing_source(source)
    _check_classes(dataset, source)
    return dataset


def _load_windows(source: str, label: str, windows: Any) -> Dataset:
    """Time-series mode with ``window_seconds``: ``motion``, a CSV stream, or an ``.npz`` of series (each a window
    that long)."""
    from recipes import streams

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
    from recipes import streams

    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _load_csv(path, label)
    if suffix == ".npz":
        return _load_npz(path, windows)
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


# --- built-in sets (shipped inside scikit-learn) -------------------------------------------------


def _load_builtin(name: str) -> Dataset:
    """Load one of :data:`BUILTIN_DATASETS` from scikit-learn or the synthetic generator (no download)."""
    if name == "machine":
        from recipes.synthetic import machine_dataset

        return machine_dataset()
    if name == "motion":
        from recipes.motion import WINDOW_SECONDS
        from recipes.streams import WindowSettings, load_motion

        return load_motion(WindowSettings(WINDOW_SECONDS))
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    if name in REGRESSION_BUILTINS:
        names = list(getattr(bunch, "target_names", None) or ["target"])
        features = [str(feature) for feature in bunch.feature_names]
        return labelled(bunch.data.astype(np.float32), bunch.target, names, "tabular", name, feature_names=features)
    y = bunch.target.astype(np.int32)
    class_names = [str(class_name) for class_name in bunch.target_names]
    if name == "digits":
        x = bunch.images.astype(np.float32)[..., np.newaxis]
        return Dataset(x=x, y=y, class_names=class_names, kind="image", name=name)
    x = bunch.data.astype(np.float32)
    feature_names = [str(feature) for feature in bunch.feature_names]
    return Dataset(x=x, y=y, class_names=class_names, kind="tabular", name=name, feature_names=feature_names)


# --- CSV ---------------------------------------------------------------------------------------

_CSV_CHUNK_ROWS = 1 << 16  # rows pandas parses at a time: the text it holds stays small beside the float32 features
_PANDAS_CSV = {"engine": "c", "encoding": "utf-8-sig", "na_filter": False, "skip_blank_lines": True}


def _load_csv(path: Path, label: str) -> Dataset:
    """Load a CSV with a header row; ``label`` names the label column (or columns, separated by commas), every
    other column is a number.

    pandas parses the file a chunk at a time; only when a chunk does not convert cleanly does this module look
    for the first offending cell, and only for an error does the csv module read the file again, to check every
    row's number of fields and to name the line.
    """
    header = _read_csv_header(path)
    label_names, label_indices = _label_indices(header, label, path)
    feature_indices = [index for index in range(len(header)) if index not in label_indices]
    if not feature_indices:
        columns = "column" if len(label_names) == 1 else "columns"
        raise UserError(f"CSV file {path} has only the label {columns} '{label}'; add feature columns")
    table = _read_csv_table(path, len(header), label_indices, feature_indices)
    labels = _label_array(table.labels(), label_names, lambda row: _csv_row(path, row)[0], path)
    feature_names = [header[index] for index in feature_indices]
    for problem, (row, position) in (("number", table.first_text), ("finite", table.first_infinite)):
        if row is not None:
            line, cells = _csv_row(path, row)
            raise _bad_cell(path, line, feature_names[position], cells[feature_indices[position]], problem)
    return labelled(table.features(), labels, label_names, "tabular", path.stem, feature_names=feature_names)


def _read_csv_header(path: Path) -> list[str]:
    """The stripped cells of the first row that is not blank, as pandas reads it."""
    import pandas as pd

    with _pandas_errors(path):
        try:
            first = pd.read_csv(path, header=None, nrows=1, dtype=str, **_PANDAS_CSV)
        except pd.errors.EmptyDataError:
            first = None
    header = [] if first is None else [cell.strip() for cell in first.iloc[0].tolist()]
    if not any(header):
        raise UserError(f"CSV file {path} is empty; it needs a header row naming the columns, then data rows")
    repeated = next((name for name in header if header.count(name) > 1), None)
    if repeated is not None:
        raise UserError(
            f"CSV file {path} has {header.count(repeated)} columns named '{quoted(repeated)}'; give each column its "
            "own name"
        )
    return header


class _CsvTable:
    """A CSV file's float32 features and its label columns' stripped texts, with the first cell (data row, feature
    position) that is not a number and the first that is not finite.

    ``x`` is allocated for the file's number of lines and filled a chunk at a time: the rows that blank lines
    leave unfilled are never touched, so they take no memory.
    """

    def __init__(self, lines: int, features: int, labels: int) -> None:
        self.x = np.empty((lines, features), dtype=np.float32)
        self.rows = 0
        self.label_parts: list[list[np.ndarray]] = [[] for _ in range(labels)]
        self.first_text: tuple[int | None, int] = (None, 0)
        self.first_infinite: tuple[int | None, int] = (None, 0)

    def features(self) -> np.ndarray:
        """The features of the rows read."""
        return self.x[: self.rows]

    def labels(self) -> list[np.ndarray]:
        """Each label column's texts."""
        return [np.concatenate(parts) for parts in self.label_parts]


def _read_csv_table(path: Path, width: int, label_indices: list[int], feature_indices: list[int]) -> _CsvTable:
    """Parse the data rows with pandas: features to float32 (finding the first cell that is not a number or not
    finite), label columns as stripped text."""
    import warnings

    import pandas as pd

    commas, lines = _file_counts(path)
    table = _CsvTable(lines, len(feature_indices), len(label_indices))
    options = {"header": 0, "names": list(range(width)), "index_col": False, "chunksize": _CSV_CHUNK_ROWS}
    with _pandas_errors(path), warnings.catch_warnings():
        # A first data row longer than the header is cut with a ParserWarning; the comma count below catches it.
        warnings.simplefilter("ignore", pd.errors.ParserWarning)
        with pd.read_csv(path, dtype=dict.fromkeys(label_indices, str), **options, **_PANDAS_CSV) as reader:
            parsed = 0
            for chunk in reader:
                parsed += len(chunk)
                blank = _blank_rows(chunk)
                if blank.any():
                    chunk = chunk[~blank]
                for part, index in zip(table.label_parts, label_indices, strict=True):
                    part.append(chunk[index].str.strip().to_numpy(dtype=str))
                if table.first_text[0] is None:
                    _add_features(table, chunk, feature_indices)
                table.rows += len(chunk)
    if commas != (parsed + 1) * (width - 1):
        _check_fields(path)  # pandas cuts a too-long row silently where its buffers meet
    if not table.rows:
        raise UserError(f"CSV file {path} has a header but no data rows; add one row per example")
    return table


def _blank_rows(chunk) -> np.ndarray:
    """Rows whose cells are all empty or whitespace (the csv module skips them; pandas skips only empty lines)."""
    blank = np.ones(len(chunk), dtype=bool)
    for _, column in chunk.items():
        if column.dtype != object:
            return np.zeros(len(chunk), dtype=bool)  # a parsed number is not blank
        blank &= (column.str.strip() == "").to_numpy()
        if not blank.any():
            break
    return blank


def _add_features(table: _CsvTable, chunk, feature_indices: list[int]) -> None:
    """Convert one chunk's feature columns to float32 into ``table.x``, noting its first cell that is not a number
    (after which no more are converted) or, failing that, not finite."""
    block = table.x[table.rows : table.rows + len(chunk)]
    first_text: tuple[int | None, int] = (None, 0)
    with np.errstate(over="ignore"):  # too large for float32 becomes inf, reported as not finite
        for position, index in enumerate(feature_indices):
            column = chunk[index]
            if column.dtype.kind in "iuf":
                block[:, position] = column.to_numpy()
                continue
            values, row = _column_numbers(column)
            block[:, position] = values
            if row is not None and (first_text[0] is None or row < first_text[0]):
                first_text = (row, position)
    if first_text[0] is not None:
        table.first_text = (table.rows + first_text[0], first_text[1])
    elif table.first_infinite[0] is None and not np.isfinite(block).all():
        row, position = np.argwhere(~np.isfinite(block))[0]
        table.first_infinite = (table.rows + int(row), int(position))


def _column_numbers(column) -> tuple[np.ndarray, int | None]:
    """A text column as float64 and the row of its first cell that is not a number (None when all are).

    pandas converts; a cell it cannot convert is retried with ``float``, which also reads 'nan' and 'infinity'.
    """
    import pandas as pd

    text = column.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, copy=True)
    for row in np.flatnonzero(np.isnan(numbers)).tolist():
        if not is_number(text.iat[row]):
            return numbers, row
        numbers[row] = float(text.iat[row])
    return numbers, None


def _file_counts(path: Path) -> tuple[int, int]:
    """How many commas ``path`` holds outside double quotes, and at most how many lines, read a block at a time.

    Raises:
        UserError: a NUL byte in the file (pandas would end the cell there: '3,4\\x005' reads as 3 and 4).
    """
    commas, quoted, newlines, returns = 0, 0, 0, 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 24):
            if b"\0" in block:
                line = newlines + block[: block.index(b"\0")].count(b"\n") + 1
                raise UserError(
                    f"CSV file {path} holds a NUL byte on line {line}: it is not a text CSV; save it as UTF-8 CSV"
                )
            newlines += block.count(b"\n")
            returns += block.count(b"\r")
            if not quoted and b'"' not in block:
                commas += block.count(b",")
                continue
            data = np.frombuffer(block, dtype=np.uint8)
            quotes = np.flatnonzero(data == ord('"'))
            inside = np.flatnonzero(data == ord(","))
            commas += int(np.count_nonzero((np.searchsorted(quotes, inside) + quoted) % 2 == 0))
            quoted = (quoted + len(quotes)) % 2
    return commas, max(newlines, returns) + 1


@contextmanager
def _pandas_errors(path: Path) -> Iterator[None]:
    """Turn pandas' errors about the file into one-line user errors (a wrong number of fields named by line)."""
    import pandas as pd

    try:
        yield
    except UnicodeDecodeError:
        raise UserError(f"CSV file {path} is not UTF-8 text; save it as UTF-8 CSV") from None
    except pd.errors.ParserError as error:
        _check_fields(path)
        reason = str(error).strip().removeprefix("Error tokenizing data. C error: ")
        raise UserError(f"CSV file {path} is malformed ({reason}); fix the quoting") from None


def _check_fields(path: Path) -> None:
    """Raise for the first row whose number of fields differs from the header's."""
    for _ in _csv_rows(path):
        pass


def _csv_row(path: Path, row: int) -> tuple[int, list[str]]:
    """The line number and stripped cells of data row ``row`` (0 is the first after the header), read with the
    csv module after it checked every row's number of fields (a misplaced comma explains most bad cells)."""
    found = None
    for position, record in enumerate(_csv_rows(path)):
        if position == row + 1:
            found = record
    if found is None:
        raise UserError(f"CSV file {path} is malformed (its rows cannot be counted); fix the quoting")
    return found


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Each row of a UTF-8 CSV file that is not blank, the header first, with its line number and stripped cells;
    a row whose number of fields differs from the header's is an error."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            width = None
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if width is None:
                    width = len(row)
                elif len(row) != width:
                    raise UserError(
                        f"CSV file {path} line {reader.line_num} has {len(row)} fields but the header has "
                        f"{width}; give every row one value per column"
                    )
                yield reader.line_num, [cell.strip() for cell in row]
    except UnicodeDecodeError:
        raise UserError(f"CSV file {path} is not UTF-8 text; save it as UTF-8 CSV") from None
    except csv.Error as error:
        raise UserError(f"CSV file {path} is malformed ({error}); fix the quoting") from None


def _read_csv_file(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """The header, the non-blank rows (cells stripped) and their line numbers of a small UTF-8 CSV file, read with
    the csv module."""
    rows = list(_csv_rows(path))
    if not rows:
        raise UserError(f"CSV file {path} is empty; it needs a header row naming the columns, then data rows")
    if len(rows) == 1:
        raise UserError(f"CSV file {path} has a header but no data rows; add one row per example")
    return rows[0][1], [cells for _, cells in rows[1:]], [line for line, _ in rows[1:]]


def _label_columns(
    header: list[str], rows: list[list[str]], line_numbers: list[int], label: str, path: Path
) -> tuple[list[str], list[int], np.ndarray]:
    """The label columns ``label`` names (comma-separated) in rows read by :func:`_read_csv_file`: their names,
    indices and values ``(n, columns)``, as :func:`_label_array` makes them."""
    names, indices = _label_indices(header, label, path)
    texts = [np.array([row[index] for row in rows], dtype=object) for index in indices]
    return names, indices, _label_array(texts, names, line_numbers.__getitem__, path)


def _label_indices(header: list[str], label: str, path: Path) -> tuple[list[str], list[int]]:
    """The names and indices of the label columns ``label`` names (comma-separated), each present once."""
    names = [name.strip() for name in label.split(",")]
    indices = [_label_column(header, name, path) for name in names]
    if len(set(indices)) != len(indices):
        raise UserError(f"--label {label} names a column twice; name each label column once")
    return names, indices


def _label_array(texts: list[np.ndarray], names: list[str], line_of: Callable[[int], int], path: Path) -> np.ndarray:
    """Label values ``(n, columns)`` from each label column's stripped texts (``line_of`` gives a row's line
    number): numbers where every value is one; several columns must all be numbers (one regression output each)."""
    empty = [np.flatnonzero(text == "") for text in texts]
    rows = [int(found[0]) for found in empty if found.size]
    if rows:
        row = min(rows)
        name = next(name for name, found in zip(names, empty, strict=True) if found.size and found[0] == row)
        raise UserError(
            f"CSV file {path} line {line_of(row)}: the label column '{name}' is empty; every row needs a label"
        )
    labels = [label_values(text) for text in texts]
    if len(labels) > 1:
        labels = [_numeric_label(column, name, path) for column, name in zip(labels, names, strict=True)]
    return np.stack(labels, axis=1)


def _label_column(header: list[str], label: str, path: Path) -> int:
    """Index of the label column; it must exist exactly once."""
    if label not in header:
        raise UserError(
            f"CSV file {path} has no column '{label}'{closest(label, header)} "
            f"(columns: {', '.join(header)}); pass --label COLUMN naming the class column"
        )
    if header.count(label) > 1:
        raise UserError(f"CSV file {path} has {header.count(label)} columns named '{label}'; rename all but one")
    return header.index(label)


def _bad_cell(path: Path, line: int, name: str, cell: str, problem: str) -> UserError:
    """The error for a feature cell that is not a number (``problem`` "number") or not finite ("finite")."""
    if problem == "finite":
        return UserError(
            f"CSV file {path} line {line}: column '{name}' is '{quoted(cell)}', not a finite number; fill in or drop "
            "missing and infinite values"
        )
    if not cell:
        return UserError(f"CSV file {path} line {line}: column '{name}' is empty; fill in a number or drop the row")
    return UserError(
        f"CSV file {path} line {line}: column '{name}' holds '{quoted(cell)}', which is not a number; "
        "every column except the label must be numeric (pass --label COLUMN for the class column)"
    )


def label_values(labels: Sequence[str]) -> np.ndarray:
    """Labels as numbers when every one is a finite number (integers when all are whole), else text."""
    text = np.asarray(labels, dtype=str)
    try:
        numbers = text.astype(np.float64)  # as float() reads each text
    except ValueError:
        return text
    if not np.isfinite(numbers).all():
        return text
    if (numbers == np.floor(numbers)).all():
        return numbers.astype(np.int64)
    return numbers


def _numeric_label(values: np.ndarray, name: str, path: Path) -> np.ndarray:
    """One of several label columns, which must all hold numbers (several outputs are a regression)."""
    if values.dtype.kind not in "biuf":
        text = next(str(value) for value in values.tolist() if not is_number(value) or not np.isfinite(float(value)))
        raise UserError(
            f"CSV file {path}: label column '{name}' holds '{quoted(text)}', which is not a number; several label "
            "columns make a regression with one output per column: give numbers, or pass one --label"
        )
    return values


# --- NPZ ---------------------------------------------------------------------------------------


def _load_npz(path: Path, windows: Any = None) -> Dataset:
    """Load arrays ``x`` (features) and ``y`` (labels) from an ``.npz`` file, never unpickling.

    ``x`` is read as series, each one window (:func:`recipes.streams.load_series_npz`), when series are asked for
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
        from recipes.streams import WindowSettings, load_series_npz

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


# --- folders of images or WAV clips ------------------------------------------------------------


def _check_image_size(image_size: list[int] | None) -> tuple[int, int] | None:
    """Validate ``[height, width]``."""
    if image_size is None:
        return None
    if len(image_size) != 2 or not all(int(side) >= 1 for side in image_size):
        raise UserError(f"image_size is height,width, got {image_size}; e.g. --set image_size=32,32")
    return int(image_size[0]), int(image_size[1])


def _load_folder(
    folder: Path,
    image_size: tuple[int, int] | None,
    label: str = "label",
    cache: CacheSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> Dataset:
    """Load a folder with one subfolder per class (subfolder name = class name): WAV clips or images; or a folder
    of images with a ``labels.csv`` naming each image's label(s) (:func:`_load_labelled_images`)."""
    if (folder / LABELS_FILE).is_file():
        return _load_labelled_images(folder, image_size, label, cache, progress)
    class_folders = _class_folders(folder)
    if any(child.suffix.lower() == WAV_SUFFIX for class_folder in class_folders for child in class_folder.iterdir()):
        from recipes.audio import load_wav_folder

        return load_wav_folder(folder, class_folders, cache, progress)
    return _load_image_folder(folder, class_folders, image_size, cache, progress)


def _load_labelled_images(
    folder: Path,
    image_size: tuple[int, int] | None,
    label: str,
    cache: CacheSettings | None,
    progress: Callable[[str], None] | None,
) -> Dataset:
    """Images listed in ``folder/labels.csv``: a ``file`` column (paths relative to the folder) and the label
    column(s) named by ``label`` (numbers for a regression, e.g. an angle or a count; text for classes)."""
    path = folder / LABELS_FILE
    header, rows, line_numbers = _read_csv_file(path)
    if FILE_COLUMN not in header:
        raise UserError(
            f"CSV file {path} has no '{FILE_COLUMN}' column; give each image's path relative to {folder} in a "
            f"'{FILE_COLUMN}' column beside its label column(s)"
        )
    file_index = _label_column(header, FILE_COLUMN, path)
    names, _, labels = _label_columns(header, rows, line_numbers, label, path)
    files = []
    for row, line in zip(rows, line_numbers, strict=True):
        file = (folder / row[file_index]).resolve()
        if folder.resolve() not in file.parents or not file.is_file():
            raise UserError(
                f"CSV file {path} line {line}: '{row[file_index]}' is not an image file inside {folder}; "
                "give paths relative to the folder"
            )
        files.append(file)
    pixels = folder_features(folder, files, ImageFrontEnd(image_size), cache, progress)
    return labelled(pixels, labels, names, "image", folder.resolve().name)


def _load_image_folder(
    folder: Path,
    class_folders: list[Path],
    image_size: tuple[int, int] | None,
    cache: CacheSettings | None,
    progress: Callable[[str], None] | None,
) -> Dataset:
    """Load images from each class subfolder (their pixels through the feature cache)."""
    files, labels = [], []
    for class_index, class_folder in enumerate(class_folders):
        images = _image_files(class_folder)
        files.extend(images)
        labels.extend([class_index] * len(images))
    pixels = folder_features(folder, files, ImageFrontEnd(image_size), cache, progress)
    class_names = [class_folder.name for class_folder in class_folders]
    y = np.asarray(labels, dtype=np.int32)
    return Dataset(x=pixels, y=y, class_names=class_names, kind="image", name=folder.resolve().name)


def _class_folders(folder: Path) -> list[Path]:
    """The sorted class subfolders (hidden ones skipped); at least two."""
    class_folders = sorted(
        (child for child in folder.iterdir() if child.is_dir() and not child.name.startswith(".")),
        key=lambda child: child.name,
    )
    if len(class_folders) < 2:
        loose = len(_image_files(folder, required=False))
        found = f" and {loose} images directly in it" if loose else ""
        raise UserError(
            f"data folder {folder} has {len(class_folders)} class subfolder(s){found}; put the images "
            "(or .wav clips) of each class in their own subfolder (at least two classes)"
        )
    return class_folders


def _image_files(folder: Path, required: bool = True) -> list[Path]:
    """Sorted image files in ``folder`` (by suffix; hidden files skipped)."""
    files = sorted(
        child
        for child in folder.iterdir()
        if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES and not child.name.startswith(".")
    )
    if required and not files:
        raise UserError(
            f"class folder {folder} has no images ({', '.join(IMAGE_SUFFIXES)}); add the class's images "
            "or remove the folder"
        )
    return files


class ImageFrontEnd:
    """Images decoded and resized to one size (bilinear): one channel when every image is grayscale, else three
    (RGB); stored as uint8 when the images are RGB with 8-bit samples, else as float32 raw values.

    Args:
        image_size: ``(height, width)``; None: the first image's.
    """

    name = "images"
    noun = "images"

    def __init__(self, image_size: tuple[int, int] | None) -> None:
        self.image_size = image_size
        self.size, self.channels, self.dtype = image_size, 3, np.float32

    def parameters(self) -> dict[str, Any]:
        """The requested size (the cache key)."""
        return {"image_size": list(self.image_size) if self.image_size else None}

    def layout(self, files: Sequence[Path], progress: Callable[[str], None] | None) -> tuple[tuple[int, ...], Any]:
        """Read every image's header (refusing one too large or unreadable before anything is decoded) to choose
        the size, the channels and the stored dtype."""
        meter = Progress(progress, "checking", "images", len(files))
        headers = []
        with ThreadPoolExecutor(DECODING_THREADS) as pool:
            for start in range(0, len(files), 4096):
                headers.extend(pool.map(_image_header, files[start : start + 4096]))
                meter.advance(len(files[start : start + 4096]))
        meter.finish()
        first_width, first_height = headers[0][0]
        self.size = self.image_size or (first_height, first_width)
        grayscale = all(mode in GRAYSCALE_MODES or mode.startswith("I;") for _, mode in headers)
        eight_bit = all(mode not in ("I", "F") and not mode.startswith("I;") for _, mode in headers)
        self.channels = 1 if grayscale else 3
        self.dtype = np.uint8 if eight_bit and not grayscale else np.float32
        return (*self.size, self.channels), self.dtype

    def compute(self, files: Sequence[Path]) -> np.ndarray:
        """Decode and resize ``files`` in parallel threads."""
        with ThreadPoolExecutor(DECODING_THREADS) as pool:
            return np.stack(list(pool.map(self._decode, files)))

    def _decode(self, file: Path) -> np.ndarray:
        """One image as ``(height, width, channels)``: 8-bit RGB as uint8, anything else as float32 raw values."""
        from PIL import Image

        with _readable(file), open_image(file) as image:
            image.load()
            grayscale = image.mode in GRAYSCALE_MODES or image.mode.startswith("I;")
            image = image.convert("RGB" if self.dtype == np.uint8 or not grayscale else "F")
        if (image.height, image.width) != tuple(self.size):
            image = image.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=self.dtype)
        if array.ndim == 2:
            array = array[..., np.newaxis]
        return np.repeat(array, self.channels, axis=2) if array.shape[2] != self.channels else array


@contextmanager
def _readable(file: Path) -> Iterator[None]:
    """Turn Pillow's errors while ``file`` is opened or decoded into the one-line user error."""
    from PIL import Image

    try:
        yield
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise UserError(f"image {file} cannot be read ({first_line(error)}); replace or remove the file") from None


def _image_header(file: Path) -> tuple[tuple[int, int], str]:
    """An image's (width, height) and mode from its header; one too large or unreadable is a user error."""
    with _readable(file), open_image(file) as image:  # reads the header only
        refusal = image_too_large(file, *image.size)
        size, mode = image.size, image.mode
    if refusal is not None:
        raise UserError(refusal)
    return size, mode
