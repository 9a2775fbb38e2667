"""Data loading: built-in sets, CSV, NPZ and image folders, and one clear error per user mistake."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edge.device.errors import UserError
from recipes.data import BUILTIN_DATASETS, load_dataset
from recipes.dataset import Dataset

# --- built-in sets ---------------------------------------------------------------------------


def test_digits_is_an_image_set_of_raw_values():
    dataset = load_dataset("digits")
    assert dataset.kind == "image"
    assert dataset.name == "digits"
    assert dataset.x.shape == (1797, 8, 8, 1)
    assert dataset.input_shape == (8, 8, 1)
    assert dataset.x.dtype == np.float32 and dataset.y.dtype == np.int32
    assert dataset.x.min() == 0.0 and dataset.x.max() == 16.0
    assert dataset.num_classes == 10
    assert dataset.class_names == [str(digit) for digit in range(10)]
    assert dataset.feature_names is None


@pytest.mark.parametrize(
    ("name", "shape", "class_names", "first_feature"),
    [
        ("iris", (150, 4), ["setosa", "versicolor", "virginica"], "sepal length (cm)"),
        ("wine", (178, 13), ["class_0", "class_1", "class_2"], "alcohol"),
        ("breast_cancer", (569, 30), ["malignant", "benign"], "mean radius"),
    ],
)
def test_tabular_builtin_sets(name, shape, class_names, first_feature):
    dataset = load_dataset(name)
    assert dataset.kind == "tabular"
    assert dataset.x.shape == shape and dataset.x.dtype == np.float32
    assert dataset.y.shape == (shape[0],) and dataset.y.dtype == np.int32
    assert dataset.class_names == class_names
    assert len(dataset.feature_names) == shape[1] and dataset.feature_names[0] == first_feature
    assert sorted(set(dataset.y.tolist())) == list(range(len(class_names)))


def test_builtin_names_are_the_documented_ones():
    assert BUILTIN_DATASETS == ("digits", "iris", "wine", "breast_cancer", "machine", "diabetes", "linnerud", "motion")


def test_unknown_builtin_suggests_the_closest_name():
    with pytest.raises(
        UserError,
        match=r"unknown data set 'digts': .*machine, diabetes, linnerud, motion\); did you mean 'digits'\?$",
    ):
        load_dataset("digts")


def test_missing_path_says_what_to_pass(tmp_path):
    missing = tmp_path / "runs" / "x.csv"
    with pytest.raises(UserError, match=r"x\.csv does not exist; pass a path to a \.csv/\.npz/\.ts file"):
        load_dataset(str(missing))


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match=r"unsupported suffix '\.txt'"):
        load_dataset(str(path))


# --- CSV -------------------------------------------------------------------------------------


def _write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_csv_with_integer_labels_sorted_numerically(tmp_path):
    source = _write(tmp_path / "points.csv", "a,label,b\n1,10,2.5\n3,2,4\n\n5,10,6\n7,1,8\n")
    dataset = load_dataset(source)
    assert dataset.kind == "tabular" and dataset.name == "points"
    assert dataset.feature_names == ["a", "b"]
    assert dataset.class_names == ["1", "2", "10"]
    assert dataset.y.tolist() == [2, 1, 2, 0]
    assert dataset.x.dtype == np.float32
    assert dataset.x.tolist() == [[1, 2.5], [3, 4], [5, 6], [7, 8]]


def test_csv_with_string_labels_and_a_named_label_column(tmp_path):
    source = _write(tmp_path / "pets.csv", "weight,height,species\n4,25,cat\n30,60,dog\n5,23, cat\n")
    dataset = load_dataset(source, label="species")
    assert dataset.class_names == ["cat", "dog"]
    assert dataset.y.tolist() == [0, 1, 0]
    assert dataset.input_shape == (2,)


def test_csv_whole_float_labels_are_integers(tmp_path):
    source = _write(tmp_path / "f.csv", "x,label\n1,1.0\n2,0\n3,1\n")
    assert load_dataset(source).class_names == ["0", "1"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "is empty; it needs a header row"),
        ("\n\n", "is empty; it needs a header row"),
        ("a,label\n", "has a header but no data rows"),
        ("a,b\n1,2\n", r"no column 'label' \(columns: a, b\); pass --label COLUMN"),
        ("a,label\n1,0\n2,1,3\n", "line 3 has 3 fields but the header has 2"),
        ("a,label\n1,0\nhello,1\n", "line 3: column 'a' holds 'hello', which is not a number"),
        ("a,b,label\n1,2,0\n3,,1\n", "line 3: column 'b' is empty"),
        ("a,b,label\n1,nan,0\n3,4,1\n", "line 2: column 'b' is 'nan', not a finite number"),
        ("a,b,label\n1,2,0\n3,inf,1\n", "line 3: column 'b' is 'inf', not a finite number"),
        ("a,b,label\n1,2,0\n3,1e300,1\n", "line 3: column 'b' is '1e300', not a finite number"),
        ("a,label\n1,0\n2,\n", "line 3: the label column 'label' is empty"),
        ("a,label\n1,0\n2,0\n", "only one class \\('0'\\)"),
        ("label\n0\n1\n", "has only the label column 'label'"),
        ("a,label,label\n1,0,1\n", "2 columns named 'label'"),
    ],
)
def test_bad_csv_is_a_user_error_naming_the_problem(tmp_path, text, expected):
    source = _write(tmp_path / "bad.csv", text)
    with pytest.raises(UserError, match=expected) as error:
        load_dataset(source)
    assert "\n" not in str(error.value)


def test_csv_label_typo_suggests_the_column(tmp_path):
    source = _write(tmp_path / "pets.csv", "weight,species\n4,cat\n30,dog\n")
    with pytest.raises(UserError, match="no column 'specie'; did you mean 'species'"):
        load_dataset(source, label="specie")


def test_csv_that_is_not_text(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00\x81label\n")
    with pytest.raises(UserError, match="binary.csv is not UTF-8"):
        load_dataset(str(path))


def test_csv_line_numbers_count_blank_lines_and_the_header_may_follow_blank_lines(tmp_path):
    text = "\n\na,b,label\n1,2,0\n\n   \n,,\n3,4,1\n\n5,oops,1\n"
    source = _write(tmp_path / "gaps.csv", text)
    with pytest.raises(UserError, match="line 10: column 'b' holds 'oops', which is not a number"):
        load_dataset(source)


def test_csv_skips_blank_and_whitespace_rows(tmp_path):
    source = _write(tmp_path / "gaps.csv", "a,label\n1,0\n \t \n , \n\n2,1\n")
    assert load_dataset(source).x.tolist() == [[1], [2]]


def test_csv_quoted_fields_may_hold_commas_and_newlines(tmp_path):
    text = 'a,b,label\n"1",2,"big, red"\n3,"4",small\n5,6,"two\nlines"\n7,x,small\n'
    source = _write(tmp_path / "quoted.csv", text)
    with pytest.raises(UserError, match="line 6: column 'b' holds 'x'"):
        load_dataset(source)
    (tmp_path / "quoted.csv").write_text(text.replace("7,x", "7,8"))
    dataset = load_dataset(source)
    assert dataset.class_names == ["big, red", "small", "two\nlines"]
    assert dataset.x.tolist() == [[1, 2], [3, 4], [5, 6], [7, 8]]


def test_csv_with_crlf_line_ends_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "windows.csv"
    path.write_bytes("\ufeffa,b,label\r\n1,2,x\r\n\r\n3,4,y\r\n5,inf,y\r\n".encode())
    with pytest.raises(UserError, match="line 5: column 'b' is 'inf', not a finite number"):
        load_dataset(str(path))
    path.write_bytes("\ufeffa,b,label\r\n1,2,x\r\n\r\n3,4,y\r\n".encode())
    dataset = load_dataset(str(path))
    assert dataset.feature_names == ["a", "b"] and dataset.class_names == ["x", "y"]
    assert dataset.x.tolist() == [[1, 2], [3, 4]]


def test_csv_cells_are_stripped_and_read_as_numbers(tmp_path):
    """Spaces and tabs around a number are dropped; '1_000' is refused (tests/test_number_cells.py)."""
    source = _write(tmp_path / "s.csv", "a,b,label\n 1 , 2.5e1 ,2.0\n1000,\t-3\t,1\n")
    dataset = load_dataset(source)
    assert dataset.x.tolist() == [[1, 25], [1000, -3]]
    assert dataset.class_names == ["1", "2"]  # whole numbers, so integers


def test_csv_labels_stay_text_unless_every_one_is_a_finite_number(tmp_path):
    source = _write(tmp_path / "t.csv", "a,label\n1,1\n2,inf\n3,True\n4,true\n")
    assert load_dataset(source).class_names == ["1", "True", "inf", "true"]


def test_several_label_columns_with_a_non_finite_value_name_it(tmp_path):
    source = _write(tmp_path / "t.csv", "a,y,z\n1,1,2\n2,nan,3\n")
    with pytest.raises(UserError, match="label column 'y' holds 'nan', which is not a number"):
        load_dataset(source, "y,z")


def test_csv_text_cell_wins_over_an_earlier_non_finite_one(tmp_path):
    source = _write(tmp_path / "t.csv", "a,b,label\n1,nan,0\n2,3,1\n4,five,0\n")
    with pytest.raises(UserError, match="line 4: column 'b' holds 'five'"):
        load_dataset(source)


def test_csv_short_row_is_a_field_count_error_not_an_empty_cell(tmp_path):
    source = _write(tmp_path / "t.csv", "a,b,label\n1,2,0\n3,4\n5,6,1\n")
    with pytest.raises(UserError, match="line 3 has 2 fields but the header has 3"):
        load_dataset(source)


def test_csv_unterminated_quote_is_malformed(tmp_path):
    source = _write(tmp_path / "t.csv", 'a,label\n1,0\n2,"1\n')
    with pytest.raises(UserError, match="is malformed .*; fix the quoting"):
        load_dataset(source)


@pytest.mark.parametrize("extra_row", [1, 4, 5, 9])
def test_csv_long_row_is_caught_wherever_the_parser_chunks_meet(tmp_path, monkeypatch, extra_row):
    # pandas compares a row's fields with the row before it in the same chunk, so the first row of a chunk
    # is cut to the header's width without an error; the loader must still name it.
    import recipes.data.tables

    monkeypatch.setattr(recipes.data.tables, "_CSV_CHUNK_ROWS", 4)
    rows = [f"{index},{index % 2}" for index in range(12)]
    rows[extra_row - 1] += ",7"
    source = _write(tmp_path / "long.csv", "a,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(UserError, match=f"line {extra_row + 1} has 3 fields but the header has 2"):
        load_dataset(source)


def test_csv_bad_cell_in_a_later_chunk_names_its_line(tmp_path, monkeypatch):
    import recipes.data.tables

    monkeypatch.setattr(recipes.data.tables, "_CSV_CHUNK_ROWS", 3)
    rows = [f"{index},{index % 2}" for index in range(10)]
    rows[7] = "\n,\n7 x,1"  # two blank rows before it
    source = _write(tmp_path / "late.csv", "a,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(UserError, match="line 11: column 'a' holds '7 x'"):
        load_dataset(source)
    (tmp_path / "late.csv").write_text("a,label\n" + "\n".join(rows).replace("7 x", "7") + "\n")
    dataset = load_dataset(source)
    assert dataset.x[:, 0].tolist() == list(range(10)) and dataset.x.flags.c_contiguous


# --- NPZ -------------------------------------------------------------------------------------


def test_npz_tabular_with_string_labels(tmp_path):
    path = tmp_path / "table.npz"
    np.savez(path, x=np.arange(12, dtype=np.float64).reshape(6, 2), y=np.array(["b", "a"] * 3))
    dataset = load_dataset(str(path))
    assert dataset.kind == "tabular" and dataset.name == "table"
    assert dataset.x.shape == (6, 2) and dataset.x.dtype == np.float32
    assert dataset.class_names == ["a", "b"]
    assert dataset.y.tolist() == [1, 0, 1, 0, 1, 0]


def test_npz_images_get_a_channel_axis(tmp_path):
    path = tmp_path / "images.npz"
    np.savez(path, x=np.zeros((4, 5, 6), dtype=np.uint8), y=np.array([3, 7, 3, 7]))
    dataset = load_dataset(str(path))
    assert dataset.kind == "image"
    assert dataset.x.shape == (4, 5, 6, 1)
    assert dataset.class_names == ["3", "7"]
    assert dataset.y.tolist() == [0, 1, 0, 1]


def test_npz_color_images_keep_their_channels(tmp_path):
    path = tmp_path / "color.npz"
    np.savez(path, x=np.full((4, 5, 6, 3), 200, dtype=np.uint8), y=np.array([0, 1, 0, 1]))
    dataset = load_dataset(str(path))
    assert dataset.input_shape == (5, 6, 3)
    assert dataset.x.max() == 200.0


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"x": np.zeros((3, 2))}, r"no array 'y' \(arrays: x\)"),
        ({"features": np.zeros((3, 2)), "y": np.arange(3)}, r"no array 'x' \(arrays: features, y\)"),
        ({"x": np.zeros((3, 2)), "y": np.arange(4)}, "array 'x' has 3 examples but array 'y' has 4"),
        ({"x": np.array([[1.0, np.nan], [2, 3]]), "y": np.arange(2)}, "'x' has NaN .* example 0"),
        ({"x": np.array([{"a": 1}, {}], dtype=object), "y": np.arange(2)}, "'x' holds Python objects"),
        ({"x": np.zeros((3, 2)), "y": np.array([1, "a", None], dtype=object)}, "'y' holds Python objects"),
        ({"x": np.zeros((3, 2)), "y": np.array([0, 0, 0])}, "only one class"),
        ({"x": np.zeros(3), "y": np.arange(3)}, r"'x' has shape \(3,\)"),
        ({"x": np.array([["a"], ["b"]]), "y": np.arange(2)}, "'x' has dtype <U1"),
        ({"x": np.zeros((3, 2)), "y": np.array([0.5, np.nan, 2])}, "'y' has NaN or infinite values"),
        ({"x": np.zeros((3, 2)), "y": np.zeros((3, 2, 2))}, r"'y' has shape \(3, 2, 2\)"),
        ({"x": np.zeros((0, 2)), "y": np.arange(0)}, "'x' has no examples"),
    ],
)
def test_bad_npz_is_a_user_error_naming_the_array(tmp_path, arrays, expected):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(UserError, match=expected):
        load_dataset(str(path))


def test_npz_that_is_not_an_archive(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_text("not a zip file")
    with pytest.raises(UserError, match="broken.npz cannot be read"):
        load_dataset(str(path))


# --- image folders -----------------------------------------------------------------------------


def _save_image(path, mode: str, size: tuple[int, int], color) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


def test_grayscale_folder_is_resized_to_the_first_image(tmp_path):
    folder = tmp_path / "shapes"
    _save_image(folder / "circle" / "a.png", "L", (6, 4), 10)  # PIL sizes are (width, height)
    _save_image(folder / "circle" / "b.png", "L", (12, 8), 20)
    _save_image(folder / "square" / "c.png", "L", (3, 2), 250)
    (folder / "square" / "notes.txt").write_text("ignored")
    dataset = load_dataset(str(folder))
    assert dataset.kind == "image" and dataset.name == "shapes"
    assert dataset.class_names == ["circle", "square"]
    assert dataset.x.shape == (3, 4, 6, 1) and dataset.x.dtype == np.float32
    assert dataset.y.tolist() == [0, 0, 1]
    assert dataset.x[:, 0, 0, 0].tolist() == [10.0, 20.0, 250.0]  # raw 0..255, no scaling


def test_mixed_folder_becomes_rgb_at_the_requested_size(tmp_path):
    folder = tmp_path / "pets"
    _save_image(folder / "cat" / "1.png", "L", (10, 10), 100)
    _save_image(folder / "dog" / "2.jpg", "RGB", (20, 16), (255, 0, 0))
    _save_image(folder / "dog" / "3.png", "RGBA", (5, 5), (0, 0, 255, 128))
    dataset = load_dataset(str(folder), image_size=[7, 9])
    assert dataset.x.shape == (3, 7, 9, 3)
    assert dataset.x[0, 3, 3].tolist() == [100.0, 100.0, 100.0]
    assert dataset.x[1, 3, 3, 0] > 240 and dataset.x[1, 3, 3, 2] < 15  # red, up to JPEG loss
    assert dataset.x[2, 3, 3].tolist() == [0.0, 0.0, 255.0]


def test_folder_with_one_class(tmp_path):
    _save_image(tmp_path / "only" / "cat" / "1.png", "L", (4, 4), 0)
    with pytest.raises(UserError, match="has 1 class subfolder"):
        load_dataset(str(tmp_path / "only"))


def test_folder_of_loose_images(tmp_path):
    _save_image(tmp_path / "loose" / "1.png", "L", (4, 4), 0)
    _save_image(tmp_path / "loose" / "2.png", "L", (4, 4), 0)
    with pytest.raises(UserError, match="0 class subfolder.* and 2 images directly in it"):
        load_dataset(str(tmp_path / "loose"))


def test_class_folder_without_images(tmp_path):
    _save_image(tmp_path / "data" / "cat" / "1.png", "L", (4, 4), 0)
    (tmp_path / "data" / "dog").mkdir()
    (tmp_path / "data" / "dog" / "readme.md").write_text("no pictures")
    with pytest.raises(UserError, match="class folder .*dog has no images"):
        load_dataset(str(tmp_path / "data"))


def test_corrupt_image_is_named(tmp_path):
    _save_image(tmp_path / "data" / "cat" / "1.png", "L", (4, 4), 0)
    (tmp_path / "data" / "dog").mkdir()
    (tmp_path / "data" / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(UserError, match=r"image .*broken\.png cannot be read"):
        load_dataset(str(tmp_path / "data"))


def test_bad_image_size(tmp_path):
    _save_image(tmp_path / "data" / "cat" / "1.png", "L", (4, 4), 0)
    _save_image(tmp_path / "data" / "dog" / "1.png", "L", (4, 4), 0)
    with pytest.raises(UserError, match="image_size is height,width"):
        load_dataset(str(tmp_path / "data"), image_size=[0, 4])


def test_dataset_properties():
    dataset = Dataset(
        x=np.zeros((2, 3), np.float32),
        y=np.array([0, 1], np.int32),
        class_names=["a", "b"],
        kind="tabular",
        name="t",
    )
    assert dataset.num_classes == 2 and dataset.input_shape == (3,)
