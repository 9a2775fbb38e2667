"""Builders: the seed's initializers, regularization term, inverted dropout, BatchNorm placement."""

import numpy as np
import pytest

from recipes.backend import import_keras
from recipes.config import TrainConfig
from recipes.models import DataSpec, build_model, initializer_for, kernel_regularizer
from recipes.normalization import normalization_statistics

keras = import_keras(seed=0)

SPEC = DataSpec(input_shape=(8, 8, 1), num_classes=10, num_train_examples=1000)


@pytest.mark.parametrize(("activation", "expected_scale"), [("relu", 2.0), ("tanh", 1.0), ("sigmoid", 1.0)])
def test_auto_initializer_variance(activation, expected_scale):
    fan_in, fan_out = 400, 300
    kernel = np.asarray(initializer_for(TrainConfig(activation=activation), activation)((fan_in, fan_out)))
    assert kernel.var() == pytest.approx(expected_scale / fan_in, rel=0.10)
    assert abs(kernel.mean()) < 0.01


def test_named_initializer_wins():
    kernel = np.asarray(initializer_for(TrainConfig(initializer="xavier"), "relu")((500, 500)))
    assert kernel.var() == pytest.approx(1 / 500, rel=0.10)


def test_model_kernels_follow_activation():
    model = build_model(TrainConfig(hidden_units=[512, 256], activation="relu"), DataSpec((784,), 10))
    first, second = (layer for layer in model.layers if isinstance(layer, keras.layers.Dense) and layer.units != 10)
    assert np.var(first.kernel.numpy()) == pytest.approx(2 / 784, rel=0.10)
    assert np.var(second.kernel.numpy()) == pytest.approx(2 / 512, rel=0.10)
    tanh_model = build_model(TrainConfig(hidden_units=[512], activation="tanh"), DataSpec((784,), 10))
    dense = next(layer for layer in tanh_model.layers if isinstance(layer, keras.layers.Dense))
    assert np.var(dense.kernel.numpy()) == pytest.approx(1 / 784, rel=0.10)


def test_regularization_term_equals_seed_formula():
    m = 1000
    config = TrainConfig(hidden_units=[16, 8], l2=0.7, l1=0.3)
    model = build_model(config, DataSpec((8, 8, 1), 10, num_train_examples=m))
    model(np.zeros((1, 8, 8, 1), np.float32))
    kernels = [
        layer.kernel.numpy().astype(np.float64) for layer in model.layers if isinstance(layer, keras.layers.Dense)
    ]
    expected = 0.7 / (2 * m) * sum((k**2).sum() for k in kernels) + 0.3 / (2 * m) * sum(
        np.abs(k).sum() for k in kernels
    )
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)
    assert kernel_regularizer(TrainConfig(), SPEC) is None


def test_regularization_is_added_to_the_loss():
    config = TrainConfig(hidden_units=[16], l2=50.0)
    model = build_model(config, DataSpec((4,), 3, num_train_examples=10))
    model.compile(loss="sparse_categorical_crossentropy")
    x, y = (
        np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32),
        np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0]),
    )
    data_loss = keras.losses.sparse_categorical_crossentropy(y, model(x)).numpy().mean()
    assert model.evaluate(x, y, verbose=0) == pytest.approx(data_loss + float(sum(model.losses)), rel=1e-5)


def test_inverted_dropout_keeps_mean_and_is_identity_at_inference():
    model = build_model(TrainConfig(hidden_units=[32], dropout=0.4), DataSpec((8,), 3))
    layer = next(layer for layer in model.layers if isinstance(layer, keras.layers.Dropout))
    x = np.ones((2000, 100), np.float32)
    trained = np.asarray(layer(x, training=True))
    kept_value = np.unique(trained)
    assert kept_value[0] == 0.0 and kept_value[1] == pytest.approx(1 / 0.6) and len(kept_value) == 2
    assert trained.mean() == pytest.approx(1.0, abs=0.01)
    assert (trained == 0).mean() == pytest.approx(0.4, abs=0.01)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    sample = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    np.testing.assert_array_equal(model(sample, training=False), model(sample, training=False))


def test_batchnorm_sits_between_linear_layer_and_activation():
    model = build_model(TrainConfig(recipe="cnn", batch_norm=True, conv_filters=[8], hidden_units=[16]), SPEC)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "InputLayer",
        "Normalization",
        "Conv2D",
        "BatchNormalization",
        "Activation",
        "MaxPooling2D",
        "Flatten",
        "Dense",
        "BatchNormalization",
        "Activation",
        "Dropout",
        "Dense",
    ]
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and layer.name != "probabilities":
            assert layer.use_bias is False


def test_zscore_layer_uses_training_statistics():
    rng = np.random.default_rng(0)
    x_train = rng.normal(5.0, 3.0, size=(500, 4)).astype(np.float32)
    x_train[:, 3] = 2.0  # constant feature: centred, not blown up
    mean, variance = normalization_statistics(x_train)
    np.testing.assert_allclose(mean, x_train.mean(axis=0), rtol=1e-5)
    assert variance[3] == 1.0
    model = build_model(TrainConfig(hidden_units=[4]), DataSpec((4,), 2, mean, variance))
    zscore = keras.Model(model.inputs[0], model.get_layer("zscore").output)
    normalized = np.asarray(zscore(x_train))
    np.testing.assert_allclose(normalized[:, :3].mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(normalized[:, :3].std(axis=0), 1, atol=1e-3)
    np.testing.assert_allclose(np.asarray(zscore(np.full((1, 4), 3.0, np.float32)))[0, 3], 1.0, rtol=1e-6)


def test_image_statistics_are_per_channel():
    x = np.random.default_rng(0).normal(size=(50, 8, 8, 3)).astype(np.float32) + np.array([0, 10, 20], np.float32)
    mean, variance = normalization_statistics(x)
    assert mean.shape == (3,)
    np.testing.assert_allclose(mean, [0, 10, 20], atol=0.1)


def test_cnn_refuses_tabular_and_too_small_inputs():
    from edge.device.errors import UserError

    with pytest.raises(UserError, match="use --recipe mlp"):
        build_model(TrainConfig(recipe="cnn"), DataSpec((13,), 3))
    with pytest.raises(UserError, match="too small"):
        build_model(TrainConfig(recipe="cnn", conv_filters=[8, 8, 8, 8]), SPEC)
