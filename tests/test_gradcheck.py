"""Gradient checking: correct gradients pass at ~1e-8, the classic bugs are caught and located."""

from __future__ import annotations

import contextlib
import dataclasses
import math

import numpy as np
import pytest

from edge.device.errors import UserError
from recipes.config import TrainConfig
from recipes.data import load_dataset
from recipes.gradcheck import (
    GradCheckResult,
    TensorCheck,
    check_gradients,
    gradcheck_config,
    relative_error,
    verdict_for,
)
from recipes.models import DataSpec, build_model
from recipes.normalization import normalization_statistics

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

EXAMPLES = 16


@contextlib.contextmanager
def float64_policy():
    """Build float64 models inside; floatx and the dtype policy are restored after."""
    previous_floatx, previous_policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(previous_floatx)
        keras.config.set_dtype_policy(previous_policy)


@pytest.fixture(scope="module")
def digits_batch():
    """16 digits images (float64, raw) and their labels."""
    dataset = load_dataset("digits")
    order = np.random.default_rng(0).permutation(len(dataset.y))[:EXAMPLES]
    return dataset.x[order].astype(np.float64), dataset.y[order].astype(np.int64)


def float64_model(config: TrainConfig, x: np.ndarray, seed: int = 0):
    mean, variance = normalization_statistics(x)
    spec = DataSpec(tuple(x.shape[1:]), 10, mean, variance, num_train_examples=len(x))
    with float64_policy():
        keras.utils.set_random_seed(seed)
        return build_model(config, spec)


def tape_gradients(model, x, y, *, include_regularization: bool = True) -> list[np.ndarray]:
    """Autodiff gradients of the mean cross-entropy, with or without the regularization term."""
    with tf.GradientTape() as tape:
        probabilities = model(tf.constant(x), training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(tf.constant(y), probabilities))
        if include_regularization:
            for regularization in model.losses:
                loss = loss + regularization
    gradients = tape.gradient(loss, model.trainable_variables)
    return [gradient.numpy() for gradient in gradients]


# --- the formula and the bands ----------------------------------------------------------------


def test_relative_error_is_the_seeds_formula():
    # |(3,4) - (3,5)| = 1 ; |(3,4)| + |(3,5)| = 5 + sqrt(34).
    assert relative_error(np.array([3.0, 4.0]), np.array([3.0, 5.0])) == pytest.approx(
        1.0 / (5.0 + math.sqrt(34.0)), rel=1e-15
    )
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    # A gradient off by a factor 1.1 everywhere: 0.1 / 2.1 whatever its direction.
    gradient = np.random.default_rng(1).normal(size=50)
    assert relative_error(gradient, 1.1 * gradient) == pytest.approx(0.1 / 2.1, rel=1e-12)


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (1e-9, "good"),
        (9.9e-8, "good"),
        (1e-7, "suspicious"),
        (1e-5, "suspicious"),
        (9.9e-4, "suspicious"),
        (1e-3, "bug"),
        (0.5, "bug"),
        (float("nan"), "bug"),
    ],
)
def test_verdict_bands_follow_the_seeds_scale(error, verdict):
    assert verdict_for(error) == verdict


# --- correct gradients pass ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipe", "batch_norm", "tensor_count"),
    # mlp: 2 hidden dense + softmax = 6 tensors; BatchNorm swaps each hidden bias for gamma, beta.
    # cnn: 2 conv + 2 hidden dense + softmax = 10; with BatchNorm 4 hidden biases become 8.
    [("mlp", False, 6), ("mlp", True, 8), ("cnn", False, 10), ("cnn", True, 14)],
)
def test_gradcheck_config_passes_with_l2_on_digits(recipe, batch_norm, tensor_count):
    config = TrainConfig(recipe=recipe, l2=0.5, batch_norm=batch_norm, dropout=0.3)  # dropout gets turned off
    result = gradcheck_config(config, examples=EXAMPLES)

    assert isinstance(result, GradCheckResult)
    assert result.relative_error < 1e-6
    assert result.passed is True
    assert result.verdict == "good"
    assert result.epsilon == 1e-6 and result.threshold == 1e-5
    assert len(result.tensors) == tensor_count
    for tensor in result.tensors:
        assert tensor.checked == min(tensor.size, 20)
        assert tensor.relative_error < 1e-6
    assert keras.config.floatx() == "float32"


