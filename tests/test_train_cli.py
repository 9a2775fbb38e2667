"""`python cli.py train` end to end: the default run, reloading, determinism, data sources, bad input."""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

import cli
from recipes.config import TrainConfig
from recipes.runs import Run
from recipes.schedules import learning_rate_at
from tests.helpers import error_line

ROOT = Path(__file__).resolve().parents[1]
RUN_FILES = Run.FILES  # what a finished run holds, as recipes/runs.py names it
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(cli.app, list(args))


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """`python cli.py train` with no arguments, in a fresh folder, as a user would run it."""
    workdir = tmp_path_factory.mktemp("user")
    completed = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "train"], cwd=workdir, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    (run_dir,) = (workdir / "runs" / "train").iterdir()
    return run_dir, completed.stdout


def test_default_train_meets_the_bar(default_run):
    """Its time is measured by benchmarks/train_overhead.py, not asserted here (a loaded machine is not slow code)."""
    run_dir, stdout = default_run
    assert run_dir.name == "digits-mlp-1"
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    written = {str(path.relative_to(run_dir)) for path in run_dir.rglob("*") if path.is_file()}
    assert {name for name in written if not name.startswith("tensorboard/")} == set(RUN_FILES)  # Run names them all
    assert any((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) >= {"train", "dev", "test", "split"}
    assert metrics["split"] == {"train": 1079, "dev": 359, "test": 359}
    assert metrics["test"]["accuracy"] >= 0.95
    assert metrics["train"]["accuracy"] >= metrics["test"]["accuracy"] - 0.05
    # What the user reads at the end: where the run is, the accuracies, the verdict.
    assert str(run_dir.relative_to(run_dir.parents[2])) in stdout
    assert f"{metrics['test']['accuracy']:.4f}" in stdout
    assert "diagnosis:" in stdout and re.search(r"epoch +1/100 +loss", stdout)
    # under the split table, one line: the three classes of lowest test recall, as metrics.json holds them
    from recipes.class_metrics import worst_recall_line

    line = worst_recall_line(metrics["test"]["classes"])
    assert line.startswith("lowest test recall: ") and line.count("% of ") == 3
    assert f"\n{line}\n" in stdout and stdout.index(line) < stdout.index("diagnosis:")


def test_history_has_one_row_per_epoch(default_run):
    run_dir, _ = default_run
    with open(run_dir / "history.csv") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "dev_loss", "dev_accuracy", "learning_rate"]
    assert [int(row["epoch"]) for row in rows] == list(range(1, len(rows) + 1))
    assert all(float(row["learning_rate"]) == pytest.approx(0.001) for row in rows)
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    # Early stopping restored the best weights: the highest dev accuracy, ties broken by the lower dev loss.
    metrics = json.loads((run_dir / "metrics.json").read_text())
    kept, progress = _kept_and_last_progress(rows)
    assert metrics["best_epoch"] == kept
    assert metrics["dev"]["accuracy"] == pytest.approx(max(float(row["dev_accuracy"]) for row in rows), abs=1e-6)
    assert metrics["dev"]["loss"] == pytest.approx(float(rows[kept - 1]["dev_loss"]), rel=1e-4)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert (saved["batch_size"], saved["patience"]) == (64, 18)  # digits: 1,079 training examples, 17 steps an epoch
    if len(rows) < saved["epochs"]:  # stopped: patience epochs after the last better epoch or lower dev loss
        assert len(rows) == progress + saved["patience"]


def _kept_and_last_progress(rows: list[dict]) -> tuple[int, int]:
    """The epoch a classifier keeps (highest dev accuracy, then lowest dev loss) and the last epoch that made
    progress (a better epoch or a new lowest dev loss), both 1-based, computed here from the history."""
    kept, best, lowest, progress = 1, None, float("inf"), 1
    for epoch, row in enumerate(rows, 1):
        accuracy, loss = float(row["dev_accuracy"]), float(row["dev_loss"])
        if best is None or accuracy > best[0] or (accuracy == best[0] and loss < best[1]):
            kept, best, progress = epoch, (accuracy, loss), epoch
        if loss < lowest:
            lowest, progress = loss, epoch
    return kept, progress


