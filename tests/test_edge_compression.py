"""Compression: the tf_keras twin, BatchNorm folding, pruning, QAT, their int8 exports, isolation, bad input.

Goals checked on the shared digits run (tests/conftest.py, mlp, 15 epochs, seed 0): the 50% pruned
int8 model within 1 point of the dense Keras model and at most 0.6x the dense int8 gzip size; QAT int8 not
below post-training int8 by more than 0.2 points; sparsity within 2 points of the target, read from the
exported weights. The twin and the fused (BatchNorm-folded) twin equal their source within 1e-5.
"""

import csv
import gzip
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from edge.compress import CompressionSettings, block_height, pruning_steps
from edge.device.errors import UserError
from edge.device.model import EdgeModel
from edge.export import export_run
from edge.fusion import fold_batch_norm, fuse_for_quantization
from edge.micro import c_identifier
from edge.twin import TWIN_TOLERANCE, build_twin, max_output_difference
from edge.weights import gzip_size, weight_sparsity
from recipes.config import TrainConfig, resolve_config
from recipes.data import load_dataset
from recipes.layers import DataSpec
from recipes.models import build_model
from recipes.runs import load_model
from recipes.training import train
from tests.helpers import copy_run, error_line, snapshot

pytestmark = pytest.mark.slow  # trains many models: left out of the quick subset (-m "not slow")

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def pruned(shared, tmp_path_factory):
    """The shared run exported with 50% pruning: int8 and int8_pruned."""
    run = copy_run(shared.run_dir, tmp_path_factory.mktemp("pruned") / "run")
    return run, export_run(run, ["int8"], compression=CompressionSettings(prune=0.5))


@pytest.fixture(scope="module")
def quantization_aware(shared, tmp_path_factory):
    """The shared run exported with QAT: int8 and int8_qat."""
    run = copy_run(shared.run_dir, tmp_path_factory.mktemp("qat") / "run")
    return run, export_run(run, ["int8"], compression=CompressionSettings(qat=True))


@pytest.fixture(scope="module")
def combined(shared, tmp_path_factory):
    """The shared run exported through the CLI with --prune 0.5 --qat: float32, int8 and int8_pruned_qat."""
    run = copy_run(shared.run_dir, tmp_path_factory.mktemp("combined") / "run")
    return run, runner.invoke(cli.app, ["export", str(run), "--prune", "0.5", "--qat"])


def _accuracy(path: Path, shared) -> float:
    return float(np.mean(EdgeModel.load(path).predict(shared.x_test).argmax(1) == shared.y_test))


def _fully_connected_weight_scales(path: Path) -> list[tuple[int, int]]:
    """(output units, weight scales) of every FULLY_CONNECTED weight tensor, read through LiteRT's interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    details = {detail["index"]: detail for detail in interpreter.get_tensor_details()}
    weights = [
        details[int(op["inputs"][1])] for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"
    ]
    return [(int(weight["shape"][0]), len(weight["quantization_parameters"]["scales"])) for weight in weights]


def _litert_weight_sparsity(path: Path) -> float:
    """Zero share of the FULLY_CONNECTED weights read through LiteRT's interpreter (independent of edge.weights)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    weights = [
        interpreter.get_tensor(int(op["inputs"][1]))
        for op in interpreter._get_ops_details()
        if op["op_name"] == "FULLY_CONNECTED"
    ]
    return sum(int(np.count_nonzero(w == 0)) for w in weights) / sum(w.size for w in weights)


# --- the twin and BatchNorm folding ---------------------------------------------------------------------------


def test_fold_batch_norm_matches_dense_then_batch_norm():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6))
    kernel, bias = rng.normal(size=(6, 4)), rng.normal(size=4)
    gamma, beta, mean = rng.normal(size=4), rng.normal(size=4), rng.normal(size=4)
    variance, epsilon = rng.uniform(0.1, 3, size=4), 1e-3
    expected = gamma * (x @ kernel + bias - mean) / np.sqrt(variance + epsilon) + beta
    folded_kernel, folded_bias = fold_batch_norm(kernel, bias, gamma, beta, mean, variance, epsilon)
    assert np.abs(x @ folded_kernel + folded_bias - expected).max() <= 1e-5
    no_bias_kernel, no_bias_bias = fold_batch_norm(kernel, None, None, None, mean, variance, epsilon)
    assert np.abs(x @ no_bias_kernel + no_bias_bias - (x @ kernel - mean) / np.sqrt(variance + epsilon)).max() <= 1e-5
    depthwise = rng.normal(size=(3, 3, 2, 2))  # output channel c = input * 2 + multiplier
    folded, _ = fold_batch_norm(depthwise, None, gamma, beta, mean, variance, epsilon, depthwise=True)
    scale = gamma / np.sqrt(variance + epsilon)
    assert np.allclose(folded[..., 1, 0], depthwise[..., 1, 0] * scale[2], atol=1e-6)