def test_float_policy_is_restored_after_gradcheck_config_even_on_error():
    gradcheck_config(TrainConfig(dropout=0.0, hidden_units=[8]), examples=4, samples_per_tensor=2)
    assert keras.config.floatx() == "float32"
    assert keras.config.dtype_policy().name == "float32"
    # iris is tabular: build_model refuses the cnn recipe after floatx was switched to float64.
    with pytest.raises(UserError, match="cnn recipe needs images"):
        gradcheck_config(TrainConfig(recipe="cnn", data="iris"), examples=4)
    assert keras.config.floatx() == "float32"
    assert keras.config.dtype_policy().name == "float32"
    # A model built afterwards is float32 again.
    assert keras.layers.Dense(2).dtype_policy.name == "float32"


# --- per-tensor results --------------------------------------------------------------------------


def test_every_trainable_variable_is_checked_on_min_size_samples(digits_batch):
    x, y = digits_batch
    model = float64_model(TrainConfig(dropout=0.0, hidden_units=[32, 16], l2=0.5, batch_norm=True), x)
    result = check_gradients(model, x, y, samples_per_tensor=20)

    variables = model.trainable_variables
    assert [tensor.name for tensor in result.tensors] == [variable.path for variable in variables]
    for tensor, variable in zip(result.tensors, variables, strict=True):
        assert isinstance(tensor, TensorCheck)
        assert tensor.size == int(np.prod(variable.shape))
        assert tensor.checked == min(tensor.size, 20)
        assert len(tensor.worst_index) == len(variable.shape)
        assert all(0 <= part < side for part, side in zip(tensor.worst_index, variable.shape, strict=True))
        assert 0 <= tensor.worst_difference < 1e-7
    # probabilities/bias has 10 coordinates: all of them are checked.
    assert [tensor.checked for tensor in result.tensors if tensor.name == "probabilities/bias"] == [10]
    assert result.relative_error < 1e-6 and result.passed


def test_samples_none_checks_every_coordinate_and_weights_are_restored_exactly(digits_batch):
    x, y = digits_batch
    model = float64_model(TrainConfig(dropout=0.0, hidden_units=[4], l2=0.5, batch_norm=True), x[:, :4, :4])
    before = [np.array(variable.numpy(), copy=True) for variable in model.variables]
    result = check_gradients(model, x[:, :4, :4], y, samples_per_tensor=None)

    assert [(tensor.checked, tensor.size) for tensor in result.tensors] == [
        (64, 64),
        (4, 4),
        (4, 4),
        (40, 40),
        (10, 10),  # kernel 16x4, gamma, beta, kernel 4x10, bias
    ]
    assert result.relative_error < 1e-6
    # Every variable, BatchNorm's moving statistics included, holds its exact original value.
    for variable, value in zip(model.variables, before, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)


def test_table_rows_put_the_worst_tensor_first(digits_batch):
    x, y = digits_batch
    model = float64_model(TrainConfig(dropout=0.0, hidden_units=[8], l2=0.5), x)

    def wrong_output_bias(model, x, y):
        gradients = tape_gradients(model, x, y)
        gradients[-1] = gradients[-1] + 0.05  # probabilities/bias
        return gradients

    result = check_gradients(model, x, y, analytic_gradients=wrong_output_bias)
    rows = result.to_table_rows()
    assert len(rows) == 4
    name, counts, error, worst = rows[0]
    assert (name, counts) == ("probabilities/bias", "10/10")
    assert float(error) > 0.1
    assert worst.startswith("[") and "|diff| 5.00e-02" in worst
    assert all(float(row[2]) < 1e-6 for row in rows[1:])


# --- wrong gradients fail ------------------------------------------------------------------------


