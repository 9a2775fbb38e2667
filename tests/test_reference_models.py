"""MLPerf Tiny reference recipes: pinned parameter and MAC counts, the config's width/depth/shape,
the references' regularization and initialization, one epoch of training, int8 for TFLite Micro."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from edge.device.errors import UserError
from recipes.backend import import_keras
from recipes.catalog import describe_recipes
from recipes.config import TrainConfig, validate
from recipes.layers import DataSpec
from recipes.macs import count_macs
from recipes.models import build_model
from recipes.reference_models import REFERENCE_SPECS
from recipes.registry import REGISTRY
from recipes.training import train

pytestmark = pytest.mark.slow  # trains many models: left out of the quick subset (-m "not slow")

keras = import_keras(seed=0)

# Parameters at the reference input, BatchNorm's four per channel included (see the test's docstring).
REFERENCE_PARAMETERS = {"ds_cnn": 24_908, "mobilenet_v1": 221_794, "resnet8": 78_666, "autoencoder": 269_992}
REFERENCE_TFLITE_WEIGHTS = {"ds_cnn": 22_604, "mobilenet_v1": 210_850, "resnet8": 77_706, "autoencoder": 265_864}
# MACs per example from each architecture's layer shapes (hand formulas: output positions x kernel
# taps x input channels; depthwise without the input channels; dense inputs x units).
REFERENCE_MACS = {
    "ds_cnn": 25 * 5 * 64 * (10 * 4 * 1) + 4 * (25 * 5 * 64 * 9 + 25 * 5 * 64 * 64) + 64 * 12,
    "mobilenet_v1": 7_489_664,
    "resnet8": (
        32 * 32 * 16 * 27
        + 2 * 32 * 32 * 16 * 144
        + 16 * 16 * 32 * (144 + 288 + 16)
        + 8 * 8 * 64 * (288 + 576 + 32)
        + 64 * 10
    ),
    "autoencoder": 2 * (640 * 128 + 3 * 128 * 128 + 128 * 8),
}
# Small inputs for the training runs (the config takes the input shape from the data).
SMALL_SHAPES = {"ds_cnn": (49, 10, 1), "mobilenet_v1": (32, 32, 3), "resnet8": (16, 16, 3), "autoencoder": (640,)}


def _batch_norm_parameters(model) -> int:
    return sum(
        int(np.prod(weight.shape))
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for weight in layer.weights
    )


@pytest.mark.parametrize("recipe", sorted(REFERENCE_PARAMETERS))
def test_reference_parameter_and_mac_counts(recipe):
    """Each count equals the model the reference code (github.com/mlcommons/tiny, benchmark/training/)
    builds; without BatchNorm it equals the weights and biases (BN folded) of the reference's own
    published float .tflite, read from the file:

    - ds_cnn 24,908 (keyword_spotting/keras_model.py, 'ds_cnn'); kws_ref_model_float32.tflite holds
      22,604 = 24,908 - 2,304 BN. The 38.6k the issue quotes is not what this code builds (it looks
      like Hello Edge's DS-CNN-S figure); the reference's own export confirms 24,908.
    - mobilenet_v1 221,794 (visual_wake_words/vww_model.py; the issue quotes ~221k);
      vww_96_float.tflite holds 210,850 = 221,794 - 10,944 BN.
    - resnet8 78,666 (image_classification/keras_model.py with its original 16 filters; the issue
      quotes 78,666 total); pretrainedResnet.tflite holds 77,706 = 78,666 - 960 BN.
    - autoencoder 269,992 (anomaly_detection/keras_model.py at 640 inputs; the issue quotes 269,992
      total); ad01_fp32.tflite holds 265,864 = 269,992 - 4,128 BN.
    """
    model = build_model(TrainConfig(recipe=recipe), REFERENCE_SPECS[recipe])
    assert model.count_params() == REFERENCE_PARAMETERS[recipe]
    assert model.count_params() - _batch_norm_parameters(model) == REFERENCE_TFLITE_WEIGHTS[recipe]
    assert count_macs(model) == REFERENCE_MACS[recipe]


def test_mobilenet_macs_by_hand():
    alpha = 0.25
    first = 48 * 48 * 8 * 27  # 96x96x3 -> 48x48x8, stride 2
    blocks = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), *[(1, 512)] * 5, (2, 1024), (1, 1024))
    side, channels, total = 48, 8, first
    for stride, filters in blocks:
        side //= stride
        total += side * side * channels * 9 + side * side * channels * int(filters * alpha)
        channels = int(filters * alpha)
    assert total + 256 * 2 == REFERENCE_MACS["mobilenet_v1"]


def test_count_macs_matches_hand_formulas():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)  # 4*4*4 outputs x 27 taps
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(x)  # 4*4*8 outputs x 9 taps
    x = keras.layers.Conv2D(6, 1, groups=2)(x)  # 4*4*6 outputs x 1 tap x 4 channels per group
    x = keras.layers.MaxPooling2D()(x)  # ignored
    x = keras.layers.Reshape((4, 6))(x)
    x = keras.layers.Dense(5)(x)  # 4 positions x 6 inputs x 5 units
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)  # 20 x 3
    model = keras.Model(inputs, outputs)
    assert count_macs(model) == 4 * 4 * 4 * 27 + 4 * 4 * 8 * 9 + 4 * 4 * 6 * 4 + 4 * 6 * 5 + 20 * 3
    nested = keras.Sequential([keras.Input((8, 8, 3)), model])
    assert count_macs(nested) == count_macs(model)
    steps = keras.Input((20, 3))
    y = keras.layers.Conv1D(8, 5, strides=2, padding="same")(steps)  # 10 steps x 8 filters x 5 taps x 3 channels
    y = keras.layers.GlobalAveragePooling1D()(y)  # ignored
    assert count_macs(keras.Model(steps, keras.layers.Dense(2)(y))) == 10 * 8 * 5 * 3 + 8 * 2


def test_catalog_lists_every_recipe_with_parameters_and_macs():
    result = CliRunner().invoke(cli.app, ["recipes", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert list(rows) == list(REGISTRY)
    for recipe, parameters in REFERENCE_PARAMETERS.items():
        assert rows[recipe]["parameters"] == parameters and rows[recipe]["macs"] == REFERENCE_MACS[recipe]
        assert tuple(rows[recipe]["input_shape"]) == REFERENCE_SPECS[recipe].input_shape
    assert rows["mlp"]["macs"] == 64 * 256 + 256 * 128 + 128 * 10
    on_digits = {row["name"]: row for row in describe_recipes("digits")}
    assert on_digits["ds_cnn"]["input_shape"] == [8, 8, 1] and on_digits["ds_cnn"]["data"] == "digits"


def _layers(model, kind: str) -> list:
    return [layer for layer in model.layers if type(layer).__name__ == kind]


def test_width_depth_and_input_shape_vary():
    ds_cnn = build_model(TrainConfig(recipe="ds_cnn", width_multiplier=0.5, blocks=2), DataSpec((25, 13, 1), 5))
    assert [layer.filters for layer in _layers(ds_cnn, "Conv2D")] == [32, 32, 32]
    assert ds_cnn.output.shape[-1] == 5
    mobilenet = build_model(TrainConfig(recipe="mobilenet_v1", blocks=7), DataSpec((64, 48, 3), 2))
    assert len(_layers(mobilenet, "DepthwiseConv2D")) == 7 and _layers(mobilenet, "Conv2D")[-1].filters == 128
    wide = build_model(TrainConfig(recipe="mobilenet_v1", width_multiplier=4), DataSpec((32, 32, 3), 2))
    assert _layers(wide, "Conv2D")[0].filters == 32  # alpha 1: MobileNetV1's own 32 first filters
    resnet = build_model(TrainConfig(recipe="resnet8", width_multiplier=0.5, blocks=2), DataSpec((20, 20, 3), 4))
    assert [layer.filters for layer in _layers(resnet, "Conv2D")] == [8, 8, 8, 16, 16, 16]
    autoencoder = build_model(
        TrainConfig(recipe="autoencoder", blocks=2, bottleneck_units=4, width_multiplier=0.25), DataSpec((6, 5), 2)
    )
    assert [layer.units for layer in _layers(autoencoder, "Dense")] == [32, 32, 4, 32, 32, 30]
    assert autoencoder.output.shape[1:] == (1,)


def test_references_refuse_what_they_cannot_build():
    with pytest.raises(UserError, match="needs inputs shaped .height, width, channels.* use --recipe mlp"):
        build_model(TrainConfig(recipe="ds_cnn"), DataSpec((13,), 3))
    with pytest.raises(UserError, match="at most 13 .*blocks=14"):
        build_model(TrainConfig(recipe="mobilenet_v1", blocks=14), DataSpec((32, 32, 3), 2))
    for overrides, message in (
        ({"width_multiplier": 0.0}, "width_multiplier must be > 0"),
        ({"blocks": 0}, "blocks must be at least 1"),
        ({"bottleneck_units": 0}, "bottleneck_units must be at least 1"),
        ({"weight_decay": -1e-4}, "weight_decay must be >= 0"),
        ({"batch_norm_momentum": 1.0}, r"batch_norm_momentum must be in \[0, 1\)"),
        ({"recipe": "ds_cnn", "dropout": 0.5}, "ds_cnn drops 2 x dropout"),
    ):
        with pytest.raises(UserError, match=message):
            validate(TrainConfig(**overrides))


def test_reference_weight_decay_is_on_convolution_kernels_only():
    model = build_model(TrainConfig(recipe="ds_cnn"), DataSpec((49, 10, 1), 12, num_train_examples=100))
    model(np.zeros((1, 49, 10, 1), np.float32))
    convolutions = _layers(model, "Conv2D")
    expected = sum(1e-4 * float(np.sum(np.square(layer.kernel.numpy()))) for layer in convolutions)
    assert len(model.losses) == len(convolutions) == 5  # not the depthwise kernels, not the classifier
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)
    undecayed = build_model(TrainConfig(recipe="resnet8", weight_decay=0.0), DataSpec((16, 16, 3), 10))
    assert not undecayed.losses
    assert not build_model(TrainConfig(recipe="autoencoder"), DataSpec((640,), 2)).losses


def test_reference_initializers():
    resnet = build_model(TrainConfig(recipe="resnet8"), REFERENCE_SPECS["resnet8"])
    kernel = _layers(resnet, "Conv2D")[-2].kernel.numpy()  # 3x3x64x64, He: Var 2 / fan_in
    assert kernel.var() == pytest.approx(2 / (9 * 64), rel=0.1)
    ds_cnn = build_model(TrainConfig(recipe="ds_cnn"), REFERENCE_SPECS["ds_cnn"])
    pointwise = _layers(ds_cnn, "Conv2D")[1].kernel.numpy()  # 1x1x64x64, glorot uniform: Var 2 / (in + out)
    assert pointwise.var() == pytest.approx(2 / 128, rel=0.1)
    assert pointwise.max() <= np.sqrt(6 / 128)


def test_batch_norm_sits_between_linear_layer_and_activation():
    model = build_model(TrainConfig(recipe="resnet8", blocks=1), DataSpec((8, 8, 3), 2))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds[:9] == [
        "InputLayer",
        "Normalization",
        "Conv2D",
        "BatchNormalization",
        "Activation",
        "Conv2D",
        "BatchNormalization",
        "Activation",
        "Conv2D",
    ]


@pytest.mark.parametrize("recipe", sorted(REFERENCE_PARAMETERS))
def test_tf_keras_twin_has_the_same_parameters(recipe):
    import tf_keras

    spec = DataSpec(SMALL_SHAPES[recipe], 3)
    config = TrainConfig(recipe=recipe)
    twin = build_model(config, spec, keras_module=tf_keras)
    assert twin.count_params() == build_model(config, spec).count_params()


@pytest.mark.parametrize("recipe", sorted(REFERENCE_PARAMETERS))
def test_one_epoch_then_int8_for_tflite_micro(recipe, tmp_path):
    """Through the real export path (``python cli.py export RUN --quantization int8``): every operator of the
    int8 file has a TFLite Micro int8 kernel and, with the micro extra installed, TFLite Micro runs it."""
    from edge.device.model import EdgeModel
    from edge.export import export_run
    from edge.micro import micro_available

    generator = np.random.default_rng(0)
    x = generator.normal(size=(40, *SMALL_SHAPES[recipe])).astype(np.float32)
    y = np.arange(40) % 2
    np.savez(tmp_path / "small.npz", x=x, y=y)
    config = TrainConfig(recipe=recipe, data=str(tmp_path / "small.npz"), epochs=1, batch_size=16, out=str(tmp_path))
    result = train(config, report=None)
    assert result.epochs_run == 1 and (result.run_dir / "model.keras").is_file()
    # One epoch on noise: parity is not the point here (an anomaly score of noise may miss int8's AUC tolerance),
    # so the variant is written even outside its tolerance.
    report = export_run(result.run_dir, ["int8"], keep_failing=True)
    (int8,) = report.variants
    assert int8.operators.micro_int8_unsupported == [], int8.operators.counts
    assert report.micro.measured == micro_available(), report.micro.note
    outputs = EdgeModel.load(result.run_dir / "edge" / "model_int8.tflite").predict(x[:4])
    assert outputs.shape == ((4, 1) if recipe == "autoencoder" else (4, 2))
