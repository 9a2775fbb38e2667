"""Results of a search: trial records from keras-tuner's files, trials.csv, importance, plots."""

import csv
import io
import json

import numpy as np
import pytest

from tuning.report import (
    TrialRecord,
    best_records,
    importance,
    plot_trials,
    read_trials,
    trial_line,
    trials_csv,
    write_results,
)
from tuning.spaces import Dimension

SPACE = {
    "learning_rate": Dimension("learning_rate", "float", 1e-4, 1e-1, log=True),
    "units": Dimension("units", "int", 8, 64),
    "optimizer": Dimension("optimizer", "choice", values=("adam", "sgd")),
}


def trial_state(trial_id, values, score, status="COMPLETED", epochs=3.0, seconds=1.5):
    """A trial as keras-tuner 1.4 writes it to trial.json."""

    def metric(value):
        return {"direction": "min", "observations": [{"value": [value], "step": 0}]}

    metrics = {"val_accuracy": metric(score), "epochs_run": metric(epochs), "seconds": metric(seconds)}
    return {
        "trial_id": trial_id,
        "hyperparameters": {"space": [], "values": values},
        "metrics": {"metrics": metrics if status == "COMPLETED" else {}},
        "score": score if status == "COMPLETED" else None,
        "best_step": 0,
        "status": status,
        "message": None if status == "COMPLETED" else "Traceback...\nFailedTrialError: training diverged",
    }


def synthetic_records(count=40, seed=0):
    """Trials whose score depends on the learning rate only (best near 1e-2)."""
    rng = np.random.default_rng(seed)
    records = []
    for index in range(count):
        rate = 10 ** rng.uniform(-4, -1)
        values = {
            "learning_rate": rate,
            "units": int(rng.integers(8, 65)),
            "optimizer": str(rng.choice(["adam", "sgd"])),
        }
        score = 0.95 - 0.2 * (np.log10(rate) + 2) ** 2 + rng.normal(0, 0.005)
        records.append(TrialRecord(1, str(index), "COMPLETED", values, score=float(score), epochs=3, seconds=1.0))
    return records


def test_read_trials_parses_keras_tuner_files(tmp_path):
    for trial_id, values, score, status in [
        ("1", {"learning_rate": 0.01, "units": 16, "optimizer": "adam"}, 0.9, "COMPLETED"),
        ("0", {"learning_rate": 0.001, "units": 32, "optimizer": "sgd", "tuner/epochs": 3}, 0.8, "COMPLETED"),
        ("2", {"learning_rate": 0.1, "units": 8, "optimizer": "sgd"}, None, "FAILED"),
    ]:
        folder = tmp_path / f"trial_{trial_id}"
        folder.mkdir()
        (folder / "trial.json").write_text(json.dumps(trial_state(trial_id, values, score, status)))
    (tmp_path / "trial_3").mkdir()
    (tmp_path / "trial_3" / "trial.json").write_text('{"trial_id": "3", "hyper')  # being written
    records = read_trials(tmp_path, round_number=2)
    assert [record.trial_id for record in records] == ["0", "1", "2"]
    first = records[0]
    assert (first.round, first.score, first.epochs, first.seconds) == (2, 0.8, 3, 1.5)
    assert first.values == {"learning_rate": 0.001, "units": 32, "optimizer": "sgd"}
    assert first.hyperband == {"tuner/epochs": 3}
    assert [record.key for record in best_records(records, "max")] == ["2/1", "2/0"]
    assert [record.key for record in best_records(records, "min")] == ["2/0", "2/1"]
    assert "training diverged" in trial_line(records[2], "val_accuracy")
    assert trial_line(records[1], "val_accuracy", best=0.9).startswith(
        "trial 1 (round 2): val_accuracy 0.9000 (best 0.9000)"
    )


def test_trials_csv_has_one_row_per_trial():
    records = synthetic_records(5)
    records.append(TrialRecord(1, "5", "FAILED", {"learning_rate": 0.1, "units": 8, "optimizer": "sgd"}))
    rows = list(csv.DictReader(io.StringIO(trials_csv(records, list(SPACE), "val_accuracy"))))
    assert len(rows) == 6
    assert list(rows[0]) == ["round", "trial", "status", *SPACE, "val_accuracy", "epochs", "seconds"]
    assert float(rows[0]["val_accuracy"]) == pytest.approx(records[0].score)
    assert rows[5]["status"] == "FAILED" and rows[5]["val_accuracy"] == ""


