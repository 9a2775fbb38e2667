"""The variant registry and the parsing of --quantization (no TensorFlow needed)."""

import pytest

from edge.variants import DEFAULT_VARIANTS, VARIANTS, check_options, parse_variants
from recipes.errors import UserError


def test_default_and_all():
    assert parse_variants("float32,int8") == list(DEFAULT_VARIANTS)
    assert parse_variants("all") == ["float32", "float16", "dynamic", "int8"]
    assert parse_variants(" INT8 , float32,int8") == ["float32", "int8"]  # registry order, no duplicates


def test_unknown_variant_suggests_the_closest():
    with pytest.raises(UserError, match=r"unknown variant 'int9'; did you mean 'int8'\?"):
        parse_variants("float32,int9")
    with pytest.raises(UserError, match="--quantization is empty"):
        parse_variants(" , ")


def test_registry_rows():
    assert [variant.filename for variant in VARIANTS.values()] == [
        "model_float32.tflite", "model_float16.tflite", "model_dynamic.tflite", "model_int8.tflite"]
    assert [name for name, variant in VARIANTS.items() if variant.full_integer] == ["int8"]
    assert VARIANTS["float32"].max_abs_diff == 1e-5
    assert VARIANTS["int8"].max_accuracy_drop == 1.0


def test_options_are_checked_before_any_work():
    check_options(["float32"], 0, False)  # no int8: calibration samples do not matter
    with pytest.raises(UserError, match="int8 needs representative data"):
        check_options(["float32", "int8"], 0, False)
    with pytest.raises(UserError, match="--calibration-samples is -1"):
        check_options(["float32"], -1, False)
    with pytest.raises(UserError, match="--float-io applies to int8 only"):
        check_options(["float32", "float16"], 300, True)
