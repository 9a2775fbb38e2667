"""Whole series as one file: the UCR/UEA ``.ts`` format (sktime, aeon), and fitting a series to a model's length.

A ``.ts`` file is a header of ``@`` lines, then ``@data`` and one series per line::

    # comments start with '#' (or '%')
    @problemName JapaneseVowels
    @timeStamps false
    @missing true
    @univariate false
    @dimensions 2
    @equalLength false
    @classLabel true 1 2 3
    @data
    1.2,1.3,?,1.1:0.5,0.4,0.3,0.2:2

On a data line the dimensions are separated by ``:``, the values of a dimension by ``,``, and the label comes last
(a class from ``@classLabel true <labels>``, or a number under ``@targetLabel true``, for a regression). ``?`` or
``NaN`` is a missing value: it is filled by linear interpolation within its series and dimension (before the first
or after the last known value: that value), and counted. ``@timeStamps true`` (values written as ``(time,value)``
pairs) is refused: write the values alone.

Series of unequal length (``@equalLength false``) meet a model with a fixed input by one rule, the same in training
and on the device (:func:`fit_length`): each series is linearly resampled to the training file's longest length,
its ``n`` samples spread evenly over the same span. The model's ``front_end`` records it (``lengths:
"resampled"``), and ``predict`` resamples each series of a test file to the model's length the same way; a model
trained on series of equal length takes only series of its own length.

This module imports numpy only: the device runtime reads ``.ts`` files with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.device.errors import UserError, is_number, plain_floats, printable, quoted

SUFFIX = ".ts"
RESAMPLED = "resampled"  # front_end["lengths"] of a model trained on series of unequal length
HEADERS = ("problemName", "timeStamps", "missing", "univariate", "dimensions", "equalLength", "seriesLength")
HEADERS += ("classLabel", "targetLabel", "data")
HEADER_KEYS = {name.lower() for name in HEADERS} | {"dimension"}  # keys are read case-insensitively
MISSING = ("?", "nan")
COMMENTS = ("#", "%")  # comment lines (the UCR archive's files use both)


@dataclass
class SeriesFile:
    """The series of a ``.ts`` file.

    Args:
        name: ``@problemName`` (the file's stem when absent).
        series: per series, its values ``(steps, dimensions)`` float64, missing values filled.
        labels: per series, its label text (None when the file has no labels).
        class_labels: the classes ``@classLabel`` declares, in order (None for a regression or no labels).
        regression: the labels are numeric targets (``@targetLabel true``).
        lines: each series' line number.
        missing: missing values filled by interpolation.
    """

    name: str
    series: list[np.ndarray]
    labels: list[str] | None
    class_labels: list[str] | None
    regression: bool
    lines: list[int]
    missing: int = 0

    @property
    def lengths(self) -> list[int]:
        """Each series' number of steps."""
        return [len(values) for values in self.series]

    def note(self) -> str | None:
        """What reading filled in (to follow the file's name on a line), or None when nothing was missing."""
        if not self.missing:
            return None
        return f"filled {self.missing} missing value(s) by linear interpolation within their series"


def read_ts(path: Path) -> SeriesFile:
    """Read a UCR/UEA ``.ts`` file (see the module's description).

    Raises:
        UserError: one line naming the file, the line and the fix: an unknown or malformed header line, data
            before ``@data``, a series with another number of dimensions, a value that is not a number, a label
            the header does not declare, a dimension with no value, or no series at all.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f".ts file {path} is not UTF-8 text; save it as UTF-8") from None
    except OSError as error:
        raise UserError(f".ts file {path} cannot be read ({error.strerror or error}); check the path") from None
    header: dict[str, list[str]] = {}
    series, labels, lines = [], [], []
    missing = 0
    in_data = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(COMMENTS):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise UserError(
                    f".ts file {path} line {number}: data before '@data'; write the header lines (@problemName, "
                    "@classLabel ...), then '@data', then one series per line"
                )
            key, *values = line[1:].split()
            if key.lower() not in HEADER_KEYS:
                raise UserError(
                    f".ts file {path} line {number}: unknown header '@{printable(key)}' (known: "
                    f"{', '.join('@' + name for name in HEADERS)})"
                )
            header[key.lower()] = values
            in_data = key.lower() == "data"
            if not in_data:
                _check_header(header, key, values, path, number)
            continue
        if line.startswith("@"):
            raise UserError(f".ts file {path} line {number}: header line after '@data'; move it above '@data'")
        values, label, filled = _data_line(line, header, path, number)
        if series and values.shape[1] != series[0].shape[1]:
            raise UserError(
                f".ts file {path} line {number}: {values.shape[1]} dimension(s) where line {lines[0]} has "
                f"{series[0].shape[1]}; give every series the same dimensions, separated by ':'"
            )
        series.append(values)
        labels.append(label)
        lines.append(number)
        missing += filled
    if not in_data or not series:
        raise UserError(f".ts file {path} holds no series; write the header, then '@data', then one series per line")
    classes = _flag(header, "classlabel")
    regression = _flag(header, "targetlabel")
    return SeriesFile(
        (header.get("problemname") or [path.stem])[0],
        series,
        labels if classes or regression else None,
        header["classlabel"][1:] if classes else None,
        regression,
        lines,
        missing,
    )


def _flag(header: dict[str, list[str]], key: str) -> bool:
    """Whether a header key's first value is ``true``."""
    return bool(header.get(key)) and header[key][0].lower() == "true"


def _check_header(header: dict[str, list[str]], name: str, values: list[str], path: Path, number: int) -> None:
    """Refuse a header line (``@name values``) whose values cannot be right."""
    where = f".ts file {path} line {number}"
    key = name.lower()
    if key in ("timestamps", "missing", "univariate", "equallength", "classlabel", "targetlabel"):
        if not values or values[0].lower() not in ("true", "false"):
            raise UserError(f"{where}: '@{name}' needs true or false, e.g. '@classLabel true 1 2 3'")
    if key == "timestamps" and values[0].lower() == "true":
        raise UserError(f"{where}: '@timeStamps true' is not supported; write the values alone, without timestamps")
    if key == "classlabel" and values[0].lower() == "true" and len(values) < 2:
        raise UserError(
            f"{where}: '@classLabel true' lists no classes; write them after it, e.g. '@classLabel true a b'"
        )
    if key in ("dimension", "dimensions", "serieslength") and (len(values) != 1 or not values[0].isdigit()):
        raise UserError(f"{where}: '@{name}' needs one whole number")
    if _flag(header, "classlabel") and _flag(header, "targetlabel"):
        raise UserError(f"{where}: both @classLabel true and @targetLabel true; keep the one the labels are")


def _data_line(line: str, header: dict[str, list[str]], path: Path, number: int) -> tuple[np.ndarray, str | None, int]:
    """One series ``(steps, dimensions)`` with its missing values filled, its label, and how many were missing."""
    where = f".ts file {path} line {number}"
    parts = line.split(":")
    classes, regression = _flag(header, "classlabel"), _flag(header, "targetlabel")
    label = None
    if classes or regression:
        if len(parts) < 2:
            raise UserError(f"{where}: no label after the values; end each series with ':' and its label")
        label = parts.pop().strip()
        if classes and label not in header["classlabel"][1:]:
            raise UserError(
                f"{where}: label '{printable(label)}' is not one of @classLabel's "
                f"({', '.join(map(printable, header['classlabel'][1:]))}); fix the label or the header"
            )
        if regression and not _finite(label):
            raise UserError(f"{where}: target '{printable(label)}' is not a finite number (@targetLabel true)")
    declared = (header.get("dimensions") or header.get("dimension") or [None])[0]
    if declared is not None and len(parts) != int(declared):
        raise UserError(
            f"{where}: {len(parts)} dimension(s) but '@dimensions {declared}'; separate dimensions with ':' and put "
            "the label last"
        )
    dimensions, filled = [], 0
    for index, part in enumerate(parts):
        cells = [cell.strip() for cell in part.split(",")]
        gaps = np.array([cell.lower() in MISSING for cell in cells])
        try:
            values = plain_floats(["nan" if gap else cell for cell, gap in zip(cells, gaps, strict=True)])
        except ValueError:
            bad = next(cell for cell in cells if cell.lower() not in MISSING and not is_number(cell))
            raise UserError(
                f"{where}: dimension {index + 1} holds '{quoted(bad)}', which is not a number (missing values are '?')"
            ) from None
        if not np.isfinite(values[~gaps]).all():
            raise UserError(f"{where}: dimension {index + 1} holds an infinite value; give finite numbers")
        if gaps.all():
            raise UserError(f"{where}: dimension {index + 1} has no value, only missing ones; drop the series")
        if gaps.any():
            known = np.flatnonzero(~gaps)
            values[gaps] = np.interp(np.flatnonzero(gaps), known, values[known])
            filled += int(gaps.sum())
        dimensions.append(values)
    lengths = {len(values) for values in dimensions}
    if len(lengths) > 1:
        raise UserError(
            f"{where}: its dimensions have {', '.join(str(len(values)) for values in dimensions)} values; give each "
            "dimension of a series the same number of values"
        )
    return np.stack(dimensions, axis=1), label, filled


def _finite(text: str) -> bool:
    return is_number(text) and math.isfinite(float(text))


def fit_length(series: list[np.ndarray], steps: int) -> tuple[np.ndarray, int]:
    """Series of any length as one array ``(n, steps, dimensions)`` float32: a series of another length is linearly
    resampled to ``steps``, its ``n`` samples spread evenly over the same span (sample ``j`` of the result lies at
    position ``j * (n - 1) / (steps - 1)`` of the original; a one-sample series is repeated).

    Returns:
        The array and how many series were resampled.
    """
    out = np.empty((len(series), steps, series[0].shape[1]), np.float32)
    resampled = 0
    for row, values in enumerate(series):
        if len(values) == steps:
            out[row] = values
            continue
        resampled += 1
        where = np.linspace(0.0, len(values) - 1.0, steps)
        source = np.arange(len(values), dtype=np.float64)
        for dimension in range(values.shape[1]):
            out[row, :, dimension] = np.interp(where, source, values[:, dimension])
    return out, resampled
