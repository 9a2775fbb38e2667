"""CSV tables: one example per row, numeric feature columns and one or more label columns, read with pandas a chunk
at a time (float32 features; a cell that is not a number is one error line naming its row and column)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edge.device.errors import UserError, closest, is_number, quoted
from recipes.dataset import Dataset, labelled

_CSV_CHUNK_ROWS = 1 << 16  # rows pandas parses at a time: the text it holds stays small beside the float32 features
_PANDAS_CSV = {"engine": "c", "encoding": "utf-8-sig", "na_filter": False, "skip_blank_lines": True}


def load_csv(path: Path, label: str) -> Dataset:
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


def read_csv_file(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """The header, the non-blank rows (cells stripped) and their line numbers of a small UTF-8 CSV file, read with
    the csv module."""
    rows = list(_csv_rows(path))
    if not rows:
        raise UserError(f"CSV file {path} is empty; it needs a header row naming the columns, then data rows")
    if len(rows) == 1:
        raise UserError(f"CSV file {path} has a header but no data rows; add one row per example")
    return rows[0][1], [cells for _, cells in rows[1:]], [line for line, _ in rows[1:]]


def label_columns(
    header: list[str], rows: list[list[str]], line_numbers: list[int], label: str, path: Path
) -> tuple[list[str], list[int], np.ndarray]:
    """The label columns ``label`` names (comma-separated) in rows read by :func:`read_csv_file`: their names,
    indices and values ``(n, columns)``, as :func:`_label_array` makes them."""
    names, indices = _label_indices(header, label, path)
    texts = [np.array([row[index] for row in rows], dtype=object) for index in indices]
    return names, indices, _label_array(texts, names, line_numbers.__getitem__, path)


def _label_indices(header: list[str], label: str, path: Path) -> tuple[list[str], list[int]]:
    """The names and indices of the label columns ``label`` names (comma-separated), each present once."""
    names = [name.strip() for name in label.split(",")]
    indices = [label_column(header, name, path) for name in names]
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


def label_column(header: list[str], label: str, path: Path) -> int:
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