def test_model_reloads_safely_and_predicts_identically(default_run):
    from recipes.input_pipeline import prepare_data
    from recipes.runs import load_model
    from recipes.splitting import load_split

    run_dir, _ = default_run
    model = load_model(run_dir)
    data = prepare_data(TrainConfig())
    np.testing.assert_array_equal(load_split(run_dir / "split.npz").test, data.split.test)
    x_test, y_test = data.part("test")
    probabilities = model.predict(x_test, verbose=0)  # raw inputs: normalization is in the model
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    accuracy = float((probabilities.argmax(axis=1) == y_test).mean())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert accuracy == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)


def test_in_memory_and_reloaded_models_agree_exactly(tmp_path):
    from recipes.config import resolve_config
    from recipes.input_pipeline import prepare_data
    from recipes.runs import load_model
    from recipes.training import train

    config = resolve_config(None, {"epochs": 2, "out": str(tmp_path), "recipe": "cnn"}, [])
    result = train(config, report=None)
    x_test, _ = prepare_data(config).part("test")
    np.testing.assert_array_equal(
        load_model(result.run_dir).predict(x_test, verbose=0), result.model.predict(x_test, verbose=0)
    )


def test_same_seed_same_metrics(tmp_path):
    args = ["train", "--epochs", "3", "--seed", "7", "--out", str(tmp_path), "-q"]
    assert invoke(*args).exit_code == 0
    assert invoke(*args).exit_code == 0
    first, second = (tmp_path / "train" / f"digits-mlp-{n}" / "metrics.json" for n in (1, 2))
    assert first.read_text() == second.read_text()
    other = invoke("train", "--epochs", "3", "--seed", "8", "--out", str(tmp_path), "-q")
    assert other.exit_code == 0
    assert (tmp_path / "train" / "digits-mlp-3" / "metrics.json").read_text() != first.read_text()


def test_schedule_and_flags_reach_the_run(tmp_path):
    result = invoke(
        "train",
        "--epochs",
        "4",
        "--batch-size",
        "full",
        "--learning-rate",
        "0.01",
        "--name",
        "sched",
        "--out",
        str(tmp_path),
        "--set",
        "schedule=exponential",
        "--set",
        "early_stopping=false",
        "-q",
    )
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "train" / "sched-1"
    with open(run_dir / "history.csv") as file:
        rates = [float(row["learning_rate"]) for row in csv.DictReader(file)]
    config = TrainConfig(learning_rate=0.01, schedule="exponential")
    assert rates == pytest.approx([learning_rate_at(config, epoch) for epoch in range(4)], rel=1e-6)
    assert "batch_size: full" in (run_dir / "config.yaml").read_text()


