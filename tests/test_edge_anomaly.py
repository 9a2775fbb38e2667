"""Export and device runtime of an anomaly detector: the autoencoder on ``machine`` (10 epochs, seed 0).

Stated tolerances (edge/variants.py, measured over six runs in edge/anomaly.py): int8's test AUC within 0.01
of Keras's (measured here: 0.9803 against 0.9810) and at least 97% of its decisions at the threshold equal
to Keras's (measured 99.1%); float32's decisions all equal. The int8 score reaches at least 1.5 thresholds
(measured 1.99) and the threshold lies inside its range.
"""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

import cli
from edge.anomaly import int8_range, score_quantization, threshold_warning
from edge.device.errors import UserError
from edge.device.model import EdgeModel, is_anomaly
from edge.device.predictions import anomaly_scores
from edge.export import export_run
from edge.export_report import ExportReport
from edge.variants import VARIANTS
from recipes.anomaly import binary_labels
from recipes.config import resolve_config
from recipes.data import load_dataset
from recipes.splitting import load_split
from recipes.training import train
from tests.helpers import assert_bundle_predicts_like_the_cli, copy_run, snapshot

pytestmark = pytest.mark.slow  # trains many models: left out of the quick subset (-m "not slow")

runner = CliRunner()


@dataclass
class AnomalyExport:
    """The exported anomaly run and the Keras model's view of its test split."""

    run_dir: Path
    report: ExportReport
    threshold: float
    x_test: np.ndarray
    y_test: np.ndarray
    keras_scores: np.ndarray
    model: object

    @property
    def edge_dir(self) -> Path:
        return self.run_dir / "edge"

    @property
    def keras_decisions(self) -> np.ndarray:
        return is_anomaly(self.keras_scores, self.threshold)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> AnomalyExport:
    root = tmp_path_factory.mktemp("anomaly-export")
    config = resolve_config(
        None, {"recipe": "autoencoder", "data": "machine", "epochs": 10, "seed": 0, "out": str(root)}, []
    )
    result = train(config, report=None)
    report = export_run(result.run_dir, list(VARIANTS), firmware=True)
    dataset = binary_labels(load_dataset("machine"), "normal")
    test = load_split(result.run_dir / "split.npz").test
    x_test, y_test = dataset.x[test], dataset.y[test]
    scores = np.asarray(result.model.predict(x_test, verbose=0)).reshape(-1)
    return AnomalyExport(result.run_dir, report, result.metrics["threshold"], x_test, y_test, scores, result.model)


@pytest.fixture(scope="module")
def windows_csv(exported, tmp_path_factory) -> Path:
    """The raw test windows, one per row, as a user would collect them."""
    path = tmp_path_factory.mktemp("windows") / "windows.csv"
    np.savetxt(path, exported.x_test, delimiter=",", fmt="%.9g")
    return path


def test_report_judges_every_variant_by_auc_and_decisions(exported):
    report = json.loads((exported.edge_dir / "report.json").read_text())
    assert report["task"] == "anomaly" and "keras_accuracy" not in report
    assert report["threshold"] == exported.threshold
    assert report["keras_auc"] == pytest.approx(roc_auc_score(exported.y_test, exported.keras_scores))
    assert report["warnings"] == []
    for variant in report["variants"]:
        assert "accuracy" not in variant  # an argmax over one score means nothing
        assert variant["keras_auc"] == report["keras_auc"] and variant["within_tolerance"], variant
        model = EdgeModel.load(exported.edge_dir / variant["file"])
        scores = model.predict(exported.x_test).reshape(-1)  # recomputed from the file on disk
        assert variant["auc"] == pytest.approx(roc_auc_score(exported.y_test, scores))
        agreement = np.mean(is_anomaly(scores, exported.threshold) == exported.keras_decisions)
        assert variant["agreement"] == pytest.approx(agreement)
        assert variant["max_abs_diff"] == pytest.approx(np.abs(scores - exported.keras_scores).max(), rel=1e-5)
        assert variant["score_range"] == pytest.approx([scores.min(), scores.max()])
    by_name = {variant["name"]: variant for variant in report["variants"]}
    assert report["keras_auc"] >= 0.95  # the model learned something, so parity means something
    assert by_name["int8"]["auc"] >= report["keras_auc"] - 0.01 and by_name["int8"]["agreement"] >= 0.97
    assert by_name["float32"]["agreement"] == 1.0 and by_name["float32"]["max_abs_diff"] <= 1e-5
    assert report["micro"]["measured"] is False or report["micro"]["agreement"] >= 0.99  # decisions, not argmax


