"""`python cli.py tune` end to end for each tuner, killed mid-search with SIGKILL and resumed.

Each test starts the command in a subprocess, waits until keras-tuner has written at least one
completed trial, kills the process, runs the same command again (in this process) and checks that
the search finished, that the trials completed before the kill were not run again, and that every
result file is there. Budgets are tiny: digits, 2-3 epochs per trial, 5-6 trials.
"""

import csv
import json
import math
import os
import signal
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import cli
from recipes.adaptive_defaults import resolves_to
from recipes.config import load_config
from tests.helpers import start_cli
from tuning.search import load_settings
from tuning.spaces import config_for

pytestmark = pytest.mark.slow  # trains many models: left out of the quick subset (-m "not slow")

TIMEOUT = 180
runner = CliRunner()


def tune_args(out: Path, name: str, tuner: str, *extra: str) -> list[str]:
    return ["tune", "--tuner", tuner, "--name", name, "--out", str(out), "--set", "patience=2", *extra]


def trial_states(project: Path) -> dict[str, dict]:
    """keras-tuner's trial.json files of a round, by trial id (files being written are skipped)."""
    states = {}
    for path in project.glob("trial_*/trial.json"):
        try:
            state = json.loads(path.read_text())
        except ValueError:
            continue
        states[state["trial_id"]] = state
    return states


def completed(states: dict[str, dict]) -> dict[str, dict]:
    return {trial_id: state for trial_id, state in states.items() if state["status"] == "COMPLETED"}


def kill_after_first_trial(args: list[str], project: Path, log: Path) -> dict[str, dict]:
    """Run the command in a subprocess and SIGKILL it once a trial has completed."""
    process = start_cli(args, log)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not completed(trial_states(project)):
            assert process.poll() is None, f"the search ended before it could be killed:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no trial completed in {TIMEOUT}s:\n{log.read_text()}"
            time.sleep(0.05)
        assert process.poll() is None, "the search finished before the kill"
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    return completed(trial_states(project))


def kill_and_resume(tmp_path: Path, tuner: str, *extra: str) -> tuple[Path, dict[str, dict], str]:
    """Kill the search mid-way, run the same command again; return the tune dir, the trials
    completed before the kill (with their file times) and the second run's output."""
    out = tmp_path / "runs"
    args = tune_args(out, f"test-{tuner}", tuner, *extra)
    tune_dir = out / "tune" / f"test-{tuner}"
    project = tune_dir / "keras_tuner" / "round-1"
    before = kill_after_first_trial(args, project, tmp_path / "killed.log")
    mtimes = {trial_id: (project / f"trial_{trial_id}" / "trial.json").stat().st_mtime_ns for trial_id in before}
    assert not (tune_dir / "summary.json").exists()
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output
    states = trial_states(project)
    for trial_id, state in before.items():  # completed trials are never run again
        assert states[trial_id] == state
        assert (project / f"trial_{trial_id}" / "trial.json").stat().st_mtime_ns == mtimes[trial_id]
    return tune_dir, before, result.output


def check_results(tune_dir: Path, output: str, trials_per_round: list[int]) -> list[dict]:
    """The files of a finished search; returns the rows of trials.csv."""
    rows = list(csv.DictReader((tune_dir / "trials.csv").open()))
    assert len(rows) == sum(trials_per_round)
    for round_number, count in enumerate(trials_per_round, start=1):
        in_round = [row for row in rows if row["round"] == str(round_number)]
        assert len(in_round) == count
        assert len({row["trial"] for row in in_round}) == count  # no trial twice
        states = trial_states(tune_dir / "keras_tuner" / f"round-{round_number}")
        assert len(states) == count and all(state["status"] == "COMPLETED" for state in states.values())
    assert all(row["status"] == "COMPLETED" and 0 <= float(row["val_accuracy"]) <= 1 for row in rows)
    assert all(int(row["epochs"]) >= 1 and float(row["seconds"]) > 0 for row in rows)
    for name in ("plots/trials.png", "plots/importance.png", "importance.csv", "best.yaml", "search.json"):
        assert (tune_dir / name).stat().st_size > 0, name
    summary = json.loads((tune_dir / "summary.json").read_text())
    best_score = max(float(row["val_accuracy"]) for row in rows)
    assert summary["best"]["score"] == pytest.approx(best_score)
    assert len(summary["rounds"]) == len(trials_per_round)
    assert math.isclose(sum(summary_row["importance"] for summary_row in summary["importance"]), 1.0)
    # The best configuration, retrained as a normal train run that export can take.
    run_dir = Path(summary["run_dir"])
    for name in ("config.yaml", "model.keras", "metrics.json", "data.json", "split.npz"):
        assert (run_dir / name).is_file(), name
    best = load_config(tune_dir / "best.yaml")
    assert resolves_to(best, load_config(run_dir / "config.yaml"))  # the run's auto keys set from the data
    assert best == config_for(load_settings(tune_dir).base, summary["best"]["values"])
    assert f"next: python cli.py export {run_dir}" in output
    assert "best" in output and "importance:" in output
    return rows


