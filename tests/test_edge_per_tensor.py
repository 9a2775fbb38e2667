"""Per-tensor weight quantization layer by layer: the rewrite's arithmetic, the choice, and the export's use of it."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from edge.convert import convert_model
from edge.device.model import EdgeModel
from edge.flatbuffer import read_model
from edge.micro import micro_available, micro_check
from edge.per_tensor import (
    QUANTIZATION_BYTES_PER_CHANNEL,
    make_per_tensor,
    narrow_quantization,
    output_error,
    per_channel_layers,
)
from edge.variants import VARIANTS
from recipes.backend import import_keras
from tests.helpers import copy_run

runner = CliRunner()


def small_model():
    """A 6x6x1 -> Conv2D(8) -> Dense(4) softmax model with seeded weights."""
    keras = import_keras(0)
    inputs = keras.Input((6, 6, 1))
    features = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    outputs = keras.layers.Dense(4, activation="softmax", name="dense")(keras.layers.Flatten()(features))
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    model.get_layer("conv").set_weights([rng.normal(0, 0.5, (3, 3, 1, 8)), rng.normal(0, 0.1, 8)])
    model.get_layer("dense").set_weights([rng.normal(0, 0.3, (128, 4)), rng.normal(0, 0.1, 4)])
    return model


@pytest.fixture(scope="module")
def converted():
    """(calibration inputs, int8 flatbuffer as the converter writes it)."""
    x = np.random.default_rng(1).normal(size=(200, 6, 6, 1)).astype(np.float32)
    return x, convert_model(small_model(), VARIANTS["int8"], x[:100])


def tensors(content):
    """name -> (int values, scales, zero points, quantized dimension) of every weight and bias tensor."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(read_model(content))
    found = {}
    for tensor in model.subgraphs[0].tensors:
        data = model.buffers[tensor.buffer].data
        if data is None or len(data) == 0 or tensor.quantization is None or tensor.quantization.scale is None:
            continue
        dtype = {schema.TensorType.INT8: np.int8, schema.TensorType.INT32: "<i4"}.get(tensor.type)
        if dtype is None:
            continue
        values = np.frombuffer(bytes(data), dtype=dtype).reshape(tuple(tensor.shape))
        q = tensor.quantization
        found[tensor.name.decode()] = (values, np.asarray(q.scale), np.asarray(q.zeroPoint), q.quantizedDimension)
    return found


def test_the_converter_writes_both_layers_per_channel(converted):
    _, content = converted
    layers = per_channel_layers(content)
    assert [(layer.kind, layer.channels) for layer in layers] == [("CONV_2D", 8), ("FULLY_CONNECTED", 4)]
    assert [layer.saving for layer in layers] == [7 * 12 * 2, 3 * 12 * 2]  # weights and bias: 7 and 3 spare pairs each


def test_per_tensor_weights_keep_their_values_within_half_a_step(converted):
    """Each weight's real value moves by at most half a new step (rounded to the nearest step); each bias's by at
    most half its new step; the file shrinks by the scales and zero points it no longer holds."""
    x, content = converted
    layers = per_channel_layers(content)
    rewritten = make_per_tensor(content, layers)
    before, after = tensors(content), tensors(rewritten)
    for layer in layers:
        for name in [layer.name]:
            values, scales, _, axis = before[name]
            new_values, new_scales, new_zero, _ = after[name]
            assert new_scales.shape == (1,) and new_zero.tolist() == [0]
            assert new_scales[0] == pytest.approx(scales.max())
            shape = [1] * values.ndim
            shape[axis] = len(scales)
            real = values * scales.reshape(shape)
            assert np.abs(new_values * new_scales[0] - real).max() <= new_scales[0] * (0.5 + 1e-6)
    saved = sum(layer.saving for layer in layers)
    assert len(rewritten) <= len(content) - saved + 64  # 64: alignment the packing may add or drop
    assert len(content) - len(rewritten) >= saved - 64
    original, narrowed = EdgeModel(content), EdgeModel(rewritten)
    assert np.abs(narrowed.predict(x) - original.predict(x)).mean() < 0.01