def test_int8_is_calibrated_on_scores_near_the_threshold(exported):
    calibration = exported.report.calibration
    assert calibration["split"] == "train+dev" and calibration["train_samples"] == 300
    assert calibration["dev_samples"] > 0 and calibration["samples"] == 300 + calibration["dev_samples"]
    assert calibration["dev_score_range"] == pytest.approx([exported.threshold, 2 * exported.threshold])
    model = EdgeModel.load(exported.edge_dir / "model_int8.tflite")
    low, high = int8_range(model.output.scale, model.output.zero_point)
    assert low <= 0 < exported.threshold and high >= 1.5 * exported.threshold
    manifest = json.loads((exported.edge_dir / "manifest.json").read_text())
    raw = manifest["variants"]["int8"]["threshold_quantized"]
    assert (raw - model.output.zero_point) * model.output.scale >= exported.threshold
    assert (raw - 1 - model.output.zero_point) * model.output.scale < exported.threshold
    assert f"raw output q >= {raw}" in (exported.edge_dir / "model_int8.h").read_text()


def test_a_threshold_outside_the_int8_range_is_named(exported):
    from edge.convert import convert_model

    content = (exported.edge_dir / "model_int8.tflite").read_bytes()
    assert threshold_warning("int8", content, exported.threshold) is None
    assert "every example reads as normal" in threshold_warning("int8", content, 100.0)
    assert "every example reads as an anomaly" in threshold_warning("int8", content, -1.0)
    assert score_quantization((exported.edge_dir / "model_float32.tflite").read_bytes()) is None
    float_io = convert_model(exported.model, VARIANTS["int8"], exported.x_test[:50], float_io=True)
    scale, zero_point = score_quantization(float_io)  # the int8 score the final DEQUANTIZE reads
    assert scale > 0 and zero_point == -128


def test_manifest_holds_task_and_threshold(exported):
    manifest = json.loads((exported.edge_dir / "manifest.json").read_text())
    assert manifest["format"] == 3 and manifest["task"] == "anomaly"
    assert manifest["anomaly"] == {
        "threshold": exported.threshold,
        "decision": "anomaly when score >= threshold",
        "threshold_rule": "Youden's J (TPR - FPR) on dev; score >= threshold is an anomaly",
    }
    assert manifest["front_end"] is None and manifest["class_names"] == ["normal", "anomaly"]
    assert "threshold_quantized" not in manifest["variants"]["float32"]
    model = EdgeModel.load(exported.edge_dir / "model_int8.tflite")
    assert model.threshold == exported.threshold and model.num_classes == 1


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_predict_reports_score_threshold_and_the_keras_decision(exported, windows_csv, variant):
    result = runner.invoke(
        cli.app, ["predict", str(exported.edge_dir / f"model_{variant}.tflite"), "--input", str(windows_csv), "--json"]
    )
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.output)
    assert [p["index"] for p in predictions] == list(range(len(exported.y_test)))
    assert {p["threshold"] for p in predictions} == {exported.threshold}
    decisions = np.array([p["decision"] == "anomaly" for p in predictions])
    assert {p["decision"] for p in predictions} == {"anomaly", "normal"}
    scores = np.array([p["score"] for p in predictions])
    assert np.array_equal(decisions, is_anomaly(scores, exported.threshold))
    agreement = np.mean(decisions == exported.keras_decisions)
    saturated = [p for p in predictions if p["saturated"]]
    if variant == "float32":
        assert agreement == 1.0 and not saturated
        np.testing.assert_allclose(scores, exported.keras_scores, rtol=1e-5)
    else:
        assert agreement >= 0.97
        assert saturated and all(p["decision"] == "anomaly" for p in saturated)  # scores past the int8 range