def _keras_model_with_batch_norm(recipe: str, x: np.ndarray):
    """A Keras 3 recipe model with BatchNorm whose weights and BatchNorm statistics are all non-trivial."""
    from recipes.backend import import_keras

    import_keras(0)
    config = replace(TrainConfig(), recipe=recipe, batch_norm=True, hidden_units=[32, 16], conv_filters=[8, 16])
    spec = DataSpec(x.shape[1:], 10, x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2)), len(x))
    model = build_model(config, spec)
    rng = np.random.default_rng(1)
    model.set_weights(
        [rng.uniform(0.5, 2.0, w.shape).astype(np.float32) if w.ndim == 1 else w for w in model.get_weights()]
    )  # gamma, beta, moving mean and variance far from 1, 0
    return model, config, spec


@pytest.mark.parametrize("recipe", ["mlp", "cnn"])
def test_twin_and_folded_twin_equal_the_keras_model_on_digits(recipe):
    x = load_dataset("digits").x[:400]
    model, config, spec = _keras_model_with_batch_norm(recipe, x)
    twin, difference = build_twin(model, config, spec, x)
    assert difference <= TWIN_TOLERANCE
    assert type(twin).__module__.startswith("tf_keras")
    assert [layer.name for layer in twin.layers] == [layer.name for layer in model.layers]
    assert [tuple(w.shape) for w in twin.get_weights()] == [tuple(w.shape) for w in model.get_weights()]
    fused = fuse_for_quantization(twin)
    kinds = [type(layer).__name__ for layer in fused.model.layers]
    assert "BatchNormalization" not in kinds and "Activation" not in kinds
    assert len(fused.folded_batch_norms) == len(fused.fused_relus) == (4 if recipe == "cnn" else 2)
    assert max_output_difference(twin, fused.model, x) <= TWIN_TOLERANCE
    assert max_output_difference(model, fused.model, x) <= TWIN_TOLERANCE


# --- settings and schedule --------------------------------------------------------------------------------------


