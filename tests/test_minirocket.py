"""The minirocket recipe: MiniRocket's kernels and biases, and the Keras model that computes its features."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from edge.device.errors import UserError
from recipes.config import TrainConfig
from recipes.layers import DataSpec
from recipes.minirocket import (
    KERNEL_TAPS,
    RocketPlan,
    convolve,
    dilations_for,
    kernel_weights,
    pad_to,
    quantile_points,
    zscored,
)


def _series(examples: int = 12, steps: int = 60, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 6, steps)
    return (
        np.sin(t[None, :, None] * rng.uniform(1, 3, (examples, 1, channels)))
        + rng.normal(0, 0.1, (examples, steps, channels))
    ).astype(np.float32)


def _spec(x: np.ndarray, classes: int = 2) -> DataSpec:
    return DataSpec(x.shape[1:], classes, x.mean(axis=(0, 1)), x.var(axis=(0, 1)), len(x), examples=x)


def test_the_kernels_are_minirockets_84():
    weights = kernel_weights()
    assert weights.shape == (9, 84)
    assert Counter(weights.reshape(-1).tolist()) == {-1.0: 84 * 6, 2.0: 84 * 3}
    assert np.all(weights.sum(axis=0) == 0)
    columns = {tuple(np.flatnonzero(column == 2)) for column in weights.T}
    assert len(columns) == 84 and len(KERNEL_TAPS) == 84


def test_dilations_are_exponential_and_features_add_up():
    dilations, per_dilation = dilations_for(150, 1008)
    assert dilations[0] == 1 and dilations[-1] <= (150 - 1) // 8
    assert np.all(np.diff(dilations) > 0)
    assert int(per_dilation.sum()) * 84 == 1008


def test_biases_are_quantiles_of_a_training_examples_convolution():
    x = _series()
    spec = _spec(x)
    config = TrainConfig(recipe="minirocket", rocket_features=84 * 4)
    plan = RocketPlan(config, spec)
    rng = np.random.default_rng(config.seed)
    rng.uniform(size=len(plan.dilations) * 84)  # the channel draws come first (one per combination, univariate)
    z = zscored(x, spec)
    points = quantile_points(84 * int(plan.per_dilation.sum()))
    start = 0
    for index, dilation in enumerate(plan.dilations):
        count = int(plan.per_dilation[index])
        for kernel in range(84):
            example = pad_to(z[rng.integers(len(z))][np.newaxis], int(dilation))
            output = convolve(example, plan.kernel(index)[:, :, kernel : kernel + 1], int(dilation)).reshape(-1)
            expected = np.quantile(output, points[start : start + count])
            start += count
            np.testing.assert_allclose(plan.biases[index][kernel], expected, rtol=1e-6, atol=1e-9)


def test_the_keras_model_computes_the_numpy_features():
    import keras

    from recipes.minirocket import build_minirocket

    x = _series(steps=48)
    spec = _spec(x)
    config = TrainConfig(recipe="minirocket", rocket_features=168)
    model = build_minirocket(config, spec)
    plan = RocketPlan(config, spec)
    pooled = [layer.output for layer in model.layers if layer.name.startswith("rocket_")]
    ramps = keras.Model(model.input, pooled).predict(x[:4], verbose=0)
    features = np.concatenate([ramp.mean(axis=(1, 2)) for ramp in ramps], axis=1)
    np.testing.assert_allclose(features, plan.features(x[:4], spec), atol=1e-4)
    assert not any(layer.trainable_weights for layer in model.layers if layer.name.startswith("rocket_"))


def test_series_only_and_classification_only():
    from recipes.minirocket import build_minirocket

    with pytest.raises(UserError, match="series"):
        build_minirocket(TrainConfig(recipe="minirocket"), DataSpec((13,), 2))
    with pytest.raises(UserError, match="classifies"):
        build_minirocket(TrainConfig(recipe="minirocket"), DataSpec((40, 1), 1, task="regression"))


def test_a_model_of_many_groups_runs_on_tflite_micro():
    """TFLite Micro's CONCATENATION takes at most 10 inputs; 150 steps at 1,008 features make 20 groups."""
    from edge.convert import convert_model
    from edge.flatbuffer import read_model
    from edge.micro import measure_arena
    from edge.variants import VARIANTS
    from recipes.minirocket import MAX_CONCATENATED, build_minirocket

    x = _series(examples=8, steps=150)
    model = build_minirocket(TrainConfig(recipe="minirocket"), _spec(x))
    assert sum(layer.name.startswith("logits_") for layer in model.layers) > MAX_CONCATENATED
    rng = np.random.default_rng(0)
    for layer in model.layers:  # a trained head: the zeros it starts from give outputs of no range
        if layer.name.startswith("head_"):
            layer.set_weights([rng.normal(0, 0.1, w.shape).astype(np.float32) for w in layer.get_weights()])
    content = convert_model(model, VARIANTS["int8"], x)
    flat = read_model(content)
    graph = flat.Subgraphs(0)
    codes = [flat.OperatorCodes(index).BuiltinCode() for index in range(flat.OperatorCodesLength())]
    concatenations = [
        graph.Operators(index)
        for index in range(graph.OperatorsLength())
        if codes[graph.Operators(index).OpcodeIndex()] == 2  # BuiltinOperator.CONCATENATION
    ]
    assert concatenations and all(op.InputsLength() <= MAX_CONCATENATED for op in concatenations)
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_content=content).get_input_details()[0]
    scale, zero_point = details["quantization"]
    example = np.clip(np.round(x[:1] / scale + zero_point), -128, 127).astype(np.int8)
    assert measure_arena(content, example) is not None  # it allocates and runs