def test_predict_prints_one_line_per_window(exported, tmp_path):
    anomalous = exported.x_test[exported.y_test == 1][:2]
    np.save(tmp_path / "windows.npy", np.concatenate([exported.x_test[exported.y_test == 0][:1], anomalous]))
    result = runner.invoke(
        cli.app, ["predict", str(exported.edge_dir / "model_float32.tflite"), "--input", str(tmp_path / "windows.npy")]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.rstrip("\n").splitlines()
    assert len(lines) == 3 and all(f"threshold {exported.threshold:.5g}" in line for line in lines)
    keras = is_anomaly(exported.model.predict(np.load(tmp_path / "windows.npy"), verbose=0), exported.threshold)
    for line, flagged in zip(lines, keras.reshape(-1), strict=True):
        assert (" anomaly " in line and " >= threshold" in line) if flagged else (" normal " in line and " < " in line)


def test_without_its_manifest_the_threshold_is_missing(exported, tmp_path):
    shutil.copy(exported.edge_dir / "model_int8.tflite", tmp_path / "model_int8.tflite")
    model = EdgeModel.load(tmp_path / "model_int8.tflite")
    assert model.threshold is None
    with pytest.raises(UserError, match="has no anomaly threshold; put the manifest.json"):
        anomaly_scores(model, exported.x_test[:1])


def test_a_damaged_anomaly_manifest_is_one_line(exported, tmp_path, windows_csv):
    manifest = json.loads((exported.edge_dir / "manifest.json").read_text())
    manifest["anomaly"] = None
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    shutil.copy(exported.edge_dir / "model_int8.tflite", tmp_path / "model_int8.tflite")
    result = runner.invoke(cli.app, ["predict", str(tmp_path / "model_int8.tflite"), "--input", str(windows_csv)])
    assert result.exit_code == 2 and result.stderr.strip() == (
        f"error: {tmp_path / 'manifest.json'} is damaged; export again or remove it to run without labels"
    )


def test_a_test_split_without_anomalies_is_refused_in_one_line(exported, tmp_path):
    from dataclasses import replace

    from recipes.splitting import save_split

    run = copy_run(exported.run_dir, tmp_path / "run")
    split = load_split(run / "split.npz")
    save_split(run / "split.npz", replace(split, test=split.test[exported.y_test == 0]))
    result = runner.invoke(cli.app, ["export", str(run)])
    assert result.exit_code == 2 and result.stderr.strip() == (
        f"error: the test split of {run} holds only one kind of example; comparing AUC and decisions needs normal "
        "and anomalous ones: train again with a larger test fraction"
    )
    assert not (run / "edge").exists()


def test_compression_of_an_anomaly_run_is_refused_in_one_line(exported, tmp_path):
    run = copy_run(exported.run_dir, tmp_path / "run", with_edge=True)
    before = snapshot(run / "edge")
    result = runner.invoke(cli.app, ["export", str(run), "--prune", "0.5"])
    assert result.exit_code == 2 and result.stderr.strip() == (
        "error: --prune and --qat fine-tune classifiers; this run is an anomaly detector (autoencoder): export it "
        "without --prune and --qat"
    )
    assert snapshot(run / "edge") == before  # the export is kept


def test_the_device_bundle_prints_what_the_cli_prints(exported, windows_csv, device_env, tmp_path):
    output = assert_bundle_predicts_like_the_cli(
        device_env, exported.run_dir / "edge", tmp_path, "model_int8.tflite", "--input", str(windows_csv), "--json"
    )
    assert {"score", "threshold", "decision"} <= set(json.loads(output)[0])


def test_normal_and_anomaly_per_class_results_and_the_page(exported, tmp_path):
    """Keras's and each variant's decisions at the threshold as two classes, recomputed from the scores; the run's
    page renders with every figure."""
    from sklearn.metrics import confusion_matrix

    from tests.helpers import assert_run_page

    report = assert_run_page(exported.run_dir, tmp_path)
    keras = confusion_matrix(exported.y_test, exported.keras_decisions, labels=[0, 1]).tolist()
    assert report["keras_classes"]["confusion_matrix"] == keras
    assert report["keras_classes"]["names"] == ["normal", "anomaly"]
    metrics = json.loads((exported.run_dir / "metrics.json").read_text())
    confusion = metrics["test"]["confusion"]
    assert metrics["test"]["classes"]["confusion_matrix"] == [
        [confusion["true_negative"], confusion["false_positive"]],
        [confusion["false_negative"], confusion["true_positive"]],
    ]
    for variant in report["variants"]:
        model = EdgeModel.load(exported.edge_dir / VARIANTS[variant["name"]].filename)
        decided = is_anomaly(model.predict(exported.x_test).reshape(-1), exported.threshold)
        assert (
            variant["classes"]["confusion_matrix"] == confusion_matrix(exported.y_test, decided, labels=[0, 1]).tolist()
        )


def test_a_score_at_the_threshold_is_an_anomaly():
    """The documented rule, 'anomaly when score >= threshold': the threshold itself is an anomaly, the float just
    below it is not (compared in float64, as training chose the threshold)."""
    threshold = 0.3
    scores = np.array([threshold, np.nextafter(threshold, 0.0), np.nextafter(threshold, 1.0)])
    assert is_anomaly(scores, threshold).tolist() == [True, False, True]


@pytest.mark.slow
def test_the_firmware_scores_and_decides_as_the_runtime_on_the_cortex_m4(exported, tflm_objects):
    """The anomaly detector's firmware on the emulated Cortex-M4: its scores are the runtime's, and
    model_is_anomaly() decides at the threshold as the runtime does (tests/firmware_checks.py)."""
    from edge.firmware import write_examples
    from tests.firmware_checks import assert_runs_like_litert, build_and_run, firmware_model

    x = np.asarray(exported.x_test[:20], np.float32)
    write_examples(exported.edge_dir / "firmware", x, "none")
    run = build_and_run(exported.edge_dir / "firmware", tflm_objects)[0]
    model = firmware_model(exported.edge_dir)
    assert_runs_like_litert(run, model, x)
    assert run.anomaly == is_anomaly(run.values[:, 0], exported.threshold).astype(int).tolist()
    assert 0 < sum(run.anomaly) < 20 or len(set(exported.y_test[:20].tolist())) == 1  # both decisions occur
