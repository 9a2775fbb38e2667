"""The device runtime: no TensorFlow, the same labels as Keras, and clear errors for bad input."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import cli
from edge.device.errors import UserError
from edge.device.inputs import read_inputs
from edge.device.model import EdgeModel
from edge.device.predictions import prediction_report, top_k
from tests.helpers import error_line

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("tensorflow", "keras", "tf_keras", "tensorflow_model_optimization")
runner = CliRunner()


@pytest.fixture(scope="module")
def samples_csv(shared, tmp_path_factory):
    """The raw test examples, one per row, with a header, as a user would write them."""
    path = tmp_path_factory.mktemp("inputs") / "samples.csv"
    flat = shared.x_test.reshape(len(shared.x_test), -1)
    header = ",".join(f"pixel_{i}" for i in range(flat.shape[1]))
    np.savetxt(path, flat, delimiter=",", fmt="%g", header=header, comments="")
    return path


@pytest.mark.parametrize("variant", ["int8", "float32"])
def test_predict_cli_gives_the_keras_labels(shared, samples_csv, variant):
    result = runner.invoke(
        cli.app,
        [
            "predict",
            str(shared.edge_dir / f"model_{variant}.tflite"),
            "--input",
            str(samples_csv),
            "--top-k",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.output)
    assert len(predictions) == len(shared.y_test)
    labels = [prediction["top"][0]["label"] for prediction in predictions]
    agreement = np.mean(np.array(labels) == np.array(shared.keras_labels))
    assert agreement == 1.0 if variant == "float32" else agreement >= 0.99
    assert all(len(prediction["top"]) == 2 for prediction in predictions)
    assert all(p["top"][0]["score"] >= p["top"][1]["score"] for p in predictions)


def test_predict_cli_prints_top_k_lines(shared, samples_csv):
    result = runner.invoke(
        cli.app, ["predict", str(shared.edge_dir / "model_int8.tflite"), "--input", str(samples_csv), "--top-k", "3"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.rstrip("\n").splitlines()
    assert len(lines) == len(shared.y_test)
    assert lines[0].startswith(f"   0: {shared.keras_labels[0]} (")
    assert lines[0].count("(") == 3


def test_runtime_and_predict_import_no_tensorflow(shared, samples_csv):
    code = f"""
import json, sys
from typer.testing import CliRunner
import cli
from edge.device.model import EdgeModel
model = EdgeModel.load({str(shared.edge_dir / "model_int8.tflite")!r})
probabilities = model.predict(model.as_batch([[0.0] * 64]))
result = CliRunner().invoke(cli.app, ["predict", {str(shared.edge_dir / "model_int8.tflite")!r},
                                      "--input", {str(samples_csv)!r}, "--json"])