def test_biases_are_rescaled_to_the_new_weight_scale(converted):
    _, content = converted
    layer = per_channel_layers(content)[0]
    from ai_edge_litert import schema_py_generated as schema

    def bias_of(flatbuffer):
        model = schema.ModelT.InitFromObj(read_model(flatbuffer))
        tensor = model.subgraphs[0].tensors[layer.bias]
        values = np.frombuffer(bytes(model.buffers[tensor.buffer].data), dtype="<i4")
        return values * np.asarray(tensor.quantization.scale, dtype=np.float64), tensor.quantization.scale

    before, old_scales = bias_of(content)
    after, new_scales = bias_of(make_per_tensor(content, [layer]))
    assert len(old_scales) == 8 and len(new_scales) == 1
    assert new_scales[0] == pytest.approx(max(old_scales))  # input scale x the largest weight scale
    assert np.abs(after - before).max() <= new_scales[0] / 2 * (1 + 1e-6)  # moved by rounding only
    assert not np.array_equal(after, before)


@pytest.mark.skipif(not micro_available(), reason="tflite-micro is not installed")
def test_tflite_micro_runs_the_per_tensor_model_as_litert_does(converted):
    x, content = converted
    rewritten = make_per_tensor(content, per_channel_layers(content))
    check = micro_check(EdgeModel(rewritten), x[:50])
    assert check.measured, check.note
    # As for the converter's per-channel file (tests/test_edge_micro.py): the reference kernels round some
    # requantizations differently from XNNPACK, by a few output steps on a few examples.
    assert check.agreement == 1.0 and check.exact >= 0.9 and check.max_abs_diff <= 10 / 256


def penalised(penalties):
    """An error measure that adds ``penalties[kind]`` to 1.0 for each layer kind made per tensor."""

    def error(content):
        still = {layer.kind for layer in per_channel_layers(content)}
        return 1.0 + sum(penalty for kind, penalty in penalties.items() if kind not in still)

    return error


def test_a_layer_that_makes_the_model_less_faithful_stays_per_channel(converted):
    _, content = converted
    result = narrow_quantization(content, penalised({"CONV_2D": 0.5, "FULLY_CONNECTED": 0.05}), tolerance=0.1)
    assert [layer.kind for layer in result.per_tensor] == ["FULLY_CONNECTED"]
    assert [layer.kind for layer in result.per_channel] == ["CONV_2D"]
    assert (result.baseline_error, result.error) == (1.0, pytest.approx(1.05))
    assert [layer.kind for layer in per_channel_layers(result.content)] == ["CONV_2D"]  # the content is the choice
    assert result.to_dict()["bytes_saved"] == 3 * QUANTIZATION_BYTES_PER_CHANNEL * 2


def test_the_tolerance_holds_for_all_layers_together_most_bytes_first(converted):
    """Each layer alone costs 6%; both together 12% > 10%: only the convolution, which saves more, is chosen."""
    _, content = converted
    result = narrow_quantization(content, penalised({"CONV_2D": 0.06, "FULLY_CONNECTED": 0.06}), tolerance=0.1)
    assert [layer.kind for layer in result.per_tensor] == ["CONV_2D"]
    everything = narrow_quantization(content, penalised({"CONV_2D": 0.06, "FULLY_CONNECTED": 0.06}), tolerance=0.2)
    assert len(everything.per_tensor) == 2 and not everything.per_channel
    nothing = narrow_quantization(content, penalised({"CONV_2D": 0.2, "FULLY_CONNECTED": 0.2}), tolerance=0.1)
    assert nothing.per_tensor == [] and nothing.content == content


def test_output_error_weighs_columns_by_their_spread():
    reference = np.array([[0.0, 0.0], [2.0, 200.0], [4.0, 400.0]])  # stds 1.633 and 163.3
    outputs = reference + np.array([1.0, 100.0])
    assert output_error(reference, outputs) == pytest.approx(1 / np.std([0, 2, 4]))
    assert output_error(reference, reference) == 0.0
    flat = np.full((3, 1), 0.5)  # no spread: units of a thousandth of the largest value
    assert output_error(flat, flat + 0.0005) == pytest.approx(1.0)