def test_csv_npz_and_image_folder_train(tmp_path):
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0, 0], [4, 4, 4], [-4, 4, 0]])
    labels = np.repeat(["a", "b", "c"], 40)
    features = centers[np.repeat([0, 1, 2], 40)] + rng.normal(size=(120, 3))
    csv_path = tmp_path / "blobs.csv"
    with open(csv_path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["f1", "kind", "f2", "f3"])
        for row, label in zip(features, labels, strict=True):
            writer.writerow([row[0], label, row[1], row[2]])
    result = invoke("train", "--data", str(csv_path), "--label", "kind", "--epochs", "30", "--out", str(tmp_path), "-q")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "train" / "blobs-mlp-1" / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.9
    assert json.loads((tmp_path / "train" / "blobs-mlp-1" / "data.json").read_text())["class_names"] == ["a", "b", "c"]

    npz_path = tmp_path / "arrays.npz"
    np.savez(npz_path, x=features.astype(np.float32), y=np.repeat([0, 1, 2], 40))
    result = invoke("train", "--data", str(npz_path), "--epochs", "2", "--out", str(tmp_path), "-q")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "train" / "arrays-mlp-1" / "model.keras").is_file()

    folder = tmp_path / "shapes"
    for label, value in (("dark", 30), ("light", 220)):
        (folder / label).mkdir(parents=True)
        for index in range(12):
            pixels = np.clip(rng.normal(value, 10, size=(12, 12)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / label / f"{index}.png")
    result = invoke(
        "train",
        "--data",
        str(folder),
        "--recipe",
        "cnn",
        "--epochs",
        "2",
        "--out",
        str(tmp_path),
        "--set",
        "conv_filters=4",
        "--set",
        "hidden_units=8",
        "--set",
        "flip=horizontal",
        "--set",
        "rotation=0.05",
        "--set",
        "translation=0.1",
        "--set",
        "zoom=0.1",
        "-q",
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "train" / "shapes-cnn-1" / "data.json").read_text())["input_shape"] == [12, 12, 1]


def test_augmentation_is_training_only(tmp_path):
    from recipes.config import resolve_config
    from recipes.input_pipeline import augmenter, prepare_data, training_dataset
    from recipes.training import train

    config = resolve_config(None, {"data": "iris", "epochs": 1, "out": str(tmp_path)}, ["noise_stddev=0.5"])
    data = prepare_data(config)
    x_train, _ = data.part("train")
    plain = np.concatenate([x for x, _ in training_dataset(resolve_config(None, {"data": "iris"}, []), data)])
    assert sorted(map(tuple, plain)) == sorted(map(tuple, x_train))  # no augmentation: same rows, reshuffled
    augmented = np.concatenate([x for x, _ in training_dataset(config, data)])
    assert not set(map(tuple, augmented)) & set(map(tuple, x_train))
    # The noise is N(0, (0.5 * sigma_j)^2) per feature: 0.5 in z-score units.
    constant = np.tile(x_train.mean(axis=0), (20000, 1)).astype(np.float32)
    noise = np.asarray(augmenter(config, data)(constant)) - constant
    np.testing.assert_allclose(noise.std(axis=0), 0.5 * np.sqrt(data.spec.variance), rtol=0.05)
    np.testing.assert_allclose(noise.mean(axis=0), 0.0, atol=0.02)
    model = train(config, report=None).model
    assert not any("Random" in type(layer).__name__ or "Noise" in type(layer).__name__ for layer in model.layers)


def test_batches_are_reshuffled_each_epoch_in_an_order_the_epoch_fixes():
    import tensorflow as tf

    from recipes.config import resolve_config
    from recipes.input_pipeline import prepare_data, training_dataset

    config = resolve_config(None, {"data": "iris", "batch_size": "16"}, [])
    data = prepare_data(config)
    epoch = tf.Variable(0, dtype=tf.int64)
    pipeline = training_dataset(config, data, epoch)
    orders = {}
    for number in (0, 1, 0):  # a resumed run sets the epoch it starts at, and meets that epoch's order
        epoch.assign(number)
        orders.setdefault(number, []).append(np.concatenate([y for _, y in pipeline]))
    first = [y for _, y in pipeline]
    assert [len(batch) for batch in first][:-1] == [16] * (len(first) - 1)
    assert np.array_equal(orders[0][0], orders[0][1]) and not np.array_equal(orders[0][0], orders[1][0])
    assert sorted(orders[1][0].tolist()) == sorted(data.part("train")[1].tolist())  # every example once
    full = training_dataset(resolve_config(None, {"data": "iris", "batch_size": "full"}, []), data)
    assert [len(y) for _, y in full] == [len(data.split.train)]


