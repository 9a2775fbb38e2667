"""Raw inputs from files, as a model takes them: CSV, ``.npy``, ``.npz`` (images, windows, series), ``.ts``,
images (Pillow, imported only when an image is given), WAV clips (their MFCCs, :mod:`edge.device.mfcc`), and
folders of them (class subfolders or a ``labels.csv`` give each file its label)."""

from __future__ import annotations

import csv
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.device.errors import UserError, first_line, is_number, printable, quoted
from edge.device.limits import MAX_ARRAY_BYTES, array_header_refusal, image_too_large, open_image, zip_too_large
from edge.device.model import EdgeModel
from edge.device.series_files import RESAMPLED, fit_length, read_ts
from edge.device.series_files import SUFFIX as TS_SUFFIX
from edge.device.suffixes import IMAGE_SUFFIXES, WAV_SUFFIX
from edge.device.windows import KIND as WINDOWS
from edge.device.windows import model_inputs

INPUT_SUFFIXES = (".csv", ".npy", ".npz", TS_SUFFIX, *IMAGE_SUFFIXES, WAV_SUFFIX)


@dataclass
class Inputs:
    """Raw inputs read from a file for a model, with what the file says of them.

    Args:
        x: the inputs, ``(n, *model.input_shape)``.
        labels: each example's true label as text, when the file carries labels (a ``.ts`` file's, an ``.npz``'s
            ``y``, a folder's class subfolders); None otherwise.
        notes: lines saying what reading changed (series resampled, missing values filled).
        files: each example's file, relative to the folder, when a folder was read; None otherwise.
    """

    x: np.ndarray
    labels: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    files: list[str] | None = None


def read_inputs(path: str | Path, model: EdgeModel) -> np.ndarray:
    """Read raw inputs for ``model`` from a ``.csv``, ``.npy``, ``.npz``, ``.ts``, image or ``.wav`` file.

    A CSV holds one example per row, its values in the order of the flattened input, with an
    optional header row; an ``.npy`` file one example or a batch; an image one example, converted to
    the model's channels and resized to its height and width; a ``.wav`` clip one example, turned into
    MFCCs by the front end the manifest names (:func:`edge.device.mfcc.wav_features`); a ``.ts`` file one series per
    example (:func:`read_labelled_inputs`).

    Returns:
        float32 array ``(n, *model.input_shape)``; an ``.npy``/``.npz`` array already in the model's quantized
        input type (:meth:`EdgeModel.takes_as_quantized`) keeps that type, to be fed as it is.

    Raises:
        UserError: a missing or unreadable file, an unknown suffix, or values that do not fit the model.
    """
    return read_labelled_inputs(path, model).x


def read_labelled_inputs(path: str | Path, model: EdgeModel) -> Inputs:
    """Read raw inputs for ``model`` as :func:`read_inputs` does, with the true labels the file carries: a ``.ts``
    file's (its series fitted to the model's length, see :func:`_read_ts`) or an ``.npz``'s array ``y``.

    Raises:
        UserError: as :func:`read_inputs`; labels that are not one per example.
    """
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, model)
    if not path.is_file():
        raise UserError(f"input file {path} does not exist; pass a {', '.join(INPUT_SUFFIXES)} file or a folder")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return Inputs(model.as_batch(_read_csv(path)))
    if suffix == ".npy":
        return Inputs(model.as_batch(_windows_to_inputs(_read_npy(path), model)))
    if suffix == ".npz":
        x = model.as_batch(_windows_to_inputs(_read_npz(path), model))
        return Inputs(x, _npz_labels(path, len(x)))
    if suffix == TS_SUFFIX:
        return _read_ts(path, model)
    if suffix in IMAGE_SUFFIXES:
        return Inputs(model.as_batch(_read_image(path, model.input_shape)))
    if suffix == WAV_SUFFIX:
        return Inputs(model.as_batch(_read_wav(path, model)))
    raise UserError(f"input file {path} has suffix '{path.suffix}'; use one of {', '.join(INPUT_SUFFIXES)}")


def _input_files(folder: Path) -> list[Path]:
    """The input files directly in ``folder`` (by suffix, sorted), hidden files and ``labels.csv`` left out."""
    return sorted(
        file
        for file in folder.iterdir()
        if file.is_file()
        and file.suffix.lower() in INPUT_SUFFIXES
        and not file.name.startswith(".")
        and file.name != LABELS_FILE
    )