def test_random_search_resumes_and_narrows_in_a_second_round(tmp_path):
    tune_dir, before, output = kill_and_resume(
        tmp_path, "random", "--max-trials", "5", "--max-epochs", "2", "--rounds", "2"
    )
    rows = check_results(tune_dir, output, [5, 5])
    assert "epoch budget per round: 5 trials x up to 2 epochs" in output
    assert "round 1: 5 trials" in output and "round 2: 5 trials" in output
    # Round 2 searches inside round 1's ranges, narrowed around its two best trials (top quarter).
    first = yaml.safe_load((tune_dir / "space-round-1.yaml").read_text())
    second = yaml.safe_load((tune_dir / "space-round-2.yaml").read_text())
    round_one = sorted((row for row in rows if row["round"] == "1"), key=lambda row: -float(row["val_accuracy"]))
    best_two = round_one[:2]
    for key, entry in first.items():
        narrowed = second[key]
        if entry["type"] == "choice":
            assert {str(value) for value in narrowed["values"]} == {row[key] for row in best_two}
        elif narrowed["type"] == "choice":
            assert [str(value) for value in narrowed["values"]] == [best_two[0][key]]
        else:
            scale = math.log10 if entry["log"] else float
            used = [float(row[key]) for row in best_two]
            assert entry["min"] <= narrowed["min"] <= min(used) <= max(used) <= narrowed["max"] <= entry["max"]
            if (min(used), max(used)) != (entry["min"], entry["max"]):
                assert scale(narrowed["max"]) - scale(narrowed["min"]) < scale(entry["max"]) - scale(entry["min"])
            for row in rows:
                if row["round"] == "2":
                    assert narrowed["min"] <= float(row[key]) <= narrowed["max"]


def test_hyperband_resumes_with_its_epoch_budget(tmp_path):
    tune_dir, before, output = kill_and_resume(tmp_path, "hyperband", "--max-epochs", "3")
    assert "Hyperband max_epochs 3, factor 3: 2 brackets, 6 trials, 11 epochs in all" in output
    rows = check_results(tune_dir, output, [6])
    budgets = sorted(int(row["budget_epochs"]) for row in rows)
    assert budgets == [1, 1, 1, 3, 3, 3]
    continued = [row for row in rows if row["continues_trial"]]
    assert len(continued) == 1 and int(continued[0]["epochs"]) <= 2  # continues from epoch 1 to 3


def test_grid_search_resumes_over_an_explicit_grid(tmp_path):
    space = tmp_path / "grid.yaml"
    space.write_text(
        "learning_rate: {min: 0.001, max: 0.1, log: true, step: 10}\n"  # 0.001, 0.01, 0.1
        "units: {values: [16, 32]}\n"
    )
    tune_dir, before, output = kill_and_resume(
        tmp_path, "grid", "--space", str(space), "--max-trials", "20", "--max-epochs", "2"
    )
    rows = check_results(tune_dir, output, [6])
    grid = {(float(row["learning_rate"]), int(row["units"])) for row in rows}
    assert len(grid) == 6
    assert {round(rate, 6) for rate, _ in grid} == {0.001, 0.01, 0.1}


