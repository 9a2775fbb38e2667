"""Text cells read as numbers the way a data file means them, and error lines that stay short.

Python's ``float`` (and numpy's, and so a plain ``np.asarray(cells, float)``) reads '1_000' as 1000 and Arabic-Indic
digits as numbers; no CSV writer means either. Every reader of text cells refuses them in one line that names the
cell, and a cell quoted in an error line is cut to 60 characters with its length said.
"""

from __future__ import annotations

import pytest

from edge.device.errors import QUOTED_CHARS, UserError, is_number, plain_floats, quoted
from recipes.data import load_dataset


@pytest.mark.parametrize("cell", ["1_000", "١٢٣", "1.5f", "", "0x10", "--1"])
def test_cells_that_are_not_plain_numbers(cell):
    assert not is_number(cell)


@pytest.mark.parametrize("cell", ["0", "-1.5", "+3", ".5", "5.", "1e-5", "2E+3", " 7 ", "nan", "inf", "-Infinity"])
def test_plain_numbers(cell):
    assert is_number(cell) and plain_floats([cell])[0] == pytest.approx(float(cell), nan_ok=True)


def test_plain_floats_refuses_what_only_python_reads():
    with pytest.raises(ValueError):
        plain_floats([["1", "2"], ["1_000", "3"]])
    assert plain_floats([["1", "2"], ["3", "4.5"]]).tolist() == [[1.0, 2.0], [3.0, 4.5]]


def test_a_long_cell_is_cut_in_the_error_line():
    assert quoted("x" * 10) == "x" * 10
    text = quoted("9" * 400)
    assert len(text) <= QUOTED_CHARS and text.endswith("(400 characters)")


def test_training_csv_refuses_underscored_and_other_script_digits(tmp_path):
    for cell in ("1_000", "١٢٣"):
        path = tmp_path / "table.csv"
        path.write_text(f"a,b,label\n1,2,x\n3,{cell},y\n5,6,x\n7,8,y\n", encoding="utf-8")
        with pytest.raises(UserError, match=f"line 3: column 'b' holds '{cell}', which is not a number"):
            load_dataset(str(path), "label")


def test_a_400_digit_number_gives_a_short_error_line(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text(f"a,b,label\n1,2,x\n3,{'9' * 400},y\n5,6,x\n7,8,y\n")
    with pytest.raises(UserError) as error:
        load_dataset(str(path), "label")
    assert len(str(error.value)) < 300 and "(400 characters)" in str(error.value)


def test_the_device_runtime_and_the_stream_reader_refuse_1_000(tmp_path):
    from edge.device.inputs import _read_csv
    from edge.device.windows import read_stream

    rows = tmp_path / "rows.csv"
    rows.write_text("1,2\n3,1_000\n")
    with pytest.raises(UserError, match="line 2 holds '1_000', which is not a number"):
        _read_csv(rows)
    stream = tmp_path / "stream.csv"
    stream.write_text("ax,ay\n" + "".join(f"{i},{i}\n" for i in range(20)) + "1_000,2\n")
    with pytest.raises(UserError, match="column 'ax' holds '1_000', which is not a number"):
        read_stream(stream, 50.0)


def test_a_nul_byte_or_a_repeated_column_name_is_one_line(tmp_path):
    """pandas ends a cell at a NUL byte ('3,4\\x005' read as 3 and 4) and takes repeated names as they are: both
    are refused, naming the line or the column."""
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"a,b,label\n1,2,x\n3,4\x005,y\n5,6,x\n7,8,y\n")
    with pytest.raises(UserError, match="holds a NUL byte on line 3"):
        load_dataset(str(nul), "label")
    repeated = tmp_path / "repeated.csv"
    repeated.write_text("a,a,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n")
    with pytest.raises(UserError, match="has 2 columns named 'a'; give each column its own name"):
        load_dataset(str(repeated), "label")
