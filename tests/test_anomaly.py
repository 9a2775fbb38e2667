"""Anomaly detection: the machine data set, the normal-only split, the dev threshold, AUC, and the
autoencoder recipe trained end to end through the CLI."""

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from edge.device.errors import UserError
from recipes.anomaly import binary_labels, choose_threshold, split_metrics
from recipes.data import load_dataset
from recipes.data.machine import FAULT_EXAMPLES, NORMAL_EXAMPLES, machine_dataset
from recipes.dataset import Dataset
from recipes.splitting import anomaly_split

pytestmark = pytest.mark.slow  # trains many models: left out of the quick subset (-m "not slow")

runner = CliRunner()


def test_machine_data_set_is_seeded_normal_and_faulty_vibration():
    dataset = load_dataset("machine")
    assert dataset.kind == "tabular" and dataset.name == "machine"
    assert dataset.x.shape == (NORMAL_EXAMPLES + FAULT_EXAMPLES, 640) and np.isfinite(dataset.x).all()
    assert dataset.class_names == ["normal", "fault"]
    assert np.bincount(dataset.y).tolist() == [NORMAL_EXAMPLES, FAULT_EXAMPLES]
    assert dataset.feature_names[0] == "frame0_band0" and dataset.feature_names[-1] == "frame4_band127"
    np.testing.assert_array_equal(machine_dataset(0).x, dataset.x)
    assert not np.array_equal(machine_dataset(1).x, dataset.x)
    # The faults move the spectrum: mean features differ far more than two halves of the normal data.
    normal, faults = dataset.x[dataset.y == 0], dataset.x[dataset.y == 1]
    halves = np.abs(normal[::2].mean(axis=0) - normal[1::2].mean(axis=0)).mean()
    assert np.abs(faults.mean(axis=0) - normal.mean(axis=0)).mean() > 5 * halves


def test_anomaly_split_trains_on_normal_examples_only():
    labels = np.array([0] * 100 + [1] * 21)
    split = anomaly_split(labels, (0.6, 0.2, 0.2), seed=3)
    assert (labels[split.train] == 0).all() and len(split.train) == 60
    assert (labels[split.dev] == 1).sum() == 10 and (labels[split.test] == 1).sum() == 11
    everything = np.concatenate([split.train, split.dev, split.test])
    assert sorted(everything.tolist()) == list(range(len(labels)))
    assert not split.stratified
    np.testing.assert_array_equal(anomaly_split(labels, (0.6, 0.2, 0.2), seed=3).dev, split.dev)
    with pytest.raises(UserError, match="at least two anomalous examples"):
        anomaly_split(np.array([0] * 10 + [1]), (0.6, 0.2, 0.2), seed=0)


def test_threshold_maximizes_youdens_j_with_the_widest_margin():
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9, 0.25])
    labels = np.array([0, 0, 0, 1, 1, 1])
    # Flagging >= 0.8 gives J = 2/3 - 0; flagging >= 0.25 gives J = 1 - 1/3: a tie, the first (higher) wins.
    assert choose_threshold(scores, labels) == pytest.approx((0.8 + 0.3) / 2)
    separable = choose_threshold(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1]))
    assert separable == pytest.approx(0.5)
    metrics = split_metrics(scores, labels, 0.55)
    assert metrics["confusion"] == {"true_negative": 3, "false_positive": 0, "false_negative": 1, "true_positive": 2}
    assert metrics["accuracy"] == pytest.approx(5 / 6) and metrics["auc"] == pytest.approx(8 / 9)
    assert metrics["mean_score_anomaly"] == pytest.approx((0.8 + 0.9 + 0.25) / 3)
    assert split_metrics(scores[:3], labels[:3], 0.55)["auc"] is None  # one kind only (a training split)
    with pytest.raises(UserError, match="needs normal and anomalous examples"):
        choose_threshold(scores[:3], labels[:3])


