"""The variant registry and the parsing of --quantization (no TensorFlow needed)."""

import pytest

from edge.device.errors import UserError
from edge.variants import COMPRESSED_VARIANTS, DEFAULT_VARIANTS, VARIANTS, check_options, parse_variants


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
        "model_float32.tflite",
        "model_float16.tflite",
        "model_dynamic.tflite",
        "model_int8.tflite",
    ]
    assert [name for name, variant in VARIANTS.items() if variant.full_integer] == ["int8"]
    # Every stated limit is pinned (the reasoning is in edge/variants.py): a loosened one must fail here, since the
    # parity tests only check measured figures against whatever the registry says.
    classifier = [variant.tolerance("classification") for variant in VARIANTS.values()]
    assert [tolerance.max_abs_diff for tolerance in classifier] == [1e-5, 5e-3, 5e-2, 0.25]
    assert [tolerance.max_accuracy_drop for tolerance in classifier] == [0.0, 0.5, 1.0, 1.0]
    anomaly = [variant.tolerance("anomaly") for variant in VARIANTS.values()]
    assert [tolerance.max_auc_drop for tolerance in anomaly] == [0.001, 0.002, 0.005, 0.01]
    assert [tolerance.min_decision_agreement for tolerance in anomaly] == [0.99, 0.99, 0.98, 0.97]
    regression = [variant.tolerance("regression") for variant in VARIANTS.values()]
    assert [tolerance.max_relative_error for tolerance in regression] == [1e-4, 5e-3, 0.05, 0.1]
    assert [tolerance.max_r2_drop for tolerance in regression] == [1e-4, 2e-3, 0.01, 0.02]
    assert {variant.tolerance("classification").max_accuracy_drop for variant in COMPRESSED_VARIANTS.values()} == {1.0}
    with pytest.raises(UserError, match="the int8_qat variant is not exported for a regression task"):
        COMPRESSED_VARIANTS["int8_qat"].tolerance("regression")


def test_options_are_checked_before_any_work():
    check_options(["float32"], 0, False)  # no int8: calibration samples do not matter
    with pytest.raises(UserError, match="int8 needs representative data"):
        check_options(["float32", "int8"], 0, False)
    with pytest.raises(UserError, match="--calibration-samples is -1"):
        check_options(["float32"], -1, False)
    with pytest.raises(UserError, match="--float-io applies to int8 only"):
        check_options(["float32", "float16"], 300, True)


def test_a_regression_variant_is_held_to_both_its_limits():
    """The mean difference and the R² drop each fail a variant alone: a bug that checked one would pass here."""
    from edge.parity import RegressionParity

    limits = VARIANTS["int8"].tolerance("regression")

    def parity(mean_diff: float, r2: float) -> RegressionParity:
        return RegressionParity(
            "int8", 10, ["y"], r2, 0.80, 1.0, 1.0, [mean_diff], [mean_diff], [1.0],
            limits.max_relative_error, limits.max_r2_drop,
        )  # fmt: skip

    assert parity(0.05, 0.79).within_tolerance
    assert not parity(0.05, 0.80 - limits.max_r2_drop - 0.01).within_tolerance  # R² drop alone
    assert not parity(limits.max_relative_error + 0.01, 0.80).within_tolerance  # mean difference alone
