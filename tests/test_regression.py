"""Regression as a task: choosing it, training on real and generated data, int8 parity in target units, predict."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from typer.testing import CliRunner

import cli
from edge.device.errors import UserError
from edge.device.model import EdgeModel
from edge.device.predictions import predict_file
from edge.device.preprocessing import Standardization
from edge.export import export_run
from edge.parity import RegressionParity
from recipes.config import TrainConfig
from recipes.data import load_dataset
from recipes.input_pipeline import prepare_data
from recipes.runs import Run
from recipes.tasks import Regression, choose_task, looks_continuous, regression_metrics
from recipes.training import train
from tests.helpers import error_line

runner = CliRunner()
# Settings that train the regressions below in seconds; early stopping keeps the best dev epoch.
QUICK = {"hidden_units": [64, 32], "dropout": 0.0, "learning_rate": 0.003, "epochs": 400, "patience": 40}


def _csv(path, x, columns, y, labels):
    rows = [",".join([*columns, *labels])]
    rows += [",".join(f"{value:.6g}" for value in [*features, *target]) for features, target in zip(x, y, strict=True)]
    path.write_text("\n".join(rows) + "\n")
    return path


# --- choosing the task (no training) -------------------------------------------------------------------------


def test_a_numeric_label_with_many_values_is_a_regression_and_the_choice_is_announced():
    task, note = choose_task(TrainConfig(data="diabetes"), load_dataset("diabetes"))
    assert task.name == "regression"
    assert "214 distinct numbers in 442 rows" in note and "--task classification" in note
    task, note = choose_task(TrainConfig(data="iris"), load_dataset("iris"))
    assert task.name == "classification" and note is None  # three numbers are three classes


@pytest.mark.parametrize(
    ("distinct", "rows", "continuous"),
    [(21, 419, True), (21, 420, False), (20, 100, False), (3, 1000, False), (400, 400, True)],
)
def test_the_automatic_rule_is_more_than_20_values_and_more_than_5_percent(distinct, rows, continuous):
    from recipes.dataset import labelled

    labels = np.arange(rows) % distinct * 0.5
    assert looks_continuous(labelled(np.zeros((rows, 1)), labels, ["y"], "tabular", "t")) is continuous


def test_a_classification_of_mostly_singleton_classes_is_refused_with_the_fix(tmp_path):
    x, y = load_diabetes(return_X_y=True)
    data = _csv(tmp_path / "diabetes.csv", x, [f"f{i}" for i in range(10)], y[:, None], ["target"])
    result = runner.invoke(cli.app, ["train", "--data", str(data), "--label", "target", "--task", "classification"])
    line = error_line(result)
    assert "214 distinct values in 442 rows" in line and "--task regression" in line
    assert not (tmp_path / "runs").exists()


def test_text_labels_cannot_be_regressed_and_several_columns_must_be_numbers(tmp_path):
    data = tmp_path / "t.csv"
    data.write_text("a,label,other\n1,cat,2\n2,dog,3\n3,cat,4\n4,dog,5\n")
    with pytest.raises(UserError, match="holds text, not numbers.*--task classification"):
        prepare_data(TrainConfig(data=str(data), task="regression"))
    with pytest.raises(UserError, match="label column 'label' holds 'cat', which is not a number"):
        load_dataset(str(data), "other,label")
    with pytest.raises(UserError, match="cannot learn regression; use --recipe mlp, cnn"):
        choose_task(TrainConfig(recipe="resnet8", task="regression"), None)


def test_regression_metrics_equal_scikit_learns():
    generator = np.random.default_rng(0)
    y = generator.normal(size=(50, 2)) * [10.0, 0.1] + [100.0, 0.0]
    predicted = y + generator.normal(size=(50, 2)) * [3.0, 0.05]
    metrics = regression_metrics(y, predicted, ["a", "b"])
    for column, name in enumerate("ab"):
        scores = metrics["outputs"][name]
        assert scores["mae"] == pytest.approx(mean_absolute_error(y[:, column], predicted[:, column]))
        assert scores["rmse"] == pytest.approx(mean_squared_error(y[:, column], predicted[:, column]) ** 0.5)
        assert scores["r2"] == pytest.approx(r2_score(y[:, column], predicted[:, column]))
    assert metrics["r2"] == pytest.approx(r2_score(y, predicted))  # uniform average over the outputs


def test_output_standardization_inverts_in_float32_as_the_c_function_writes_it():
    scaling = Standardization.from_variance([100.0, -5.0], [400.0, 0.01])
    np.testing.assert_array_equal(scaling.invert([[1.0, -2.0]]), np.float32([[120.0, -5.2]]))
    text = scaling.c_postprocess("m", "int8", 0.05, -3)
    assert "m_postprocess(const int8_t* out, float* value)" in text and "(-3)" in text and "0.05f" in text


# --- training and export ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory):
    """The diabetes regression trained once, and its float32 and int8 export."""
    out = tmp_path_factory.mktemp("diabetes")
    # One 32-unit layer with L2: 442 rows of a nearly linear relation (BENCHMARKS.md: seeds 0-3 against Ridge).
    config = TrainConfig(data="diabetes", out=str(out), seed=0, **{**QUICK, "hidden_units": [32], "l2": 10.0})
    result = train(config, report=None)
    report = export_run(result.run_dir, ["float32", "int8"], firmware=True)
    return result, report


def test_diabetes_beats_a_ridge_regression_fitted_on_the_same_split(diabetes):
    result, _ = diabetes
    split = Run(result.run_dir).split()
    x, y = load_diabetes(return_X_y=True)
    best = max(
        (Ridge(alpha=alpha).fit(x[split.train], y[split.train]) for alpha in (0.001, 0.01, 0.1, 1.0, 10.0)),
        key=lambda ridge: ridge.score(x[split.dev], y[split.dev]),  # Ridge's alpha chosen on dev, as early stopping
    )
    ridge_r2 = best.score(x[split.test], y[split.test])
    metrics = result.metrics
    assert metrics["task"] == "regression" and result.task.name == "regression"
    assert metrics["test"]["r2"] >= ridge_r2, (metrics["test"]["r2"], ridge_r2)
    keras_values = result.model.predict(x[split.test].astype(np.float32), verbose=0).reshape(-1)
    assert metrics["test"]["r2"] == pytest.approx(r2_score(y[split.test], keras_values), abs=1e-6)
    assert metrics["test"]["mae"] == pytest.approx(mean_absolute_error(y[split.test], keras_values), rel=1e-5)
    assert metrics["test"]["rmse"] < metrics["test"]["baseline_rmse"]  # beats predicting the training mean
    assert 20 < metrics["test"]["mae"] < 0.8 * metrics["test"]["baseline_mae"]  # target units (spanning 25-346)


def test_the_run_records_the_task_history_and_a_diagnosis_in_target_units(diabetes):
    result, _ = diabetes
    run = Run(result.run_dir)
    assert run.config().task == "regression"  # auto's choice, so a rerun of config.yaml repeats it
    assert run.data()["task"] == "regression" and run.data()["target_names"] == ["target"]
    header = (result.run_dir / "history.csv").read_text().splitlines()[0].split(",")
    assert {"mae", "dev_mae", "loss", "dev_loss"} <= set(header) and "accuracy" not in header
    text = (result.run_dir / "diagnosis.md").read_text()
    assert "RMSE (target units)" in text and "Predicting the training mean" in text and "%" not in text
    assert result.diagnosis.train_error == pytest.approx(result.metrics["train"]["rmse"])


def test_int8_keeps_r2_within_002_of_keras_and_speaks_target_units(diabetes):
    result, report = diabetes
    assert not report.failing and report.task == "regression"
    by_name = {variant.name: variant.parity for variant in report.variants}
    assert isinstance(by_name["int8"], RegressionParity)
    assert by_name["int8"].r2_drop <= 0.02 and by_name["float32"].relative_max_error < 1e-4
    assert by_name["int8"].keras_r2 == pytest.approx(result.metrics["test"]["r2"], abs=1e-6)
    manifest = json.loads((result.run_dir / "edge" / "manifest.json").read_text())
    assert manifest["task"] == "regression" and manifest["target_names"] == ["target"]
    assert manifest["variants"]["int8"]["output_standardization"]["mean"][0] == pytest.approx(
        np.mean(load_diabetes().target[Run(result.run_dir).split().train]), rel=1e-5
    )
    header = (result.run_dir / "edge" / "model_int8.h").read_text()
    assert "_postprocess(const int8_t* out, float* value)" in header


def test_predict_prints_one_value_per_example_in_target_units(diabetes, tmp_path):
    result, _ = diabetes
    x = load_diabetes().data[:5].astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    keras_values = result.model.predict(x, verbose=0).reshape(-1)
    for name, tolerance in (("float32", 1e-3), ("int8", 0.15 * 77)):
        model_path = result.run_dir / "edge" / f"model_{name}.tflite"
        answer = runner.invoke(cli.app, ["predict", str(model_path), "--input", str(tmp_path / "x.npy"), "--json"])
        assert answer.exit_code == 0, answer.output
        rows = json.loads(answer.stdout)
        assert [row["index"] for row in rows] == list(range(5)) and all(set(row) == {"index", "value"} for row in rows)
        np.testing.assert_allclose([row["value"] for row in rows], keras_values, atol=tolerance)
    _, predictions = predict_file(result.run_dir / "edge" / "model_int8.tflite", tmp_path / "x.npy")
    assert predictions[0].to_line().startswith("   0: target ")


def test_friedman_reaches_r2_08_and_int8_stays_within_002(tmp_path):
    x, y = make_friedman1(n_samples=1500, n_features=10, noise=1.0, random_state=0)
    x = x * np.array([1e-3, 1.0, 1e3, 1e6, 1.0, 10.0, 1e-2, 1.0, 1.0, 100.0])  # features in mixed units
    data = _csv(tmp_path / "friedman.csv", x, [f"x{i}" for i in range(10)], y[:, None], ["y"])
    result = train(TrainConfig(data=str(data), label="y", out=str(tmp_path), **QUICK), report=None)
    assert result.metrics["test"]["r2"] >= 0.8, result.metrics["test"]
    report = export_run(result.run_dir, ["int8"])
    int8 = report.variants[0].parity
    assert not report.failing and int8.r2_drop <= 0.02 and int8.r2 >= 0.78, int8.to_dict()


def test_several_outputs_on_linnerud(tmp_path):
    from sklearn.datasets import load_linnerud

    bunch = load_linnerud()
    data = _csv(tmp_path / "linnerud.csv", bunch.data, bunch.feature_names, bunch.target, bunch.target_names)
    labels = ",".join(bunch.target_names)
    result = train(
        TrainConfig(
            data=str(data),
            label=labels,
            out=str(tmp_path),
            hidden_units=[16],
            epochs=60,
            patience=60,
            learning_rate=0.01,
        ),
        report=None,
    )
    metrics = result.metrics
    assert result.task.name == "regression" and metrics["target_names"] == list(bunch.target_names)
    assert set(metrics["train"]["outputs"]) == set(bunch.target_names)
    assert metrics["train"]["r2"] > 0.3  # it fits its 12 training rows at least
    export_run(result.run_dir, ["float32", "int8"], keep_failing=True)
    model = EdgeModel.load(result.run_dir / "edge" / "model_int8.tflite")
    assert model.target_names == list(bunch.target_names) and model.output_standardization.channels == 3
    np.save(tmp_path / "x.npy", bunch.data[:2].astype(np.float32))
    _, predictions = predict_file(result.run_dir / "edge" / "model_float32.tflite", tmp_path / "x.npy")
    row = predictions[0].to_dict()
    assert set(row) == {"index", "values", "names"} and row["names"] == list(bunch.target_names)
    keras = result.model.predict(bunch.data[:1].astype(np.float32), verbose=0)[0]
    np.testing.assert_allclose(row["values"], keras, rtol=1e-4)
    assert 100 < row["values"][0] < 300  # Weight, in pounds: target units, not z-scores


def test_the_task_object_is_asked_not_its_name(diabetes):
    result, _ = diabetes
    assert isinstance(result.task, Regression)
    assert result.task.check_objective(None) == "val_loss" and result.task.check_objective("val_mae") == "val_mae"
    with pytest.raises(UserError, match="reports no val_accuracy.*val_loss or val_mae"):
        result.task.check_objective("val_accuracy")


def test_a_search_learns_the_task_the_data_asks_for_and_offers_its_objectives():
    from tuning.settings import resolve_settings

    settings = resolve_settings(data="diabetes", max_trials=1)
    assert settings.base.task == "regression" and settings.objective == "val_loss" and settings.direction == "min"
    assert resolve_settings(data="diabetes", objective="val_mae").objective == "val_mae"
    with pytest.raises(UserError, match="a regression reports no val_accuracy"):
        resolve_settings(data="diabetes", objective="val_accuracy")
    assert resolve_settings(data="diabetes", task="classification", max_trials=1).objective == "val_accuracy"


def test_diagnose_rereads_a_regression_in_target_units_and_compression_is_refused(diabetes):
    result, _ = diabetes
    answer = runner.invoke(cli.app, ["diagnose", str(result.run_dir), "--bayes-error", "40"])
    assert answer.exit_code == 0, answer.output
    assert "| optimal (Bayes / human-level estimate) | 40 |" in answer.stdout and "RMSE (target units)" in answer.stdout
    refused = error_line(runner.invoke(cli.app, ["export", str(result.run_dir), "--prune", "0.5"]))
    assert "fine-tune classifiers" in refused and "regression" in refused


def test_an_image_folder_with_a_labels_csv_regresses_brightness_in_its_units(tmp_path):
    from PIL import Image

    folder = tmp_path / "photos"
    (folder / "shots").mkdir(parents=True)
    generator = np.random.default_rng(0)
    rows = ["file,lux"]
    for index in range(300):
        lux = float(generator.uniform(10, 1000))
        pixels = np.clip(lux / 4 + generator.normal(0, 8, (8, 8)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, "L").save(folder / "shots" / f"{index}.png")
        rows.append(f"shots/{index}.png,{lux:.2f}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    config = TrainConfig(
        recipe="cnn", data=str(folder), label="lux", out=str(tmp_path), conv_filters=[4], hidden_units=[8], epochs=60
    )
    result = train(config, report=None)
    assert result.task.name == "regression" and result.metrics["test"]["r2"] > 0.9, result.metrics["test"]
    assert result.metrics["test"]["mae"] < 100  # lux, not z-scores
    (folder / "labels.csv").write_text("file,lux\n../outside.png,3\n")
    with pytest.raises(UserError, match="'../outside.png' is not an image file inside"):
        load_dataset(str(folder), "lux")
    (folder / "labels.csv").write_text("path,lux\nshots/0.png,3\n")
    with pytest.raises(UserError, match="has no 'file' column"):
        load_dataset(str(folder), "lux")


def test_train_announces_the_automatic_choice_and_prints_target_units(tmp_path):
    answer = runner.invoke(cli.app, ["train", "--data", "diabetes", "--epochs", "2", "--out", str(tmp_path)])
    assert answer.exit_code == 0, answer.output
    assert "task: regression (the label holds 214 distinct numbers in 442 rows" in answer.stdout
    assert "1 numeric target(s) (target)" in answer.stdout and "dev mae" in answer.stdout
    assert "R²" in answer.stdout and "regression: test MAE" in answer.stdout


def test_gradcheck_refuses_a_regression_data_set_in_one_line():
    line = error_line(runner.invoke(cli.app, ["gradcheck", "--data", "diabetes"]))
    assert "diabetes is a regression data set" in line


def test_the_saved_model_loads_in_a_bare_keras_and_predicts_the_same_values(diabetes, tmp_path):
    """``model.keras`` holds layers and weights only: ``keras.saving.load_model`` in a Python that never imported
    this project loads it (the regression's loss is the project's own class, kept out of the file) and predicts
    what the run's model predicts."""
    import subprocess
    import sys

    result, _ = diabetes
    x = load_diabetes(return_X_y=True)[0][:16].astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys, numpy as np, keras\n"
        "model = keras.saving.load_model(sys.argv[1])\n"
        "np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))\n"
        "assert not any(name.startswith(('recipes', 'edge', 'tuning')) for name in sys.modules)\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(result.run_dir / "model.keras"),
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repository: nothing of the project is importable by accident
    )
    assert done.returncode == 0, done.stderr[-2000:]
    expected = result.model.predict(x, verbose=0)
    assert np.allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.slow
def test_the_firmware_gives_values_in_target_units_on_the_cortex_m4(diabetes, tflm_objects):
    """The regression's firmware on the emulated Cortex-M4: its int8 z-scores mapped back to target units in C give
    the runtime's values exactly (tests/firmware_checks.py)."""
    from edge.firmware import write_examples
    from tests.firmware_checks import assert_runs_like_litert, build_and_run, firmware_model

    result, _ = diabetes
    x = load_diabetes(return_X_y=True)[0][-20:].astype(np.float32)
    folder = result.run_dir / "edge" / "firmware"
    write_examples(folder, x, "none")
    run = build_and_run(folder, tflm_objects)[0]
    assert_runs_like_litert(run, firmware_model(result.run_dir / "edge"), x)
    assert 25 <= run.values.min() and run.values.max() <= 346  # target units (the targets span 25-346)