def test_recipes_json_pins_parameter_counts():
    result = invoke("recipes", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    normalization = 0  # the z-score mean and variance are constants of the layer, not weights
    mlp = (64 * 256 + 256) + (256 * 128 + 128) + (128 * 10 + 10) + normalization
    cnn = (9 * 1 * 32 + 32) + (9 * 32 * 64 + 64) + (256 * 256 + 256) + (256 * 128 + 128) + (128 * 10 + 10)
    assert rows["mlp"]["parameters"] == mlp == 50_826
    assert rows["cnn"]["parameters"] == cnn + normalization
    assert rows["mlp"]["input_shape"] == [8, 8, 1] and rows["mlp"]["num_classes"] == 10


def test_diagnose_rereads_a_run(tmp_path, default_run):
    run_dir, _ = default_run
    assert invoke("diagnose", str(run_dir)).exit_code == 0
    fake = tmp_path / "run"
    fake.mkdir()
    metrics = {
        "train": {"loss": 0.4, "accuracy": 0.85},
        "dev": {"loss": 0.45, "accuracy": 0.84},
        "test": {"loss": 0.45, "accuracy": 0.84},
        "split": {"train": 60, "dev": 20, "test": 20},
    }
    (fake / "metrics.json").write_text(json.dumps(metrics))
    result = invoke("diagnose", str(fake))
    assert result.exit_code == 0 and "high bias" in result.output
    assert "**high bias**" in (fake / "diagnosis.md").read_text()
    result = invoke("diagnose", str(fake), "--bayes-error", "0.14")  # 15% train error is near optimal
    assert result.exit_code == 0 and "**fine**" in (fake / "diagnosis.md").read_text()


def test_gradcheck_cli_passes_and_fails_by_threshold():
    result = invoke("gradcheck", "--recipe", "mlp", "--set", "l2=0.5")
    assert result.exit_code == 0, result.output
    assert "good" in result.output and "passed" in result.output
    strict = invoke("gradcheck", "--recipe", "cnn", "--threshold", "1e-15")
    assert strict.exit_code == 1
    assert "FAILED" in strict.output


def test_help_does_not_import_tensorflow():
    code = (
        "import runpy, sys\n"
        "sys.argv = ['cli.py', '--help']\n"
        "try:\n    runpy.run_path('cli.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print('TF' if 'tensorflow' in sys.modules or 'keras' in sys.modules else 'CLEAN')\n"
    )
    for argv in ("'--help'", "'train', '--help'"):
        completed = subprocess.run(
            [sys.executable, "-c", code.replace("'--help'", argv)], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert completed.stdout.strip().splitlines()[-1] == "CLEAN", completed.stdout + completed.stderr


# --- bad input: one line naming the problem and the fix, exit 2, no traceback, no run directory ---


def write_text(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    one_class = tmp_path / "one_class"
    (one_class / "cats").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(one_class / "cats" / "a.png")
    broken = tmp_path / "broken"
    for label in ("a", "b"):
        (broken / label).mkdir(parents=True)
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(broken / label / "ok.png")
    (broken / "b" / "bad.png").write_bytes(b"not a png at all")
    no_y = tmp_path / "no_y.npz"
    np.savez(no_y, x=np.zeros((10, 2), np.float32))
    return {
        "missing file": (["--data", str(tmp_path / "nope.csv")], "does not exist"),
        "empty csv": (["--data", write_text(tmp_path / "empty.csv", "")], "empty"),
        "nan in csv": (["--data", write_text(tmp_path / "nan.csv", "x,label\n1,0\nnan,1\n2,1\n")], "x"),
        "text in csv": (["--data", write_text(tmp_path / "text.csv", "x,label\n1,0\nabc,1\n2,1\n")], "abc"),
        "missing label": (["--data", write_text(tmp_path / "nolabel.csv", "x,y\n1,0\n2,1\n")], "--label"),
        "single class": (["--data", write_text(tmp_path / "single.csv", "x,label\n1,0\n2,0\n3,0\n")], "class"),
        "npz without y": (["--data", str(no_y)], "y"),
        "one image class": (["--data", str(one_class)], "class"),
        "unreadable image": (["--data", str(broken)], "bad.png"),
        "unknown recipe": (["--recipe", "transformer"], "recipe"),
        "misspelled key": (["--set", "dropuot=0.2"], "did you mean 'dropout'"),
        "dropout 1": (["--set", "dropout=1"], "dropout"),
        "negative learning rate": (["--learning-rate", "-0.1"], "learning_rate"),
        "zero epochs": (["--epochs", "0"], "epochs"),
        "zero batch size": (["--batch-size", "0"], "batch_size"),
        "missing config file": (["--config", str(tmp_path / "none.yaml")], "does not exist"),
    }


BAD_INPUT_NAMES = [
    "missing file",
    "empty csv",
    "nan in csv",
    "text in csv",
    "missing label",
    "single class",
    "npz without y",
    "one image class",
    "unreadable image",
    "unknown recipe",
    "misspelled key",
    "dropout 1",
    "negative learning rate",
    "zero epochs",
    "zero batch size",
    "missing config file",
]


@pytest.mark.parametrize("case", BAD_INPUT_NAMES)
def test_bad_input_is_one_clear_line(tmp_path, case):
    args, expected = bad_inputs(tmp_path)[case]
    out = tmp_path / "runs"
    result = invoke("train", *args, "--out", str(out), "-q")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert not (out / "train").exists() or list((out / "train").iterdir()) == []


def test_diagnose_and_gradcheck_bad_input(tmp_path):
    result = invoke("diagnose", str(tmp_path / "no-run"))
    assert result.exit_code == 2 and "does not exist" in result.stderr
    (tmp_path / "half").mkdir()
    result = invoke("diagnose", str(tmp_path / "half"))
    assert result.exit_code == 2 and "metrics.json" in result.stderr
    for option, value in (
        ("--examples", "0"),
        ("--epsilon", "0"),
        ("--threshold", "-1"),
        ("--samples-per-tensor", "0"),
    ):
        line = error_line(invoke("gradcheck", option, value))
        assert option in line, line


def test_the_kept_epoch_is_shown_recorded_and_marked(tmp_path):
    """Early stopping restores the lowest dev loss: the run says which epoch it kept, metrics.json records it, and
    its metrics are that epoch's (the dev loss in metrics.json equals that epoch's history row)."""
    import csv

    result = runner.invoke(
        cli.app,
        [
            "train",
            "--data",
            "iris",
            "--epochs",
            "60",
            "--out",
            str(tmp_path),
            "--set",
            "patience=3",
            "--learning-rate",
            "0.05",
        ],
    )
    assert result.exit_code == 0, result.output
    run = tmp_path / "train" / "iris-mlp-1"
    metrics = json.loads((run / "metrics.json").read_text())
    rows = list(csv.DictReader((run / "history.csv").open()))
    kept = metrics["best_epoch"]
    dev_losses = [float(row["dev_loss"]) for row in rows]
    assert kept == _kept_and_last_progress(rows)[0]
    assert metrics["dev"]["loss"] == pytest.approx(dev_losses[kept - 1], rel=1e-4, abs=1e-6)
    if kept < len(rows):
        assert f"restored the weights of epoch {kept}" in result.output


def test_variance_remedies_do_not_advise_early_stopping_that_was_on():
    from recipes.diagnosis import diagnose, with_early_stopping

    plain = diagnose(0.01, 0.10)
    assert any(remedy.startswith("early stopping (stop when") for remedy in plain.remedies)
    stopped = with_early_stopping(diagnose(0.01, 0.10))
    assert not any(remedy.startswith("early stopping (stop when") for remedy in stopped.remedies)
    assert any("early stopping is already on" in remedy for remedy in stopped.remedies)
    assert len(stopped.remedies) == len(plain.remedies)