def test_export_goes_per_tensor_where_it_holds_and_per_channel_on_request(shared, tmp_path):
    """The shared digits MLP: every dense layer per tensor, the file smaller than the per-channel export by the
    scales it drops, parity held; ``--per-channel`` gives the converter's file back."""
    result = next(result for result in shared.report.variants if result.name == "int8")
    chosen = result.quantization
    assert chosen is not None and len(chosen.per_tensor) == 3 and not chosen.fell_back
    report = json.loads((shared.edge_dir / "report.json").read_text())
    int8 = next(row for row in report["variants"] if row["name"] == "int8")
    assert int8["weight_quantization"]["per_tensor"] == [layer.name for layer in chosen.per_tensor]
    run = copy_run(shared.run_dir, tmp_path / "run")
    output = runner.invoke(cli.app, ["export", str(run), "--quantization", "int8", "--per-channel"])
    assert output.exit_code == 0, output.output
    assert "layers per tensor" not in output.output
    per_channel = (run / "edge" / "model_int8.tflite").stat().st_size
    assert per_channel - result.bytes >= chosen.to_dict()["bytes_saved"] - 64
    assert len(per_channel_layers((run / "edge" / "model_int8.tflite").read_bytes())) == 3
    assert result.parity.within_tolerance


def test_the_shipped_file_drops_constant_names_only(converted):
    from ai_edge_litert import schema_py_generated as schema

    _, content = converted
    result = narrow_quantization(content, penalised({}))
    model = schema.ModelT.InitFromObj(read_model(result.content))
    graph = model.subgraphs[0]
    constant = [tensor for tensor in graph.tensors if model.buffers[tensor.buffer].data is not None]
    constant = [tensor for tensor in constant if len(model.buffers[tensor.buffer].data)]
    assert constant and all(tensor.name == b"" for tensor in constant)
    others = [tensor for tensor in graph.tensors if tensor not in constant]
    assert others and all(tensor.name for tensor in others)  # activations, input and output keep theirs
    assert graph.tensors[graph.inputs[0]].name.startswith(b"serving_default")
    assert len(result.content) < len(make_per_tensor(content, per_channel_layers(content)))


def test_a_bias_buffer_shared_by_two_layers_is_split_before_it_is_rewritten():
    """The converter gives constants with equal bytes one buffer (zero biases of untrained layers, in practice).
    Here two dense layers are made to share one nonzero bias buffer and scales; rewriting the second layer must leave
    the first layer's bias bytes as they were and compute what the shared model computes."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    keras = import_keras(0)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(4, activation="relu", name="first")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4, name="second")(hidden))
    rng = np.random.default_rng(2)
    model.get_layer("first").set_weights([rng.normal(0, 0.5, (6, 4)) * [1, 2, 3, 4], rng.normal(0, 0.3, 4)])
    model.get_layer("second").set_weights([rng.normal(0, 0.5, (4, 4)) * [4, 3, 2, 1], rng.normal(0, 0.3, 4)])
    x = rng.normal(size=(100, 6)).astype(np.float32)
    parsed = schema.ModelT.InitFromObj(read_model(convert_model(model, VARIANTS["int8"], x)))
    graph = parsed.subgraphs[0]
    first, second = [operator.inputs[2] for operator in graph.operators if len(operator.inputs) > 2]
    graph.tensors[second].buffer = graph.tensors[first].buffer  # one buffer, as the converter shares equal bytes
    graph.tensors[second].quantization.scale = list(graph.tensors[first].quantization.scale)
    builder = flatbuffers.Builder(1024)
    builder.Finish(parsed.Pack(builder), file_identifier=b"TFL3")
    shared_content = bytes(builder.Output())
    layers = per_channel_layers(shared_content)
    assert [layer.bias for layer in layers] == [first, second]
    rewritten = make_per_tensor(shared_content, layers[1:])
    after = schema.ModelT.InitFromObj(read_model(rewritten))
    tensors = after.subgraphs[0].tensors
    assert tensors[first].buffer != tensors[second].buffer  # split
    assert bytes(after.buffers[tensors[first].buffer].data) == bytes(parsed.buffers[graph.tensors[first].buffer].data)
    step = EdgeModel(shared_content).output.scale
    assert np.abs(EdgeModel(rewritten).predict(x) - EdgeModel(shared_content).predict(x)).max() <= 4 * step