def test_pruning_schedule_reaches_the_target_before_the_last_epoch():
    for steps_per_epoch, epochs in ((17, 20), (17, 1), (1, 1), (3, 2), (500, 5)):
        end, frequency = pruning_steps(steps_per_epoch, epochs)
        assert 1 <= frequency <= end <= max(1, (epochs - 1) * steps_per_epoch) or epochs == 1
        assert end % frequency == 0 and end <= steps_per_epoch * epochs
    assert block_height(64, 16) == 16 and block_height(4, 16) == 3 and block_height(1, 16) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prune": 1.0}, "--prune 1 is not a sparsity in [0, 1)"),
        ({"prune": -0.1}, "--prune -0.1 is not a sparsity in [0, 1)"),
        ({"prune": float("nan")}, "is not a sparsity in [0, 1)"),
        ({"prune": 0.5, "prune_epochs": 0}, "--prune-epochs must be at least 1"),
        ({"qat": True, "qat_learning_rate": 0.0}, "--qat-learning-rate must be > 0"),
        ({"prune_epochs": 5}, "--prune-epochs applies only with --prune"),
        ({"qat_epochs": 2}, "--qat-epochs applies only with --qat"),
        ({"prune_learning_rate": 0.01}, "--prune-learning-rate applies only with --prune"),
        ({"prune": 0.5, "prune_learning_rate": -1.0}, "--prune-learning-rate must be > 0"),
    ],
)
def test_settings_refuse_impossible_values(options, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        CompressionSettings.from_options(**options)
    assert CompressionSettings.from_options(prune=0.0).variant_name == "int8_pruned"
    assert CompressionSettings.from_options(prune=0.5, qat=True).variant_name == "int8_pruned_qat"


def _quantizer_ranges(model) -> dict[str, float]:
    """Every scalar min/max variable of a tfmot QAT model by name (without ':0')."""
    return {
        weight.name.split(":")[0]: float(weight.numpy())
        for weight in model.weights
        if weight.shape.rank == 0 and weight.name.split(":")[0].endswith(("_min", "_max"))
    }


def test_qat_activation_ranges_start_at_what_the_calibration_examples_span():
    from edge.tfmot_patches import calibrate_activation_ranges, import_tfmot

    tfmot = import_tfmot()
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(200, 5)).astype("float32")
    inputs = tf_keras.Input((5,))
    hidden = tf_keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(3, name="logits")(hidden))
    quantized = tfmot.quantization.keras.quantize_model(model)
    assert calibrate_activation_ranges(quantized, x, batch=64) == 3  # input, hidden, logits
    ranges = _quantizer_ranges(quantized)
    assert (ranges["quantize_layer/quantize_layer_min"], ranges["quantize_layer/quantize_layer_max"]) == (
        pytest.approx(float(x.min())),
        pytest.approx(float(x.max())),
    )
    hidden_values = np.asarray(tf_keras.Model(inputs, hidden)(x))
    logits = np.asarray(model(x))
    # Ranges are recorded through the fake-quantized layers before them, so they are near, not at, the float ones.
    assert ranges["quant_hidden/post_activation_min"] == 0.0
    assert ranges["quant_hidden/post_activation_max"] == pytest.approx(hidden_values.max(), rel=0.05)
    assert ranges["quant_logits/post_activation_min"] == pytest.approx(logits.min(), rel=0.05)
    assert ranges["quant_logits/post_activation_max"] == pytest.approx(logits.max(), rel=0.05)
    assert ranges["quant_hidden/kernel_min"] == -6.0  # weights are not touched

    # After fine-tuning only the input range is set again (augmented batches may have widened it).
    assert calibrate_activation_ranges(quantized, x[:10] / 10, kinds=("AllValuesQuantize",)) == 1
    again = _quantizer_ranges(quantized)
    assert again["quantize_layer/quantize_layer_max"] == pytest.approx(max(float(x[:10].max()) / 10, 0.0))
    assert {key: value for key, value in again.items() if not key.startswith("quantize_layer/")} == {
        key: value for key, value in ranges.items() if not key.startswith("quantize_layer/")
    }


def test_qat_dense_kernels_convert_onto_the_per_unit_grid_they_were_trained_on():
    from edge.convert import convert_model
    from edge.tfmot_patches import PerChannelDenseQuantizeConfig, import_tfmot
    from edge.variants import VARIANTS

    tfmot = import_tfmot()
    import tf_keras

    tf_keras.utils.set_random_seed(1)
    x = np.random.default_rng(1).normal(size=(100, 6)).astype("float32")
    inputs = tf_keras.Input((6,))
    hidden = tf_keras.layers.Dense(8, activation="relu")(inputs)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(3)(hidden))
    model.layers[1].kernel.assign(model.layers[1].kernel * np.linspace(0.01, 1.0, 8))  # units of unequal size
    config = PerChannelDenseQuantizeConfig
    quantization = tfmot.quantization.keras
    annotated = tf_keras.models.clone_model(
        model,
        clone_function=lambda layer: (
            quantization.quantize_annotate_layer(layer, config()) if type(layer).__name__ == "Dense" else layer
        ),
    )
    with quantization.quantize_scope({config.__name__: config}):
        quantized = quantization.quantize_apply(annotated)
    quantized(x, training=True)  # let the activation ranges see the data
    content = convert_model(quantized, VARIANTS["int8"], x[:50])

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    details = {detail["index"]: detail for detail in interpreter.get_tensor_details()}
    weights = [
        details[int(op["inputs"][1])] for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"
    ]
    kernels = [weight.numpy().astype(np.float64) for weight in quantized.weights if weight.name.endswith("kernel:0")]
    assert len(weights) == len(kernels) == 2
    for weight, kernel in zip(weights, kernels, strict=True):
        scales = weight["quantization_parameters"]["scales"]
        assert len(scales) == kernel.shape[1]  # one scale per output unit
        step = np.abs(kernel).max(axis=0) / 127
        trained = np.clip(np.round(kernel / step), -127, 127) * step  # what QAT's forward pass used
        exported = interpreter.get_tensor(weight["index"]).astype(np.float64) * scales[:, np.newaxis]
        # The same levels: off by float32 rounding, a thousandth of a step at most (a wrong level is off by one).
        assert (np.abs(exported - trained.T).max(axis=1) / step).max() <= 1e-3