def test_gradient_without_the_regularization_term_is_a_bug(digits_batch):
    x, y = digits_batch
    model = float64_model(TrainConfig(dropout=0.0, hidden_units=[32, 16], l2=5.0), x)

    def forgot_regularization(model, x, y):
        return tape_gradients(model, x, y, include_regularization=False)

    result = check_gradients(model, x, y, analytic_gradients=forgot_regularization)
    assert result.relative_error >= 1e-3
    assert result.passed is False
    assert result.verdict == "bug"
    by_name = {tensor.name: tensor for tensor in result.tensors}
    # L2 is on the kernels only: the kernels are wrong, the biases are still right.
    for name, tensor in by_name.items():
        if name.endswith("/kernel"):
            assert tensor.relative_error >= 1e-3, name
        else:
            assert tensor.relative_error < 1e-6, name
    assert result.to_table_rows()[0][0].endswith("/kernel")


def test_gradient_scaled_by_1_1_gives_0_1_over_2_1(digits_batch):
    x, y = digits_batch
    model = float64_model(TrainConfig(dropout=0.0, hidden_units=[32, 16], l2=0.5), x)

    def scaled(model, x, y):
        return [1.1 * gradient for gradient in tape_gradients(model, x, y)]

    result = check_gradients(model, x, y, analytic_gradients=scaled)
    assert result.relative_error == pytest.approx(0.1 / 2.1, rel=0.1)
    assert result.relative_error == pytest.approx(0.047619, rel=1e-4)
    assert result.verdict == "bug" and result.passed is False
    for tensor in result.tensors:
        assert tensor.relative_error == pytest.approx(0.1 / 2.1, rel=1e-4)


def test_threshold_decides_passed(digits_batch):
    x, y = digits_batch
    model = float64_model(TrainConfig(dropout=0.0, hidden_units=[8]), x)

    def slightly_off(model, x, y):
        return [(1 + 2e-5) * gradient for gradient in tape_gradients(model, x, y)]

    # relative error = 2e-5 / (2 + 2e-5) ~ 1e-5: suspicious; passes a 1e-4 threshold, not 1e-6.
    loose = check_gradients(model, x, y, threshold=1e-4, analytic_gradients=slightly_off)
    strict = check_gradients(model, x, y, threshold=1e-6, analytic_gradients=slightly_off)
    assert loose.relative_error == pytest.approx(1e-5, rel=1e-2)
    assert loose.verdict == strict.verdict == "suspicious"
    assert loose.passed is True and strict.passed is False


# --- refused models --------------------------------------------------------------------------------


def test_model_with_dropout_is_refused(digits_batch):
    x, y = digits_batch
    model = float64_model(TrainConfig(hidden_units=[8], dropout=0.3), x)
    with pytest.raises(ValueError, match="dropout"):
        check_gradients(model, x, y)


def test_dropout_with_rate_zero_is_accepted(digits_batch):
    x, y = digits_batch
    with float64_policy():
        inputs = keras.Input(shape=(8, 8, 1))
        hidden = keras.layers.Dense(4, activation="tanh")(keras.layers.Flatten()(inputs))
        outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Dropout(0.0)(hidden))
        model = keras.Model(inputs, outputs)
    assert check_gradients(model, x, y).relative_error < 1e-6


def test_float32_model_is_refused(digits_batch):
    x, y = digits_batch
    mean, variance = normalization_statistics(x)
    model = build_model(TrainConfig(dropout=0.0, hidden_units=[8]), DataSpec((8, 8, 1), 10, mean, variance, EXAMPLES))
    with pytest.raises(ValueError, match="float64"):
        check_gradients(model, x, y)


def test_wrong_number_of_analytic_gradients_is_refused(digits_batch):
    x, y = digits_batch
    model = float64_model(dataclasses.replace(TrainConfig(dropout=0.0), hidden_units=[8]), x)
    with pytest.raises(ValueError, match="returned 1 arrays for 4"):
        check_gradients(model, x, y, analytic_gradients=lambda model, x, y: [np.zeros(3)])