def test_bayesian_search_resumes(tmp_path):
    tune_dir, before, output = kill_and_resume(tmp_path, "bayesian", "--max-trials", "5", "--max-epochs", "2")
    check_results(tune_dir, output, [5])


def test_diverging_search_stops_with_one_line(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {values: [1.0e+6, 1.0e+7, 1.0e+8]}\n")
    args = tune_args(tmp_path / "runs", "diverge", "grid", "--space", str(space), "--max-epochs", "1")
    result = runner.invoke(cli.app, [*args, "--set", "optimizer=sgd"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: the search stopped after consecutive failed trials") and "diverged" in line


def test_finished_search_reruns_without_training(tmp_path):
    out = tmp_path / "runs"
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {min: 0.003, max: 0.03, log: true}\nunits: {values: [16]}\n")
    args = tune_args(out, "again", "random", "--space", str(space), "--max-trials", "2", "--max-epochs", "1")
    first = runner.invoke(cli.app, args)
    assert first.exit_code == 0, first.output
    second = runner.invoke(cli.app, args)
    assert second.exit_code == 0, second.output
    assert "2 trials completed" in second.output and "unchanged" in second.output
    assert len(list((out / "train").glob("again-*"))) == 1  # the best run is not retrained
    (tune_dir := out / "tune" / "again").joinpath("summary.json").unlink()  # killed after the run was committed
    (out / "train" / "unrelated-1").mkdir()  # another run made meanwhile is not taken for it
    third = runner.invoke(cli.app, args)
    assert third.exit_code == 0, third.output
    assert "unchanged; its run is" in third.output and "retraining" not in third.output
    assert len(list((out / "train").glob("again-*"))) == 1
    assert json.loads((tune_dir / "summary.json").read_text())["run_dir"].endswith("again-1")
    changed = runner.invoke(cli.app, [*args[:-4], "--max-trials", "2", "--max-epochs", "2"])
    assert changed.exit_code == 2
    assert "holds a search with a different --max-epochs" in changed.output
    reseeded = runner.invoke(cli.app, [*args, "--seed", "1"])
    assert reseeded.exit_code == 2 and "different fixed config (seed)" in reseeded.output


def test_a_series_search_without_a_recipe_tries_recipes_and_front_ends(tmp_path):
    out = tmp_path / "runs"
    args = ["tune", "--data", "motion", "--out", str(out), "--max-trials", "4", "--max-epochs", "2"]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    tune_dir = out / "tune" / "motion-recipes-random"
    rows = list(csv.DictReader((tune_dir / "trials.csv").open()))
    assert len(rows) == 4 and all(row["status"] == "COMPLETED" for row in rows)
    assert len({row["recipe"] for row in rows}) >= 2  # seed 0 draws cnn1d and minirocket; mlp comes below
    for row in rows:  # each trial holds only its recipe's keys
        assert (row["rocket_features"] != "") == (row["recipe"] == "minirocket")
        assert (row["conv_blocks"] != "") == (row["recipe"] == "cnn1d")
        assert (row["front_end"] != "") == (row["recipe"] == "mlp")
    summary = json.loads((tune_dir / "summary.json").read_text())
    run_config = load_config(Path(summary["run_dir"]) / "config.yaml")
    best = summary["best"]["values"]
    assert run_config.recipe == best["recipe"] and run_config.front_end == best.get("front_end", "raw")
    data = json.loads((Path(summary["run_dir"]) / "data.json").read_text())
    assert data["front_end"]["front_end"] == run_config.front_end
    # A trial of the spectral front end trains on the spectral features, and so does its retrained run.
    space = tmp_path / "spectral.yaml"
    space.write_text("recipe: {values: [mlp]}\nfront_end: {values: [spectral]}\nunits: {values: [16, 32]}\n")
    result = runner.invoke(
        cli.app, [*args[:-4], "--space", str(space), "--name", "spectral", "--max-trials", "1", "--max-epochs", "2"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "tune" / "spectral" / "summary.json").read_text())
    data = json.loads((Path(summary["run_dir"]) / "data.json").read_text())
    assert data["front_end"]["front_end"] == "spectral" and data["input_shape"] == [6 * (3 + 8)]