# --- the goals on digits ------------------------------------------------------------------------------------------


def test_pruned_int8_is_accurate_sparse_and_compresses(shared, pruned):
    run, report = pruned
    edge = run / "edge"
    assert [variant.name for variant in report.variants] == ["int8", "int8_pruned"]
    keras_accuracy = float(np.mean(shared.keras_outputs.argmax(1) == shared.y_test))
    accuracy = _accuracy(edge / "model_int8_pruned.tflite", shared)
    assert 100 * (keras_accuracy - accuracy) <= 1.0  # within 1 point of the dense Keras model
    dense_gzip = len(gzip.compress((edge / "model_int8.tflite").read_bytes(), 9))
    pruned_gzip = len(gzip.compress((edge / "model_int8_pruned.tflite").read_bytes(), 9))
    assert pruned_gzip <= 0.6 * dense_gzip
    sparsity = _litert_weight_sparsity(edge / "model_int8_pruned.tflite")
    assert abs(sparsity - 0.5) <= 0.02
    results = {result.name: result for result in report.variants}
    assert results["int8_pruned"].sparsity == pytest.approx(sparsity)
    assert results["int8_pruned"].gzip_bytes == gzip_size((edge / "model_int8_pruned.tflite").read_bytes())
    assert results["int8"].sparsity < 0.02  # only weights that round to zero
    assert results["int8_pruned"].parity.accuracy == pytest.approx(accuracy)


def test_qat_int8_is_not_worse_than_post_training_int8(shared, quantization_aware):
    run, report = quantization_aware
    edge = run / "edge"
    post_training = _accuracy(edge / "model_int8.tflite", shared)
    assert 100 * (post_training - _accuracy(edge / "model_int8_qat.tflite", shared)) <= 0.2
    model = EdgeModel.load(edge / "model_int8_qat.tflite")
    assert (model.input.dtype, model.output.dtype) == ("int8", "int8")
    qat = next(result for result in report.variants if result.name == "int8_qat")
    assert "FULLY_CONNECTED" in qat.operators.counts and qat.operators.micro_int8_unsupported == []
    # QAT trains and exports the kernels the converter gives post-training int8: one scale per output unit. Export
    # keeps them so (the weights sit on that grid), while post-training int8 may go per tensor.
    scales = _fully_connected_weight_scales(edge / "model_int8_qat.tflite")
    assert len(scales) == 3 and all(units == count for units, count in scales)
    assert qat.quantization is None
    assert _fully_connected_weight_scales(edge / "model_int8.tflite") == [(units, 1) for units, _ in scales]
    assert report.compression.model.fused_relus and report.compression.model.twin_difference <= TWIN_TOLERANCE
    assert report.to_dict()["compression"]["twin_max_abs_diff"] == report.compression.model.twin_difference
    assert report.warnings == []