def folder_files(folder: Path) -> list[tuple[Path, str | None]]:
    """The input files of ``folder`` with their true labels, labelled the way training folders are.

    A folder with one subfolder per class (as ``train --data`` takes) labels each file with its subfolder's name; a
    folder with a ``labels.csv`` (a ``file`` column of paths inside the folder and one label column, as an image
    regression's) labels each file listed; files directly in a folder without either are unlabelled (None).

    Raises:
        UserError: a folder without input files, or a malformed ``labels.csv``.
    """
    labels_file = folder / LABELS_FILE
    subfolders = sorted(
        sub for sub in folder.iterdir() if sub.is_dir() and not sub.name.startswith(".") and _input_files(sub)
    )
    if labels_file.is_file():
        files = [(folder / name, label) for name, label in _listed_labels(labels_file)]
    elif subfolders:
        files = [(file, sub.name) for sub in subfolders for file in _input_files(sub)]
    else:
        files = [(file, None) for file in _input_files(folder)]
    if not files:
        raise UserError(
            f"folder {folder} holds no input files ({', '.join(INPUT_SUFFIXES)}) directly or in class subfolders; "
            "pass a file or a folder of them"
        )
    return files


def read_files(folder: Path, files: list[tuple[Path, str | None]], model: EdgeModel) -> Inputs:
    """The examples of ``files`` (from :func:`folder_files`), each file giving its examples (a WAV clip or an image
    one, a CSV or array file its rows) with the file's label and its path inside ``folder``."""
    parts, labels, names, notes = [], [], [], []
    for file, label in files:
        inputs = read_labelled_inputs(file, model)
        parts.append(inputs.x)
        names += [file.relative_to(folder).as_posix()] * len(inputs.x)
        labels += [label] * len(inputs.x)
        notes += inputs.notes
    labelled = None if all(label is None for label in labels) else [str(label) for label in labels]
    return Inputs(np.concatenate(parts), labelled, notes, names)


def unknown_labels_note(folder: Path, files: list[tuple[Path, str | None]], model: EdgeModel) -> list[str]:
    """The note naming the labels of ``files`` that name no class of a classifier (they count wrong)."""
    unknown = sorted({label for _, label in files if label is not None} - set(model.class_names))
    if not unknown or model.task != "classification":
        return []
    return [
        f"{len(unknown)} label(s) of {folder} name no class of {model.source} (counted wrong): "
        + ", ".join(printable(name) for name in unknown[:5])
    ]


def _read_folder(folder: Path, model: EdgeModel) -> Inputs:
    """Every input file of ``folder`` (:func:`folder_files`) read at once, with labels and paths."""
    files = folder_files(folder)
    inputs = read_files(folder, files, model)
    inputs.notes += unknown_labels_note(folder, files, model)
    return inputs


LABELS_FILE = "labels.csv"