def test_importance_finds_the_hyperparameter_that_matters():
    ranking = importance(synthetic_records(), SPACE)
    assert [key for key, _ in ranking][0] == "learning_rate"
    assert dict(ranking)["learning_rate"] > 0.6
    assert sum(share for _, share in ranking) == pytest.approx(1.0)
    assert importance(synthetic_records(4), SPACE) == []  # too few trials


def test_importance_counts_hyperbands_budget_separately():
    records = synthetic_records(30)
    for index, record in enumerate(records):
        record.hyperband = {"tuner/epochs": 1 + 2 * (index % 2)}
        record.score = 0.5 + 0.3 * (index % 2)  # only the budget decides, whatever the values
    ranking = dict(importance(records, SPACE))
    assert ranking["budget_epochs"] > 0.8


def test_write_results_files(tmp_path):
    records = synthetic_records(8)
    ranking = write_results(tmp_path, records, SPACE, "val_accuracy", "max")
    assert ranking and (tmp_path / "importance.csv").read_text().startswith("hyperparameter,importance\n")
    for name in ("trials.csv", "plots/trials.png", "plots/importance.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "plots" / "trials.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.rglob(".*.tmp"))  # written atomically, nothing left over


def test_plot_without_numeric_range(tmp_path):
    space = {"optimizer": SPACE["optimizer"]}
    records = [TrialRecord(1, "0", "COMPLETED", {"optimizer": "adam"}, score=0.5, epochs=1, seconds=1.0)]
    plot_trials(records, space, "val_loss", "min", tmp_path / "trials.png")
    assert (tmp_path / "trials.png").is_file()


def test_trials_are_named_as_numbers_with_their_round():
    record = TrialRecord(1, "0007", "COMPLETED", {"units": 8}, score=0.5)
    assert record.label == "7 (round 1)" and record.key == "1/0007"


def test_a_grid_budget_counts_the_grid():
    from tuning.spaces import grid_points

    space = {
        "units": Dimension("units", "choice", values=(8, 16)),
        "layers": Dimension("layers", "int", low=1, high=2),
        "learning_rate": Dimension("learning_rate", "float", low=1e-3, high=1e-1, log=True, step=10),
        "dropout": Dimension("dropout", "float", low=0.0, high=0.5, step=0.25),
    }
    assert grid_points(space) == 2 * 2 * 3 * 3
    assert grid_points({"units": space["units"], "layers": space["layers"]}) == 4


def test_a_search_over_recipes_records_and_ranks_only_the_keys_each_trial_used():
    state = trial_state("0", {"recipe": "cnn1d", "front_end": "raw", "rocket_features": 504, "filters": 8}, 0.9)
    assert TrialRecord.from_state(state, 1).values == {"recipe": "cnn1d", "filters": 8}
    space = {
        "recipe": Dimension("recipe", "choice", values=("cnn1d", "minirocket")),
        "filters": Dimension("filters", "choice", values=(8, 16)),
        "rocket_features": Dimension("rocket_features", "choice", values=(504, 1008)),
        "learning_rate": SPACE["learning_rate"],
    }
    rng = np.random.default_rng(0)
    records = []
    for index in range(30):
        recipe = ("cnn1d", "minirocket")[index % 2]
        values = {"recipe": recipe, "learning_rate": float(10 ** rng.uniform(-4, -1))}
        values |= {"filters": int(rng.choice([8, 16]))} if recipe == "cnn1d" else {"rocket_features": 504}
        score = 0.9 if recipe == "minirocket" else 0.5 + rng.uniform(0, 0.01)
        records.append(TrialRecord(1, str(index), "COMPLETED", values, score=score))
    ranking = dict(importance(records, space))
    assert max(ranking, key=ranking.get) == "recipe"  # the only thing that decides, though half lack each key
    rows = list(csv.DictReader(io.StringIO(trials_csv(records, list(space), "val_accuracy"))))
    assert rows[0]["rocket_features"] == "" and rows[1]["filters"] == ""