def test_cli_prune_and_qat_keeps_the_sparsity_and_reports_every_variant(shared, combined):
    run, result = combined
    assert result.exit_code == 0, result.output
    edge = run / "edge"
    for line in (
        "prune  1/20",
        "prune 20/20",
        "qat 3/3",
        "sparsity 50.",
        "int8_pruned_qat",
        "zero weights",
        "history in edge/int8_pruned_qat_history.csv",
    ):
        assert line in result.output
    assert abs(_litert_weight_sparsity(edge / "model_int8_pruned_qat.tflite") - 0.5) <= 0.02
    assert abs(weight_sparsity((edge / "model_int8_pruned_qat.tflite").read_bytes()) - 0.5) <= 0.02
    keras_accuracy = float(np.mean(shared.keras_outputs.argmax(1) == shared.y_test))
    assert 100 * (keras_accuracy - _accuracy(edge / "model_int8_pruned_qat.tflite", shared)) <= 1.0
    report = json.loads((edge / "report.json").read_text())
    assert [variant["name"] for variant in report["variants"]] == ["float32", "int8", "int8_pruned_qat"]
    for variant in report["variants"]:
        assert variant["gzip_bytes"] == gzip_size((edge / variant["file"]).read_bytes())
        assert 0.0 <= variant["sparsity"] < 1.0
    assert report["compression"]["settings"]["prune"] == 0.5 and report["compression"]["settings"]["qat"] is True
    with open(edge / "int8_pruned_qat_history.csv") as file:
        rows = list(csv.DictReader(file))
    assert [(row["stage"], int(row["epoch"])) for row in rows] == (
        [("prune", epoch) for epoch in range(1, 21)] + [("qat", epoch) for epoch in range(4)]
    )
    rates = [float(row["learning_rate"]) for row in rows if row["learning_rate"]]  # QAT's start row has none
    assert rates[0] == pytest.approx(3e-3) and rates[:20] == sorted(rates[:20], reverse=True)  # 3x the run's, cosine
    assert rates[20:] == [1e-4] * 3
    assert float(rows[19]["sparsity"]) == pytest.approx(0.5, abs=0.02) and rows[-1]["sparsity"] == ""
    # QAT ends with the weights of its lowest dev loss, the calibrated start (epoch 0) included.
    dev_losses = {int(row["epoch"]): float(row["dev_loss"]) for row in rows if row["stage"] == "qat"}
    assert report["compression"]["qat_kept_epoch"] == min(dev_losses, key=dev_losses.get)
    assert "qat: kept " in result.output
    # Like plain int8, the compressed variant is run on TFLite Micro and written out as a C array.
    micro = report["compression"]["micro"]
    assert report["compression"]["micro_files"] == ["model_int8_pruned_qat.h", "model_int8_pruned_qat.cc"]
    assert micro["measured"] is False or (micro["agreement"] >= 0.99 and micro["arena_bytes"] > 0)
    assert "micro (int8_pruned_qat): " in result.output
    header = (edge / "model_int8_pruned_qat.h").read_text()
    assert f"extern const unsigned char {c_identifier(run.name, 'model_int8_pruned_qat')}[];" in header
    size = (edge / "model_int8_pruned_qat.tflite").stat().st_size
    assert f"a TFLite flatbuffer of {size} bytes" in header
    manifest = json.loads((edge / "manifest.json").read_text())
    assert {
        "model_int8_pruned_qat.tflite",
        "int8_pruned_qat_history.csv",
        "model_int8_pruned_qat.h",
        "model_int8_pruned_qat.cc",
    } <= set(manifest["files"])
    assert manifest["variants"]["int8_pruned_qat"]["input"]["dtype"] == "int8"
    # Fine-tuned after the z-score layer, like plain int8: the runtime z-scores raw inputs in front of it.
    assert manifest["variants"]["int8_pruned_qat"]["standardization"] == manifest["variants"]["int8"]["standardization"]
    benchmark = runner.invoke(cli.app, ["benchmark", str(run), "--runs", "20", "--warmup", "2"])
    assert benchmark.exit_code == 0 and "int8_pruned_qat" in benchmark.output


# --- isolation ---------------------------------------------------------------------------------------------------


def test_compression_leaves_keras_3_and_the_environment_alone(shared, tmp_path):
    """tfmot sets TF_USE_LEGACY_KERAS=1 on import; after compressing, training still builds Keras 3 models."""
    run = copy_run(shared.run_dir, tmp_path / "run")
    script = textwrap.dedent(f"""
        import json, os, subprocess, sys
        from edge.compress import CompressionSettings
        from edge.export import export_run
        from recipes.config import resolve_config
        from recipes.runs import load_model
        from recipes.training import train
        export_run({str(run)!r}, ["int8"], compression=CompressionSettings(prune=0.5, prune_epochs=1, qat=True,
                                                                         qat_epochs=1))
        assert "tensorflow_model_optimization" in sys.modules
        import keras
        result = train(resolve_config(None, {{"epochs": 1, "out": {str(tmp_path / "out")!r}}}, ["hidden_units=8"]),
                       report=None)
        child = subprocess.run([sys.executable, "-c", "import os; print(os.environ.get('TF_USE_LEGACY_KERAS'))"],
                               capture_output=True, text=True).stdout.strip()
        print(json.dumps({{"variable": os.environ.get("TF_USE_LEGACY_KERAS"), "child": child,
                          "keras3": isinstance(result.model, keras.Model) and keras.__version__.startswith("3."),
                          "module": type(result.model).__module__,
                          "reloaded": isinstance(load_model(result.run_dir), keras.Model)}}))
    """)
    environment = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    environment["PYTHONPATH"] = str(ROOT)
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=environment, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    outcome = json.loads(completed.stdout.strip().splitlines()[-1])
    assert outcome == {"variable": None, "child": "None", "keras3": True, "module": outcome["module"], "reloaded": True}
    assert outcome["module"].startswith("keras.")
    # One epoch each is too short to stay within 1 point of Keras; then the variant is reported, not written.
    report = json.loads((run / "edge" / "report.json").read_text())
    assert any(entry["name"] == "int8_pruned_qat" for entry in report["variants"])
    assert (run / "edge" / "model_int8_pruned_qat.tflite").is_file() != ("int8_pruned_qat" in report["failing"])