def test_normal_class_by_name_else_class_zero():
    dataset = Dataset(
        np.zeros((4, 2), np.float32), np.array([0, 1, 2, 1]), ["bearing", "normal", "rotor"], "tabular", "t"
    )
    assert binary_labels(dataset, "normal").y.tolist() == [1, 0, 1, 0]
    assert binary_labels(dataset, "healthy").y.tolist() == [0, 1, 1, 1]
    assert binary_labels(dataset, "normal").class_names == ["normal", "anomaly"]


@pytest.fixture(scope="module")
def machine_run(tmp_path_factory):
    """`python cli.py train --recipe autoencoder --data machine --epochs 10`."""
    out = tmp_path_factory.mktemp("anomaly")
    result = runner.invoke(
        cli.app, ["train", "--recipe", "autoencoder", "--data", "machine", "--epochs", "10", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    (run_dir,) = (out / "train").iterdir()
    return run_dir, result.stdout


def test_autoencoder_detects_machine_faults(machine_run):
    run_dir, stdout = machine_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["task"] == "anomaly" and metrics["test"]["auc"] >= 0.9 and metrics["dev"]["auc"] >= 0.9
    assert metrics["train"]["auc"] is None and metrics["train"]["confusion"]["true_positive"] == 0
    # Faults only in dev and test; the threshold sits between the normal and the faulty scores.
    assert metrics["split"]["train"] == 600 and sum(metrics["test"]["confusion"].values()) == metrics["split"]["test"]
    assert metrics["dev"]["mean_score_normal"] < metrics["threshold"] < metrics["dev"]["mean_score_anomaly"]
    assert f"anomaly detection: threshold {metrics['threshold']:.4g}" in stdout
    data = json.loads((run_dir / "data.json").read_text())
    assert data["task"] == "anomaly" and data["class_names"] == ["normal", "anomaly"]
    with open(run_dir / "history.csv") as file:
        assert next(csv.reader(file)) == ["epoch", "loss", "dev_loss", "learning_rate"]
    assert "bias/variance diagnosis" in (run_dir / "diagnosis.md").read_text()


def test_bias_variance_tools_refuse_anomaly_runs_clearly(machine_run):
    run_dir, _ = machine_run
    diagnose = runner.invoke(cli.app, ["diagnose", str(run_dir)])
    assert diagnose.exit_code == 2 and "anomaly-detection run" in diagnose.stderr
    gradcheck = runner.invoke(cli.app, ["gradcheck", "--recipe", "autoencoder", "--data", "machine"])
    assert gradcheck.exit_code == 2 and "autoencoder is an anomaly recipe" in gradcheck.stderr


def test_exported_model_reports_the_anomaly_score(machine_run):
    from edge.convert import convert_model
    from edge.device.model import EdgeModel
    from edge.variants import VARIANTS
    from recipes.runs import load_model

    model = load_model(machine_run[0])
    dataset = load_dataset("machine")
    content = convert_model(model, VARIANTS["float32"])
    scores = EdgeModel(content).predict(dataset.x[:8])
    assert scores.shape == (8, 1)
    np.testing.assert_allclose(scores, model.predict(dataset.x[:8], verbose=0), rtol=1e-4, atol=1e-5)


def test_the_threshold_is_chosen_on_dev_scores_not_test(machine_run):
    """The run's threshold is Youden's J on the dev split's scores (choosing it on test would leak the test labels
    into the figures reported on test)."""
    from recipes.runs import Run

    run_dir, _ = machine_run
    run = Run(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    split = run.split()
    dataset = binary_labels(load_dataset("machine"), "normal")
    model = run.model()
    dev_scores = np.asarray(model.predict(dataset.x[split.dev], verbose=0)).reshape(-1)
    test_scores = np.asarray(model.predict(dataset.x[split.test], verbose=0)).reshape(-1)
    on_dev = choose_threshold(dev_scores, dataset.y[split.dev])
    assert metrics["threshold"] == pytest.approx(on_dev, rel=1e-5)
    assert on_dev != pytest.approx(choose_threshold(test_scores, dataset.y[split.test]), rel=1e-5)
