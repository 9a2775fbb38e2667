"""Export round trip on a trained digits MLP: every variant converts, loads in LiteRT and meets its tolerance.

Stated tolerances (see edge/variants.py for the reasoning, BENCHMARKS.md for measurements):
float32 max |diff| <= 1e-5; float16 <= 5e-3; dynamic <= 5e-2; int8 <= 0.1 and accuracy within 1 point
of Keras; int8 file <= 35% of float32 for this 50,826-parameter model.
"""

import hashlib
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
import edge.export
from edge.bundle import runtime_files
from edge.device.model import EdgeModel
from edge.export import export_run
from edge.operators import TFLM_INT8_OPS, operator_report
from edge.variants import VARIANTS
from tests.helpers import copy_run, snapshot

runner = CliRunner()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_variant_loads_in_litert_and_meets_its_tolerance(shared, name):
    """Recomputed from the files on disk, independent of the report."""
    variant = VARIANTS[name]
    model = EdgeModel.load(shared.edge_dir / variant.filename)
    outputs = model.predict(shared.x_test)
    assert outputs.shape == shared.keras_outputs.shape == (len(shared.y_test), 10)
    max_diff = float(np.abs(outputs - shared.keras_outputs).max())
    keras_accuracy = float(np.mean(shared.keras_outputs.argmax(1) == shared.y_test))
    accuracy = float(np.mean(outputs.argmax(1) == shared.y_test))
    agreement = float(np.mean(outputs.argmax(1) == shared.keras_outputs.argmax(1)))
    tolerance = variant.tolerance("classification")
    assert max_diff <= tolerance.max_abs_diff
    assert 100 * (keras_accuracy - accuracy) <= tolerance.max_accuracy_drop + 1e-9
    assert agreement >= 0.98
    assert keras_accuracy > 0.95  # the model learned something, so parity means something
    reported = next(result for result in shared.report.variants if result.name == name)
    assert reported.parity.max_abs_diff == pytest.approx(max_diff, abs=1e-7)
    assert reported.parity.accuracy == pytest.approx(accuracy)
    assert reported.parity.within_tolerance


def test_float32_matches_keras_within_1e_5(shared):
    outputs = EdgeModel.load(shared.edge_dir / "model_float32.tflite").predict(shared.x_test)
    assert float(np.abs(outputs - shared.keras_outputs).max()) <= 1e-5


def test_int8_is_small_and_accurate(shared):
    results = {result.name: result for result in shared.report.variants}
    assert shared.parameters >= 50_000
    int8_bytes = (shared.edge_dir / "model_int8.tflite").stat().st_size
    float_bytes = (shared.edge_dir / "model_float32.tflite").stat().st_size
    assert int8_bytes <= 0.35 * float_bytes
    assert results["int8"].ratio_to_float32 == pytest.approx(int8_bytes / float_bytes)
    assert results["int8"].parity.accuracy_drop_points <= 1.0
    model = EdgeModel.load(shared.edge_dir / "model_int8.tflite")
    assert (model.input.dtype, model.output.dtype) == ("int8", "int8")  # int8 I/O by default
    assert model.input.scale > 0 and model.output.scale == pytest.approx(1 / 256)


def test_manifest_hashes_and_describes_the_files(shared):
    manifest = json.loads((shared.edge_dir / "manifest.json").read_text())
    expected = {
        "model_float32.tflite",
        "model_float16.tflite",
        "model_dynamic.tflite",
        "model_int8.tflite",
        "model_int8.h",
        "model_int8.cc",
        "report.json",
        "quantization.json",
        "predict.py",
        "requirements.txt",
        *(f"lib/{name}" for name in runtime_files()),
        *(f"plots/confusion_matrix_{name}.png" for name in VARIANTS),  # Keras beside each variant, test split
    }
    assert set(manifest["files"]) == expected
    for name, entry in manifest["files"].items():
        content = (shared.edge_dir / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}
    int8 = manifest["variants"]["int8"]
    assert int8["input"]["shape"] == [1, 8, 8, 1] and int8["input"]["dtype"] == "int8"
    assert int8["input"]["quantization"]["scale"] > 0
    assert int8["output"]["quantization"] == {"scale": 0.00390625, "zero_point": -128}
    assert manifest["variants"]["float32"]["input"]["quantization"] is None
    assert manifest["class_names"] == [str(digit) for digit in range(10)]
    assert manifest["source_run"]["name"] == shared.run_dir.name
    assert manifest["source_run"]["config"]["epochs"] == 15
    assert {"tensorflow", "keras", "ai-edge-litert", "numpy"} <= set(manifest["versions"])


def test_report_lists_operators_and_calibration(shared):
    report = json.loads((shared.edge_dir / "report.json").read_text())
    assert report["test_examples"] == len(shared.y_test) == 359
    assert report["calibration"] == {
        "samples": 300,
        "split": "train",
        "seed": 0,
        "float_io": False,
        "stratified": "by class",
    }
    int8 = next(variant for variant in report["variants"] if variant["name"] == "int8")
    assert int8["operators"]["FULLY_CONNECTED"] == 3
    assert int8["micro_int8_ready"] is True and int8["micro_int8_unsupported"] == []
    assert set(int8["operators"]) <= TFLM_INT8_OPS
    float16 = next(variant for variant in report["variants"] if variant["name"] == "float16")
    assert "DEQUANTIZE" in float16["operators"] and float16["micro_int8_ready"] is None
    assert report["warnings"] == []


def test_an_op_without_a_micro_int8_kernel_is_named():
    from recipes.backend import import_keras

    keras = import_keras(0)
    from edge.convert import convert_model

    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="gelu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))
    calibration = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    report = operator_report(convert_model(model, VARIANTS["int8"], calibration), int8=True)
    assert report.micro_int8_unsupported == ["GELU"] and report.micro_ready is False


def test_float_io_small_calibration_warning_and_atomic_replacement(shared, tmp_path, monkeypatch):
    run = copy_run(shared.run_dir, tmp_path / "run")
    result = runner.invoke(
        cli.app, ["export", str(run), "--quantization", "int8", "--float-io", "--calibration-samples", "50"]
    )
    assert result.exit_code == 0, result.output
    assert "warning: int8 is calibrated on 50 examples" in result.output
    assert json.loads((run / "edge" / "report.json").read_text())["warnings"] == [
        "int8 is calibrated on 50 examples (a sample of the training split, fewer than 100): its activation "
        "ranges may be off; give --calibration-samples 300 or more"
    ]
    assert "next: python cli.py benchmark" in result.output
    model = EdgeModel.load(run / "edge" / "model_int8.tflite")
    assert (model.input.dtype, model.output.dtype) == ("float32", "float32")
    accuracy = float(np.mean(model.predict(shared.x_test).argmax(1) == shared.y_test))
    assert accuracy >= float(np.mean(shared.keras_outputs.argmax(1) == shared.y_test)) - 0.01
    before = snapshot(run / "edge")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full while writing the C array")

    monkeypatch.setattr(edge.export, "micro_check", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_run(run, ["float32", "int8"])
    assert snapshot(run / "edge") == before  # old export intact
    assert sorted(path.name for path in run.iterdir() if path.name.startswith(".")) == []  # no staging left
    monkeypatch.undo()
    export_run(run, ["float32"])  # a new export replaces the old edge/ whole
    assert sorted(path.name for path in (run / "edge").iterdir()) == [
        "lib",
        "manifest.json",
        "model_float32.tflite",
        "plots",
        "predict.py",
        "report.json",
        "requirements.txt",
    ]