assert result.exit_code == 0, result.output
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN!r})))
"""
    finished = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(finished.stdout.strip().splitlines()[-1]) == []


def test_inputs_of_each_kind(shared, tmp_path):
    model = EdgeModel.load(shared.edge_dir / "model_float32.tflite")
    np.save(tmp_path / "batch.npy", shared.x_test[:4, ..., 0].astype(np.int64))  # (n, 8, 8), integers
    assert read_inputs(tmp_path / "batch.npy", model).shape == (4, 8, 8, 1)
    np.save(tmp_path / "one.npy", shared.x_test[0])
    assert read_inputs(tmp_path / "one.npy", model).shape == (1, 8, 8, 1)
    Image.fromarray(shared.x_test[0, ..., 0].astype(np.uint8), mode="L").resize((16, 16)).save(tmp_path / "a.png")
    assert read_inputs(tmp_path / "a.png", model).shape == (1, 8, 8, 1)
    assert model.class_names == [str(digit) for digit in range(10)]  # from the manifest beside the model


def test_quantization_round_trip(shared):
    model = EdgeModel.load(shared.edge_dir / "model_int8.tflite")
    raw = np.array([[0.0, 16.0, 8.0] + [0.0] * 61], np.float32)
    quantized = model.quantize(model.as_batch(raw))
    assert quantized.dtype == np.int8
    restored = (quantized.astype(np.float32) - model.input.zero_point) * model.input.scale
    # int8 takes z-scores: the runtime standardizes with the manifest's statistics, then quantizes.
    zscores = model.standardization.apply(raw)
    assert np.abs(restored.reshape(-1)[:3] - zscores[0, :3]).max() <= model.input.scale / 2 + 1e-6
    assert zscores[0, 1] > 1.5 and zscores[0, 0] < -0.5  # 16 and 0 on the digits' 0-16 pixel scale
    assert model.dequantize(np.array([[-128, 127]], np.int8)).tolist() == [[0.0, pytest.approx(255 / 256)]]


def test_top_k_orders_scores():
    predictions = top_k(np.array([[0.1, 0.7, 0.2]]), ["a", "b", "c"], 5)
    assert predictions[0].labels == ["b", "c", "a"] and predictions[0].scores == pytest.approx([0.7, 0.2, 0.1])
    with pytest.raises(UserError, match="--top-k is 0"):
        top_k(np.array([[1.0]]), ["a"], 0)


def test_wrong_shape_dtype_and_values_are_one_line_errors(shared, tmp_path):
    model_path = str(shared.edge_dir / "model_int8.tflite")
    np.save(tmp_path / "short.npy", np.zeros((3, 63), np.float32))
    assert "input has shape (3, 63)" in error_line(
        runner.invoke(cli.app, ["predict", model_path, "--input", str(tmp_path / "short.npy")])
    )
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    assert "input has dtype <U1" in error_line(
        runner.invoke(cli.app, ["predict", model_path, "--input", str(tmp_path / "text.npy")])
    )
    (tmp_path / "bad.csv").write_text("1,2,3\n4,x,6\n")
    assert "not a number" in error_line(
        runner.invoke(cli.app, ["predict", model_path, "--input", str(tmp_path / "bad.csv")])
    )
    np.save(tmp_path / "nan.npy", np.full((1, 64), np.nan, np.float32))
    assert "NaN" in error_line(runner.invoke(cli.app, ["predict", model_path, "--input", str(tmp_path / "nan.npy")]))
    (tmp_path / "x.txt").write_text("1")
    assert "suffix '.txt'" in error_line(
        runner.invoke(cli.app, ["predict", model_path, "--input", str(tmp_path / "x.txt")])
    )


def test_a_model_that_differs_from_its_manifest_is_refused(shared, tmp_path, samples_csv):
    shutil.copy(shared.edge_dir / "manifest.json", tmp_path / "manifest.json")
    shutil.copy(shared.edge_dir / "model_float32.tflite", tmp_path / "model_int8.tflite")  # wrong file, right name
    line = error_line(
        runner.invoke(cli.app, ["predict", str(tmp_path / "model_int8.tflite"), "--input", str(samples_csv)])
    )
    assert "sha256 differs" in line


def test_bad_model_and_bad_input_exit_2_in_a_real_process(shared, tmp_path, samples_csv):
    """Also what native libraries print: only the error line may reach the terminal."""
    corrupt = tmp_path / "model.tflite"
    corrupt.write_bytes((shared.edge_dir / "model_int8.tflite").read_bytes()[:1000])
    np.save(tmp_path / "short.npy", np.zeros((2, 10), np.float32))
    cases = [
        (
            [str(corrupt), "--input", str(samples_csv)],
            f"error: {corrupt} is not a valid .tflite model (The model is not a valid Flatbuffer buffer); the file "
            "is damaged or uses an operator or version this LiteRT cannot run: convert it again with a current "
            "TensorFlow",
        ),
        (
            [str(shared.edge_dir / "model_int8.tflite"), "--input", str(tmp_path / "short.npy")],
            f"error: input has shape (2, 10); {shared.edge_dir / 'model_int8.tflite'} takes examples of shape "
            "(8, 8, 1) (64 values): give (n, 8, 8, 1), (n, 64) or one example",
        ),
    ]
    for arguments, expected in cases:
        finished = subprocess.run(
            [sys.executable, "cli.py", "predict", *arguments], cwd=ROOT, capture_output=True, text=True
        )
        assert (finished.returncode, finished.stdout, finished.stderr.strip().splitlines()) == (2, "", [expected])


def test_an_array_already_in_the_int8_input_type_is_fed_as_it_is(shared, tmp_path):
    """An int8 ``.npy`` for an int8-input model (as MLPerf Tiny ships its vectors) is not quantized a second time."""
    model_path = shared.edge_dir / "model_int8.tflite"
    model = EdgeModel.load(model_path)
    raw = shared.x_test[:20].astype(np.float32)
    quantized = model.quantize(model.as_batch(raw))  # standardized with the manifest's z-score, then quantized
    assert quantized.dtype == np.int8 and model.takes_as_quantized(quantized)
    assert not model.takes_as_quantized(raw) and not model.takes_as_quantized(raw.astype(np.int64))
    np.save(tmp_path / "raw.npy", raw)
    np.save(tmp_path / "quantized.npy", quantized)
    assert read_inputs(tmp_path / "quantized.npy", model).dtype == np.int8
    answers = []
    for name in ("raw.npy", "quantized.npy"):
        result = runner.invoke(cli.app, ["predict", str(model_path), "--input", str(tmp_path / name), "--json"])
        assert result.exit_code == 0, result.output
        assert result.stderr == ""
        answers.append(json.loads(result.stdout))
    assert [p["top"][0]["label"] for p in answers[1]] == [p["top"][0]["label"] for p in answers[0]]
    assert answers[1] == answers[0]  # the same scores too
    fresh = EdgeModel.load(model_path)
    assert np.array_equal(fresh.run(quantized), fresh.run(raw))
    assert np.array_equal(fresh.run(quantized.reshape(len(quantized), -1)), fresh.run(raw))  # flattened, too
    float_model = EdgeModel.load(shared.edge_dir / "model_float32.tflite")  # float input: int8 values are raw
    assert not float_model.takes_as_quantized(quantized) and float_model.as_batch(quantized).dtype == np.float32


def test_predict_says_how_much_quantization_clipped(shared, tmp_path):
    model_path = str(shared.edge_dir / "model_int8.tflite")
    np.save(tmp_path / "normal.npy", shared.x_test[:20].astype(np.float32))
    np.save(tmp_path / "scaled.npy", shared.x_test[:20].astype(np.float32) * 1000)
    normal = runner.invoke(cli.app, ["predict", model_path, "--input", str(tmp_path / "normal.npy"), "--json"])
    assert normal.exit_code == 0, normal.output
    assert normal.stderr == ""
    scaled = runner.invoke(cli.app, ["predict", model_path, "--input", str(tmp_path / "scaled.npy"), "--json"])
    assert scaled.exit_code == 0, scaled.output
    assert len(json.loads(scaled.stdout)) == 20  # the JSON is unchanged, the warning goes to stderr alone
    lines = scaled.stderr.strip().splitlines()
    assert len(lines) == 1, scaled.stderr
    match = re.fullmatch(
        r"warning: (\d+\.\d)% of the input values \((\d+) of 1280\) were outside the int8 input's range "
        r"\[(\S+), (\S+)\] \(z-scores of the training statistics in the manifest\) and were clipped; "
        r"give raw values as in training \(.+\)",
        lines[0],
    )
    assert match, lines[0]
    percent, clipped = float(match[1]), int(match[2])
    assert 1 < percent <= 100 and percent == pytest.approx(100 * clipped / 1280, abs=0.05)
    assert float(match[3]) < 0 < float(match[4])
    model = EdgeModel.load(model_path)  # one outlier in 1,280 values stays quiet
    outlier = shared.x_test[:20].astype(np.float32)
    outlier[0, 0, 0, 0] = 1e6
    model.run(outlier)
    assert model.values_clipped == 1 and model.values_quantized == 1280
    assert prediction_report(model, [], as_json=True)[1] is None