def _listed_labels(path: Path) -> list[tuple[str, str]]:
    """(file, label) of each row of a folder's ``labels.csv``: its ``file`` column and its one other column."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{path} cannot be read ({first_line(error)}); write it as UTF-8 CSV") from None
    header = [cell.strip() for cell in rows[0]] if rows else []
    if "file" not in header or len(header) != 2:
        raise UserError(
            f"{path} must have a header of two columns, 'file' and the label (has {header[:4]}); predict scores "
            "one label column"
        )
    column = header.index("file")
    listed = []
    for line, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise UserError(f"{path} line {line} has {len(row)} fields, not 2; give a file and its label")
        name = row[column].strip()
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise UserError(f"{path} line {line} names {name!r}, outside the folder; give paths inside it")
        listed.append((name, row[1 - column].strip()))
    return listed


def _read_ts(path: Path, model: EdgeModel) -> Inputs:
    """The series of a UCR/UEA ``.ts`` file through the model's front end, with their labels.

    A model trained on series of unequal length (its front end's ``lengths`` is ``"resampled"``) takes series of
    any length, each linearly resampled to its length (:func:`edge.device.series_files.fit_length`, as training did); a
    model trained on equal lengths takes series of its own length only.
    """
    series_file = read_ts(path)
    notes = [f"{path.name}: {note}"] if (note := series_file.note()) else []
    front_end = model.front_end or {}
    if front_end.get("kind") != WINDOWS:
        if len(set(series_file.lengths)) > 1:
            raise UserError(
                f"{path} holds series of unequal length, and {model.source} has no series front end (in a "
                "manifest.json beside it) saying how to fit them to its input; give series of equal length"
            )
        return Inputs(model.as_batch(np.stack(series_file.series)), series_file.labels, notes)
    steps, channels = front_end["window_steps"], front_end["channels"]
    dimensions = series_file.series[0].shape[1]
    if dimensions != len(channels):
        raise UserError(
            f"{path} has {dimensions} dimension(s) per series; {model.source} takes {len(channels)} "
            f"({', '.join(channels)})"
        )
    if front_end.get("lengths") != RESAMPLED:
        for line, length in zip(series_file.lines, series_file.lengths, strict=True):
            if length != steps:
                raise UserError(
                    f"{path} line {line}: a series of {length} steps; {model.source} was trained on series of "
                    f"{steps} steps, all of equal length, and takes only those"
                )
    x, resampled = fit_length(series_file.series, steps)
    if resampled:
        notes.append(f"{path.name}: resampled {resampled} of {len(x)} series to the model's {steps} steps (linear)")
    return Inputs(model.as_batch(model_inputs(x, front_end)), series_file.labels, notes)


def _read_csv(path: Path) -> np.ndarray:
    """Numeric rows of a CSV; a first row that holds no number is taken as the header (a first row with some
    numbers is data, so a bad value there is reported, not dropped as a header)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [(number, row) for number, row in enumerate(csv.reader(handle), 1) if any(c.strip() for c in row)]
    except (UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"CSV file {path} cannot be read ({first_line(error)}); save it as UTF-8 CSV") from None
    first = rows[0][0] if rows else 0
    if rows and not any(is_number(cell) for cell in rows[0][1]):
        rows = rows[1:]
    if not rows:
        raise UserError(f"CSV file {path} has no data rows; write one example per row")
    width = len(rows[0][1])
    values = []
    for number, row in rows:
        if len(row) != width:
            raise UserError(
                f"CSV file {path} line {number} has {len(row)} values but line {rows[0][0]} has {width}; "
                "give every example the same number of values"
            )
        bad = next((cell for cell in row if not is_number(cell)), None)
        if bad is None:
            values.append([float(cell) for cell in row])
        else:
            header = " (a header row names every column)" if number == first else ""
            raise UserError(
                f"CSV file {path} line {number} holds '{quoted(bad)}', which is not a number{header}; "
                "give raw numeric values only"
            )
    return np.asarray(values, dtype=np.float64)


def _read_npy(path: Path) -> np.ndarray:
    """An array from an ``.npy`` file, never unpickling; its header's size is checked before anything is read."""
    try:
        with path.open("rb") as handle:
            _check_array_header(handle, path)
        return np.load(path, allow_pickle=False)
    except UserError:
        raise
    except (OSError, ValueError, EOFError, SyntaxError, tokenize.TokenError) as error:  # numpy parses headers as Python
        reason = "its header is damaged" if isinstance(error, SyntaxError | tokenize.TokenError) else first_line(error)
        raise UserError(
            f"{path} is not a readable .npy file of numbers ({reason}); save it with np.save(path, array)"
        ) from None


def _check_array_header(handle: Any, path: Path, what: str = "") -> None:
    """Read an ``.npy`` header from ``handle`` (``what``: the array's name in ``path``, e.g. ``": array 'x'"``) and
    refuse an array of Python objects or one larger than :data:`MAX_ARRAY_BYTES`."""
    refusal = array_header_refusal(handle, f"{path}{what}", "predict smaller batches", "save an array of numbers")
    if refusal is not None:
        raise UserError(refusal)


def _read_npz(path: Path, name: str = "x", required: bool = True) -> np.ndarray | None:
    """Array ``name`` of an ``.npz`` file (never unpickling; None when it is missing and not ``required``); its zip
    entry's declared size and its header's are checked before it is read."""
    import zipfile
    import zlib

    try:
        with zipfile.ZipFile(path) as archive:
            if f"{name}.npy" in archive.namelist():
                info = archive.getinfo(f"{name}.npy")
                refusal = zip_too_large(f"{path}: array '{name}'", [info], MAX_ARRAY_BYTES, "predict smaller batches")
                if refusal is not None:
                    raise UserError(refusal)
                with archive.open(info) as handle:
                    _check_array_header(handle, path, f": array '{name}'")
        with np.load(path, allow_pickle=False) as archive:
            if name not in archive.files:
                if not required:
                    return None
                raise UserError(
                    f"{path} has no array '{name}' (arrays: {', '.join(archive.files) or 'none'}); save inputs as x"
                )
            return archive[name]
    except UserError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, SyntaxError, tokenize.TokenError) as error:
        damaged = isinstance(error, SyntaxError | tokenize.TokenError)  # numpy parses headers as Python
        reason = f"array '{name}' has a damaged header" if damaged else first_line(error)
        raise UserError(
            f"{path} is not a readable .npz file ({reason}): it is damaged or cut short; "
            "save it again with np.savez(path, x=...)"
        ) from None


