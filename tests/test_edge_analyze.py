"""`python cli.py analyze`: per-operator MACs and bytes against hand formulas, totals against the model-level figures,
the report of an exported run, and one-line errors."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from edge.analyze import ARENA_AT_EXPORT, ARENA_MEASURED, CycleCosts, analyze_model, measure_model_arena
from edge.micro import micro_available
from edge.targets import TARGETS, estimate_latency_ms
from recipes.macs import count_macs, count_macs_by_kind
from recipes.runs import load_model
from tests.helpers import copy_run, error_line, snapshot

runner = CliRunner()
M4 = TARGETS["cortex-m4-120mhz"]
M4_COSTS = CycleCosts(M4.name, M4.clock_hz, *M4.cycles_per_kind)
BIAS = 4  # int32 bias of an int8 kernel
PER_CHANNEL = 4 + 8  # a float32 scale and an int64 zero point per channel


@pytest.fixture(scope="module")
def small():
    """A hand-built Conv2D (3x2 kernel) -> DepthwiseConv2D (3x3, stride 2, multiplier 2) -> global average pooling
    -> Dense model with random non-zero biases (a zero bias is left out by the converter), and its int8 bytes."""
    from edge.convert import convert_model
    from edge.variants import VARIANTS
    from recipes.backend import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 10, 3))
    x = keras.layers.Conv2D(8, (3, 2), activation="relu")(inputs)
    x = keras.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        layer.set_weights([rng.normal(0.0, 0.3, size=weight.shape) for weight in layer.get_weights()])
    calibration = rng.normal(size=(32, 12, 10, 3)).astype(np.float32)
    return model, convert_model(model, VARIANTS["int8"], calibration)


def test_macs_and_bytes_per_operator_follow_the_hand_formulas(small):
    model, content = small
    analysis = analyze_model(content, M4_COSTS)
    rows = {row.op: row for row in analysis.operators}
    assert [row.op for row in analysis.operators] == [
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "MEAN",
        "FULLY_CONNECTED",
        "SOFTMAX",
    ]
    conv, depthwise, mean, dense = (rows[op] for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED"))
    # conv: out_h x out_w x out_c x k_h x k_w x in_c; output (12-3+1) x (10-2+1) x 8
    assert conv.output_shape == [1, 10, 9, 8]
    assert conv.macs == 10 * 9 * 8 * 3 * 2 * 3
    assert conv.weight_bytes == 8 * 3 * 2 * 3 + 8 * BIAS
    assert conv.quantization_bytes == 2 * 8 * PER_CHANNEL  # per-channel kernel and bias
    assert (conv.input_bytes, conv.output_bytes) == (12 * 10 * 3, 10 * 9 * 8)
    # depthwise: out_h x out_w x out_c x k_h x k_w, out_c = 8 channels x multiplier 2
    assert depthwise.output_shape == [1, 4, 4, 16]
    assert depthwise.macs == 4 * 4 * 16 * 3 * 3
    assert depthwise.weight_bytes == 3 * 3 * 16 + 16 * BIAS
    assert (depthwise.input_bytes, depthwise.output_bytes) == (10 * 9 * 8, 4 * 4 * 16)
    # pooling does no MACs; its only constant is the int32 pair of axes
    assert (mean.macs, mean.weight_bytes, mean.cycles) == (0, 2 * 4, 0)
    # dense: out_features x in_features
    assert dense.macs == 5 * 16
    assert dense.weight_bytes == 5 * 16 + 5 * BIAS
    assert (dense.input_bytes, dense.output_bytes) == (16, 5)
    assert dense.cycles == pytest.approx(M4.cycles_per_kind[2] * 5 * 16)
    # live activations: the input and the convolution's output are alive together at the first operator
    assert conv.live_bytes == analysis.peak_activation_bytes == 12 * 10 * 3 + 10 * 9 * 8
    assert analysis.peak_operator == 0 and analysis.ram_bytes == analysis.peak_activation_bytes


def test_totals_equal_the_model_level_figures(small):
    model, content = small
    analysis = analyze_model(content, M4_COSTS)
    by_kind = count_macs_by_kind(model)
    assert analysis.macs == {
        "conv": by_kind.conv,
        "depthwise": by_kind.depthwise,
        "dense": by_kind.dense,
        "total": count_macs(model),
    }
    assert analysis.latency_ms == pytest.approx(estimate_latency_ms(by_kind, M4))
    assert analysis.flash_bytes == len(content)
    assert analysis.weight_bytes == sum(row.weight_bytes for row in analysis.operators) < len(content)
    data = analysis.to_dict()
    assert data["totals"]["ram_source"] == "peak_activations" and data["totals"]["arena_bytes"] is None
    assert json.loads(json.dumps(data)) == data


@pytest.mark.skipif(not micro_available(), reason="needs the tflite-micro package")
def test_the_measured_arena_holds_the_activations(small):
    _, content = small
    arena = measure_model_arena(content)
    assert arena is not None and arena % 16 == 0
    analysis = analyze_model(content, M4_COSTS).with_arena(arena, ARENA_MEASURED)
    assert arena > analysis.peak_activation_bytes  # TFLite Micro adds metadata and quantization data
    assert analysis.ram_bytes == arena
    assert [row.arena_share for row in analysis.operators] == [row.live_bytes / arena for row in analysis.operators]


def test_analyze_a_run(shared, tmp_path):
    run = copy_run(shared.run_dir, tmp_path / "run", with_edge=True)
    edge = run / "edge"
    report = json.loads((edge / "report.json").read_text())
    result = runner.invoke(cli.app, ["analyze", str(run)])
    assert result.exit_code == 0, result.output
    flash = (edge / "model_int8.tflite").stat().st_size
    assert "FULLY_CONNECTED" in result.output
    assert f"flash: {flash:,} bytes (model_int8.tflite)" in result.output
    written = json.loads((edge / "analysis.json").read_text())
    assert (edge / "plots" / "analysis.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"written: {edge / 'analysis.json'}, {edge / 'plots' / 'analysis.png'}" in result.output
    totals = written["totals"]
    keras_model = load_model(run)
    assert totals["flash_bytes"] == flash
    assert totals["macs"]["total"] == count_macs(keras_model) == totals["macs"]["dense"]
    arena = report["micro"]["arena_bytes"]
    if arena is not None:  # measured at export: the same figure, and it is the RAM
        assert totals["ram_bytes"] == totals["arena_bytes"] == arena
        assert totals["arena_source"] == ARENA_AT_EXPORT
        assert f"RAM: tensor arena {arena:,} bytes" in result.output
    # each fully connected operator: in_features x units of its Dense layer, weights int8 plus an int32 bias
    dense_layers = [layer for layer in keras_model.layers if type(layer).__name__ == "Dense"]
    fully_connected = [row for row in written["operators"] if row["op"] == "FULLY_CONNECTED"]
    assert [row["macs"] for row in fully_connected] == [
        int(layer.input.shape[-1]) * layer.units for layer in dense_layers
    ]
    assert [row["weight_bytes"] for row in fully_connected] == [
        int(layer.input.shape[-1]) * layer.units + BIAS * layer.units for layer in dense_layers
    ]
    as_json = runner.invoke(cli.app, ["analyze", str(run), "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == written
    other = runner.invoke(cli.app, ["analyze", str(run), "--variant", "float32", "--target", "cortex-m7-480mhz"])
    assert other.exit_code == 0, other.output
    float32 = json.loads((edge / "analysis_float32.json").read_text())
    assert float32["target"]["target"] == "cortex-m7-480mhz"
    assert float32["totals"]["macs"]["total"] == totals["macs"]["total"]
    assert float32["totals"]["flash_bytes"] == (edge / "model_float32.tflite").stat().st_size
    assert (edge / "plots" / "analysis_float32.png").is_file()


def test_analyze_a_bare_file_writes_nothing(shared, tmp_path):
    run = copy_run(shared.run_dir, tmp_path / "run", with_edge=True)
    before = snapshot(run)
    result = runner.invoke(cli.app, ["analyze", str(run / "edge" / "model_int8.tflite"), "--json"])
    assert result.exit_code == 0, result.output
    assert snapshot(run) == before
    totals = json.loads(result.stdout)["totals"]
    recorded = json.loads((run / "edge" / "report.json").read_text())["micro"]["arena_bytes"]
    if micro_available() and recorded is not None:  # measured on zeros here, on test examples at export
        assert (totals["arena_bytes"], totals["arena_source"]) == (recorded, ARENA_MEASURED)
    table = runner.invoke(cli.app, ["analyze", str(run / "edge" / "model_int8.tflite")])
    assert table.exit_code == 0 and "written:" not in table.output and "MACs:" in table.output


def test_bad_input_is_one_line(shared, tmp_path):
    unexported = copy_run(shared.run_dir, tmp_path / "unexported")
    exported = copy_run(shared.run_dir, tmp_path / "exported", with_edge=True)
    before = snapshot(exported)
    model = exported / "edge" / "model_int8.tflite"
    not_flatbuffer, truncated = tmp_path / "garbage.tflite", tmp_path / "truncated.tflite"
    not_flatbuffer.write_bytes(b"TFL3" * 10)
    truncated.write_bytes(model.read_bytes()[: model.stat().st_size // 3])
    cases = [
        ([str(tmp_path / "missing")], "does not exist"),
        ([str(unexported)], "has no edge/model_int8.tflite; export it first"),
        ([str(exported), "--variant", "int9"], "unknown variant 'int9'; did you mean 'int8'?"),
        ([str(exported), "--variant", "int8_qat"], "has no edge/model_int8_qat.tflite"),
        ([str(exported), "--target", "cortex-m4"], "unknown target 'cortex-m4'; did you mean 'cortex-m4-120mhz'?"),
        ([str(model), "--variant", "int8"], "is a file: drop --variant"),
        ([str(not_flatbuffer)], "damaged .tflite"),
        ([str(truncated)], "truncated.tflite is a damaged .tflite file"),
        ([str(tmp_path / "empty.tflite")], "does not exist"),
    ]
    for args, message in cases:
        assert message in error_line(runner.invoke(cli.app, ["analyze", *args])), args
    assert snapshot(exported) == before
    assert not (unexported / "edge").exists()
