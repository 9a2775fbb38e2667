"""Loading a data set: a built-in set, a CSV or NPZ file, or a folder of images or of WAV clips.

:func:`load_dataset` turns any of these into a :class:`Dataset` of raw float32 features and int32
class indices. Nothing is scaled here: normalization is learned from the training split and lives in
the model (except for WAV clips, which become MFCC features: see :mod:`recipes.audio`). Every mistake
in the user's data raises :class:`~recipes.errors.UserError` with one line that names the problem and
the fix. This module imports no TensorFlow; scikit-learn, PIL and the audio front end are imported
only by the loaders that need them.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from recipes.dataset import Dataset, labelled
from recipes.errors import UserError, closest, first_line
from recipes.limits import image_too_large, open_image
from recipes.suffixes import IMAGE_SUFFIXES, WAV_SUFFIX

# scikit-learn's embedded sets, then the synthetic machine-vibration set (recipes/synthetic.py).
BUILTIN_DATASETS = ("digits", "iris", "wine", "breast_cancer", "machine", "diabetes", "linnerud", "motion")
REGRESSION_BUILTINS = ("diabetes", "linnerud")
LABELS_FILE = "labels.csv"  # in an image folder: one row per image, its path (FILE_COLUMN) and its label(s)
FILE_COLUMN = "file"  # continuous targets: disease progression; three body measurements
GRAYSCALE_MODES = ("L", "1", "I", "F")

_SOURCE_HINT = (
    f"pass a path to a .csv/.npz file, an image or .wav folder, or a built-in set ({', '.join(BUILTIN_DATASETS)})"
)
_NPZ_HINT = "save it with np.savez(path, x=features, y=labels)"


def load_config_data(config: Any) -> Dataset:
    """The data set a training config names, with its label column(s), image size and, in time-series mode,
    its windows (:class:`recipes.streams.WindowSettings`)."""
    from recipes.streams import WindowSettings

    return load_dataset(config.data, config.label, config.image_size, WindowSettings.from_config(config))


def load_dataset(
    source: str, label: str = "label", image_size: list[int] | None = None, windows: Any = None
) -> Dataset:
    """Load a built-in set, a ``.csv`` or ``.npz`` file, or a folder with one subfolder per class.

    Args:
        source: a name from :data:`BUILTIN_DATASETS` or a path.
        label: CSV column that holds the label; several columns separated by commas (a regression with several
            outputs). Defaults to ``"label"``.
        image_size: ``[height, width]`` that folder images are resized to. Defaults to None (the
            first image's size).
        windows: a :class:`recipes.streams.WindowSettings` for time-series mode: a CSV is a stream cut into
            windows, an ``.npz`` holds windows ``(n, steps, channels)``, ``motion`` is the built-in stream.
            Defaults to None.

    Returns:
        The data set, with at least two classes (or, for several label columns, numeric targets).

    Raises:
        UserError: the source does not exist or its content is not usable.
    """
    source = str(source)
    if windows is not None:
        dataset = _load_windows(source, label, windows)
    elif source in BUILTIN_DATASETS:
        dataset = _load_builtin(source)
    else:
        path = Path(source)
        if path.is_dir():
            dataset = _load_folder(path, _check_image_size(image_size), label)
        elif path.is_file():
            dataset = _load_file(path, label)
        else:
            raise _missing_source(source)
    _check_classes(dataset, source)
    return dataset


def _load_windows(source: str, label: str, windows: Any) -> Dataset:
    """Time-series mode: ``motion``, a CSV stream, or an ``.npz`` of windows."""
    from recipes import streams

    windows.check()
    path = Path(source)
    if source == streams.MOTION:
        return streams.load_motion(windows)
    if path.is_file() and path.suffix.lower() == ".csv":
        return streams.load_stream_csv(path, label, windows)
    if path.is_file() and path.suffix.lower() == ".npz":
        dataset = _load_npz(path)
        if dataset.x.ndim != 4 or dataset.x.shape[-1] != 1:
            raise UserError(f"NPZ file {path}: windows need 'x' of shape (windows, steps, channels)")
        labels = dataset.targets[:, 0] if dataset.targets is not None else np.asarray(dataset.class_names)[dataset.y]
        return streams.load_windows_npz(dataset.x[..., 0], labels, windows, path.stem)
    if not path.exists() and source not in BUILTIN_DATASETS:
        raise _missing_source(source)
    raise UserError(
        f"window_seconds cuts a CSV stream, an .npz of windows or the built-in '{streams.MOTION}' into windows, "
        f"not {source}; drop --set window_seconds"
    )


def _missing_source(source: str) -> UserError:
    """The error for a source that is neither a built-in name nor an existing path."""
    looks_like_path = "/" in source or "\\" in source or bool(Path(source).suffix)
    if looks_like_path:
        return UserError(f"data file {source} does not exist; {_SOURCE_HINT}")
    hint = closest(source, BUILTIN_DATASETS)
    return UserError(f"unknown data set '{source}': no such built-in set or path; {_SOURCE_HINT}{hint}")


def _load_file(path: Path, label: str) -> Dataset:
    """Dispatch a data file on its suffix."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _load_csv(path, label)
    if suffix == ".npz":
        return _load_npz(path)
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


def _load_csv(path: Path, label: str) -> Dataset:
    """Load a CSV with a header row; ``label`` names the label column (or columns, separated by commas), every
    other column is a number."""
    header, rows, line_numbers = _read_csv_file(path)
    label_names, label_indices, labels = _label_columns(header, rows, line_numbers, label, path)
    feature_names = [name for index, name in enumerate(header) if index not in label_indices]
    if not feature_names:
        columns = "column" if len(label_names) == 1 else "columns"
        raise UserError(f"CSV file {path} has only the label {columns} '{label}'; add feature columns")
    features = [[cell for index, cell in enumerate(row) if index not in label_indices] for row in rows]
    x = _parse_features(features, line_numbers, feature_names, path)
    return labelled(x, labels, label_names, "tabular", path.stem, feature_names=feature_names)


def _read_csv_file(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """The header, the non-blank rows and their line numbers of a UTF-8 CSV file."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return _read_csv_rows(csv.reader(handle), path)
    except UnicodeDecodeError:
        raise UserError(f"CSV file {path} is not UTF-8 text; save it as UTF-8 CSV") from None
    except csv.Error as error:
        raise UserError(f"CSV file {path} is malformed ({error}); fix the quoting") from None


def _label_columns(
    header: list[str], rows: list[list[str]], line_numbers: list[int], label: str, path: Path
) -> tuple[list[str], list[int], np.ndarray]:
    """The label columns ``label`` names (comma-separated): their names, indices and values ``(n, columns)``,
    numbers where every value is one; several columns must all be numbers (one regression output each)."""
    names = [name.strip() for name in label.split(",")]
    indices = [_label_column(header, name, path) for name in names]
    if len(set(indices)) != len(indices):
        raise UserError(f"--label {label} names a column twice; name each label column once")
    for row, line in zip(rows, line_numbers, strict=True):
        for name, index in zip(names, indices, strict=True):
            if not row[index]:
                raise UserError(
                    f"CSV file {path} line {line}: the label column '{name}' is empty; every row needs a label"
                )
    labels = [label_values([row[index] for row in rows]) for index in indices]
    if len(labels) > 1:
        labels = [_numeric_label(column, name, path) for column, name in zip(labels, names, strict=True)]
    return names, indices, np.stack(labels, axis=1)


def _read_csv_rows(reader, path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """Read the header and the non-blank rows (cells stripped), with each row's line number."""
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise UserError(f"CSV file {path} is empty; it needs a header row naming the columns, then data rows")
    header = [cell.strip() for cell in header]
    rows, line_numbers = [], []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise UserError(
                f"CSV file {path} line {reader.line_num} has {len(row)} fields but the header has "
                f"{len(header)}; give every row one value per column"
            )
        rows.append([cell.strip() for cell in row])
        line_numbers.append(reader.line_num)
    if not rows:
        raise UserError(f"CSV file {path} has a header but no data rows; add one row per example")
    return header, rows, line_numbers


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


def _parse_features(rows: list[list[str]], line_numbers: list[int], feature_names: list[str], path: Path) -> np.ndarray:
    """Convert the feature cells to float32, naming the column, line and value of the first bad one."""
    values = []
    for row, line in zip(rows, line_numbers, strict=True):
        try:
            values.append([float(cell) for cell in row])
        except ValueError:
            raise _bad_cell(row, line, feature_names, path) from None
    with np.errstate(over="ignore"):  # too large for float32 becomes inf, reported below
        x = np.asarray(values, dtype=np.float32)
    if not np.isfinite(x).all():
        row_index, column_index = np.argwhere(~np.isfinite(x))[0]
        raise UserError(
            f"CSV file {path} line {line_numbers[row_index]}: column '{feature_names[column_index]}' is "
            f"'{rows[row_index][column_index]}', not a finite number; fill in or drop missing and "
            "infinite values"
        )
    return x


def _bad_cell(row: list[str], line: int, feature_names: list[str], path: Path) -> UserError:
    """The error for the first feature cell of ``row`` that is not a number."""
    index = next(index for index, cell in enumerate(row) if not _is_number(cell))
    name, cell = feature_names[index], row[index]
    if not cell:
        return UserError(f"CSV file {path} line {line}: column '{name}' is empty; fill in a number or drop the row")
    return UserError(
        f"CSV file {path} line {line}: column '{name}' holds '{cell}', which is not a number; "
        "every column except the label must be numeric (pass --label COLUMN for the class column)"
    )


def _is_number(text: str) -> bool:
    """Whether ``float(text)`` succeeds."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def label_values(labels: list[str]) -> np.ndarray:
    """Labels as numbers when every one is a finite number (integers when all are whole), else text."""
    try:
        numbers = np.array([float(text) for text in labels])
    except ValueError:
        return np.array(labels)
    if not np.isfinite(numbers).all():
        return np.array(labels)
    if all(number.is_integer() for number in numbers.tolist()):
        return numbers.astype(np.int64)
    return numbers


def _numeric_label(values: np.ndarray, name: str, path: Path) -> np.ndarray:
    """One of several label columns, which must all hold numbers (several outputs are a regression)."""
    if values.dtype.kind not in "biuf":
        text = next(value for value in values.tolist() if not _is_number(str(value)))
        raise UserError(
            f"CSV file {path}: label column '{name}' holds '{text}', which is not a number; several label "
            "columns make a regression with one output per column: give numbers, or pass one --label"
        )
    return values


# --- NPZ ---------------------------------------------------------------------------------------


def _load_npz(path: Path) -> Dataset:
    """Load arrays ``x`` (features) and ``y`` (labels) from an ``.npz`` file, never unpickling."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(f"NPZ file {path} cannot be read ({first_line(error)}); {_NPZ_HINT}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UserError(f"NPZ file {path} holds a single array, not x and y; {_NPZ_HINT}")
    with archive:
        x = _npz_array(archive, "x", path)
        y = _npz_array(archive, "y", path)
    x = _npz_features(x, path)
    labels = _npz_labels(y, path)
    if len(labels) != len(x):
        raise UserError(
            f"NPZ file {path}: array 'x' has {len(x)} examples but array 'y' has {len(labels)} labels; "
            "give one label per example"
        )
    kind = "tabular" if x.ndim == 2 else "image"
    names = ["y"] if labels.ndim == 1 else [f"y{column}" for column in range(labels.shape[1])]
    return labelled(x, labels, names, kind, path.stem)


def _npz_array(archive, name: str, path: Path) -> np.ndarray:
    """Read array ``name`` from an open ``.npz`` archive."""
    if name not in archive.files:
        present = ", ".join(archive.files) or "none"
        raise UserError(f"NPZ file {path} has no array '{name}' (arrays: {present}); {_NPZ_HINT}")
    try:
        return archive[name]
    except ValueError:
        raise UserError(
            f"NPZ file {path}: array '{name}' holds Python objects, which are never unpickled; "
            "save plain numeric x and integer or string y arrays"
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


def _load_folder(folder: Path, image_size: tuple[int, int] | None, label: str = "label") -> Dataset:
    """Load a folder with one subfolder per class (subfolder name = class name): WAV clips or images; or a folder
    of images with a ``labels.csv`` naming each image's label(s) (:func:`_load_labelled_images`)."""
    if (folder / LABELS_FILE).is_file():
        return _load_labelled_images(folder, image_size, label)
    class_folders = _class_folders(folder)
    if any(child.suffix.lower() == WAV_SUFFIX for class_folder in class_folders for child in class_folder.iterdir()):
        from recipes.audio import load_wav_folder

        return load_wav_folder(folder, class_folders)
    return _load_image_folder(folder, class_folders, image_size)


def _load_labelled_images(folder: Path, image_size: tuple[int, int] | None, label: str) -> Dataset:
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
    return labelled(_read_images(files, image_size), labels, names, "image", folder.resolve().name)


def _load_image_folder(folder: Path, class_folders: list[Path], image_size: tuple[int, int] | None) -> Dataset:
    """Load images from each class subfolder."""
    files, labels = [], []
    for class_index, class_folder in enumerate(class_folders):
        images = _image_files(class_folder)
        files.extend(images)
        labels.extend([class_index] * len(images))
    pixels = _read_images(files, image_size)
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


def _read_images(files: list[Path], image_size: tuple[int, int] | None) -> np.ndarray:
    """Read, resize and stack images: one channel if all are grayscale, else three (RGB)."""
    size = image_size
    arrays = []
    for file in files:
        array = _read_image(file, size)
        size = size or array.shape[:2]
        arrays.append(array)
    if all(array.ndim == 2 for array in arrays):
        return np.stack(arrays)[..., np.newaxis]
    return np.stack([np.repeat(a[..., np.newaxis], 3, axis=2) if a.ndim == 2 else a for a in arrays])


def _read_image(file: Path, size: tuple[int, int] | None) -> np.ndarray:
    """One image as float32 raw pixel values: ``(h, w)`` if grayscale, else ``(h, w, 3)`` RGB.

    Args:
        file: the image file.
        size: ``(height, width)`` to resize to with bilinear filtering. Defaults to the image's own.
    """
    from PIL import Image

    try:
        with open_image(file) as image:  # reads the header only
            refusal = image_too_large(file, *image.size)
            if refusal is not None:
                raise UserError(refusal)
            image.load()
            grayscale = image.mode in GRAYSCALE_MODES or image.mode.startswith("I;")
            image = image.convert("F" if grayscale else "RGB")
    except UserError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise UserError(f"image {file} cannot be read ({first_line(error)}); replace or remove the file") from None
    if size is not None and (image.height, image.width) != tuple(size):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32)