def _npz_labels(path: Path, count: int) -> list[str] | None:
    """The true labels an ``.npz`` carries beside its inputs (array ``y``, one per example), as text; None when it
    has none."""
    y = _read_npz(path, "y", required=False)
    if y is None:
        return None
    y = y.reshape(len(y), -1)[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1 or len(y) != count or y.dtype.kind not in "biufUS":
        raise UserError(f"{path}: array 'y' has shape {y.shape}; give one label per example of x, or leave y out")
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)  # as training reads whole numbers
    return [value.decode() if isinstance(value, bytes) else str(value) for value in y.tolist()]


def _windows_to_inputs(array: np.ndarray, model: EdgeModel) -> np.ndarray:
    """Raw windows ``(n, steps, channels)`` of a stream model through its front end (one channel's also as
    ``(n, steps)``); any other array as it is."""
    front_end = model.front_end or {}
    if front_end.get("kind") != WINDOWS:
        return array
    one_channel = len(front_end["channels"]) == 1 and front_end["front_end"] != "raw"
    if one_channel and array.ndim == 2 and array.shape[1] == front_end["window_steps"] != model.input_shape[-1]:
        array = array[..., np.newaxis]  # (n, steps) series of one channel, not (n, features)
    if array.ndim != 3:
        return array
    shape = (front_end["window_steps"], len(front_end["channels"]))
    if array.shape[1:] != shape:
        raise UserError(
            f"input holds windows of shape {array.shape[1:]}; {model.source} takes windows of {shape[0]} "
            f"samples of {shape[1]} channels ({', '.join(front_end['channels'])})"
        )
    return model_inputs(array, front_end)


def _read_image(path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """One image as raw pixel values shaped like the model's input (channels and size)."""
    if len(input_shape) != 3:
        raise UserError(
            f"{path} is an image but the model takes examples of shape {input_shape}; give a .csv or .npy file"
        )
    try:
        from PIL import Image
    except ImportError:
        raise UserError("reading images needs Pillow; pip install pillow, or give a .csv or .npy file") from None
    height, width, channels = input_shape
    if channels not in (1, 3):
        shape = ", ".join(map(str, input_shape))
        if input_shape[0] in (1, 3):  # (channels, height, width): a model converted from PyTorch or ONNX
            raise UserError(
                f"the model takes channels-first (NCHW) images of shape ({shape}), which predict reads only as a "
                f".npy file already in that layout: give one of shape (n, {shape}) instead of {path.name}"
            )
        raise UserError(
            f"the model takes {channels}-channel images; give a .npy file of shape (n, {shape}) instead of {path.name}"
        )
    try:
        with open_image(path) as image:  # reads the header only
            refusal = image_too_large(path, *image.size)
            if refusal is not None:
                raise UserError(refusal)
            image = image.convert("F" if channels == 1 else "RGB")
            if (image.height, image.width) != (height, width):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32)
    except UserError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise UserError(f"image {path} cannot be read ({first_line(error)}); replace the file") from None
    if channels == 1:
        pixels = pixels[..., np.newaxis]
    return pixels[np.newaxis]


def _read_wav(path: Path, model: EdgeModel) -> np.ndarray:
    """One clip's MFCCs, computed by the front end of the manifest beside the model."""
    if model.front_end is None:
        shape = ", ".join(map(str, model.input_shape))
        raise UserError(
            f"{path} is a WAV clip but {model.source} has no audio front end (none in a manifest.json "
            f"beside it); give its input features instead, a .npy file of shape (n, {shape})"
        )
    from edge.device.mfcc import wav_features

    return wav_features(path, model.front_end)