# --- bad input ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--prune", "1.0"],
            "error: --prune 1 is not a sparsity in [0, 1); give the share of weights to set to zero, e.g. --prune 0.5",
        ),
        (["--prune", "-0.1"], "error: --prune -0.1 is not a sparsity in [0, 1)"),
        (["--qat-epochs", "2"], "error: --qat-epochs applies only with --qat; add e.g. --qat or drop --qat-epochs"),
        (["--prune", "0.5", "--calibration-samples", "0"], "error: int8 needs representative data"),
    ],
)
def test_bad_compression_options_leave_the_export_untouched(shared, tmp_path, options, message):
    run = copy_run(shared.run_dir, tmp_path / "run", with_edge=True)
    before = snapshot(run)
    assert error_line(runner.invoke(cli.app, ["export", str(run), *options])).startswith(message)
    assert snapshot(run) == before


def test_compressing_a_run_without_a_model_is_refused(shared, tmp_path):
    run = copy_run(shared.run_dir, tmp_path / "run")
    (run / "model.keras").unlink()
    line = error_line(runner.invoke(cli.app, ["export", str(run), "--prune", "0.5", "--qat"]))
    assert (
        line == f"error: {run} has no model.keras: it is not a finished train run; train again with "
        "'python cli.py train'"
    )
    assert sorted(path.name for path in run.iterdir() if "edge" in path.name) == []


def test_qat_names_the_layer_it_cannot_quantize(tmp_path):
    """elu is one of the recipes' activations; tfmot's 8-bit scheme has no quantized elu."""
    run = train(
        resolve_config(None, {"epochs": 1, "out": str(tmp_path)}, ["activation=elu", "hidden_units=16"]), report=None
    ).run_dir
    layer = next(layer.name for layer in load_model(run).layers if type(layer).__name__ == "Activation")
    line = error_line(runner.invoke(cli.app, ["export", str(run), "--qat"]))
    assert line == (
        f"error: QAT cannot quantize layer '{layer}' (Activation elu): tfmot's 8-bit scheme has no "
        "quantized form of it; export without --qat, or train with --set activation=relu"
    )
    assert sorted(path.name for path in run.iterdir() if "edge" in path.name) == []
    assert runner.invoke(cli.app, ["export", str(run), "--prune", "0.3", "--prune-epochs", "1"]).exit_code == 0


def test_an_untested_tfmot_version_is_refused_in_one_line(monkeypatch):
    import importlib.metadata

    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: "0.9.0" if name == "tensorflow-model-optimization" else real(name)
    )
    with pytest.raises(UserError, match=r"tensorflow-model-optimization 0\.9\.0 is installed, but compression"):
        from edge.tfmot_patches import import_tfmot  # a first import checks at once, before tfmot's private modules

        import_tfmot()


# --- canaries: each fails once tfmot changes what edge/tfmot_patches.py works around ------------------------------


def test_tfmot_still_has_no_config_for_normalization_and_quantizes_dense_kernels_per_tensor():
    from edge.tfmot_patches import import_tfmot

    import_tfmot()
    import tf_keras
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry,
    )

    registry = default_8bit_quantize_registry.Default8BitQuantizeRegistry()
    normalization = tf_keras.layers.Normalization(mean=0.0, variance=1.0)
    assert not registry.supports(normalization)  # hence ZscoreOutputQuantizeConfig
    dense = tf_keras.layers.Dense(4)
    dense.build((None, 3))
    assert registry.get_quantize_config(dense).weight_quantizer.per_axis is False  # hence PerChannelDense...


def test_tfmot_still_starts_activation_ranges_at_plus_minus_six():
    from edge.tfmot_patches import import_tfmot

    tfmot = import_tfmot()
    import tf_keras

    inputs = tf_keras.Input((3,))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(2, activation="relu", name="d")(inputs))
    ranges = _quantizer_ranges(tfmot.quantization.keras.quantize_model(model))
    assert (ranges["quant_d/post_activation_min"], ranges["quant_d/post_activation_max"]) == (-6.0, 6.0)
