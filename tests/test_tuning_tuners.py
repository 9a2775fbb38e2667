"""The tuners' oracles, driven directly (no training), and a canary per keras-tuner patch
(tuning/keras_tuner_patches.py): each ``still`` test fails once upstream changes what its patch works around."""

import inspect
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import keras_tuner
import pytest

from edge.device.errors import UserError
from tests.helpers import ROOT
from tuning import keras_tuner_patches
from tuning.tuners import ResumableGridSearchOracle, ResumableRandomSearchOracle

GRID = {"learning_rate": [0.1, 0.01, 0.001], "units": [16, 32], "optimizer": ["adam", "sgd"]}


def make_oracle(oracle_class, directory):
    oracle = oracle_class(objective=keras_tuner.Objective("score", "max"), seed=1, max_trials=None)
    oracle._set_project_dir(str(directory), "grid")
    oracle.verbose = 0
    hp = keras_tuner.HyperParameters()
    for name, values in GRID.items():
        hp.Choice(name, values)
    oracle.update_space(hp)
    return oracle


def run_trials(oracle, count=None):
    """Run up to ``count`` trials to completion; return the values of those run."""
    ran = []
    while count is None or len(ran) < count:
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            break
        ran.append(dict(trial.hyperparameters.values))
        oracle.update_trial(trial.trial_id, {"score": float(len(ran))})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return ran


def interrupted_search(oracle_class, directory):
    """Three trials complete, a fourth starts and the process dies; a new process reloads the oracle."""
    first = make_oracle(oracle_class, directory)
    done = run_trials(first, 3)
    first.create_trial("tuner0")  # running when killed
    second = make_oracle(oracle_class, directory)
    second.reload()
    return done, second


def test_grid_search_resumes_and_covers_the_grid_once(tmp_path):
    done, oracle = interrupted_search(ResumableGridSearchOracle, tmp_path)
    resumed = run_trials(oracle)
    combinations = [tuple(values[name] for name in GRID) for values in done + resumed]
    expected = set(itertools.product(*GRID.values()))
    # The interrupted trial runs again (same values) and every other combination exactly once.
    assert len(combinations) == len(expected) and set(combinations) == expected
    assert len(oracle.trials) == len(expected)
    assert all(trial.status == "COMPLETED" for trial in oracle.trials.values())


def test_plain_keras_tuner_grid_search_still_fails_to_resume(tmp_path):
    # Why ResumableGridSearchOracle exists; when this starts passing upstream, the workaround can go.
    _, oracle = interrupted_search(keras_tuner.oracles.GridSearchOracle, tmp_path)
    with pytest.raises(KeyError):
        run_trials(oracle)


def test_a_completed_trial_listed_as_ongoing_is_not_run_again(tmp_path):
    # keras-tuner's end_trial writes oracle.json before it drops the trial from the ongoing ones;
    # a distributed chief writes nothing after that, so the file can call a finished trial ongoing.
    def stale_search(oracle_class):
        oracle = make_oracle(oracle_class, tmp_path / oracle_class.__name__)
        run_trials(oracle, 2)
        state = json.loads(Path(oracle._get_oracle_fname()).read_text())
        state["ongoing_trials"] = {"tuner0": "0001"}
        Path(oracle._get_oracle_fname()).write_text(json.dumps(state))
        reloaded = make_oracle(oracle_class, tmp_path / oracle_class.__name__)
        reloaded.reload()
        return reloaded.create_trial("tuner0").trial_id

    assert stale_search(keras_tuner.oracles.RandomSearchOracle) == "0001"  # keras-tuner would run it again
    assert stale_search(ResumableRandomSearchOracle) == "0002"


def test_a_trial_created_but_never_recorded_by_the_oracle_is_removed_on_reload(tmp_path):
    """A kill between create_trial's two writes (trial.json, then oracle.json) leaves an orphan trial."""

    def orphaned_search(oracle_class):
        directory = tmp_path / oracle_class.__name__
        oracle = make_oracle(oracle_class, directory)
        run_trials(oracle, 2)
        saved = Path(oracle._get_oracle_fname()).read_text()
        orphan = oracle.create_trial("tuner0").trial_id
        Path(oracle._get_oracle_fname()).write_text(saved)  # as if killed before oracle.json was written
        reloaded = make_oracle(oracle_class, directory)
        reloaded.reload()
        return orphan, reloaded, directory / "grid" / f"trial_{orphan}"

    orphan, plain, folder = orphaned_search(keras_tuner.oracles.RandomSearchOracle)
    assert plain.trials[orphan].status == "RUNNING" and folder.is_dir()  # keras-tuner keeps it for ever
    orphan, resumed, folder = orphaned_search(ResumableRandomSearchOracle)
    assert orphan not in resumed.trials and not folder.exists()
    assert len(run_trials(resumed, 1)) == 1 and len(resumed.trials) == 3


def test_trial_metrics_take_the_best_epoch_by_the_objective():
    from recipes.config import TrainConfig
    from tuning.hypermodel import trial_metrics

    history = {"loss": [1.0, 0.5, 0.4], "val_loss": [0.9, 0.3, 0.6], "val_accuracy": [0.5, 0.8, 0.9]}
    by_loss = trial_metrics(history, "val_loss", "min", 2.0, TrainConfig())
    assert (by_loss["val_loss"], by_loss["val_accuracy"], by_loss["epochs_run"], by_loss["seconds"]) == (0.3, 0.8, 3, 2)
    assert trial_metrics(history, "val_accuracy", "max", 2.0, TrainConfig())["val_accuracy"] == 0.9
    with pytest.raises(keras_tuner.errors.FailedTrialError, match="diverged"):
        trial_metrics({**history, "loss": [1.0, 0.5, float("nan")]}, "val_accuracy", "max", 1.0, TrainConfig())
    with pytest.raises(keras_tuner.errors.FailedTrialError, match="reports no val_accuracy"):
        trial_metrics({"loss": [1.0], "val_loss": [0.9]}, "val_accuracy", "max", 1.0, TrainConfig(recipe="autoencoder"))


def test_keras_tuner_still_writes_json_in_place(tmp_path, monkeypatch):
    """Why apply() swaps save_json: upstream writes the file itself, so a kill mid-write truncates it."""
    renamed = []
    monkeypatch.setattr(os, "replace", lambda *args: renamed.append(args))
    monkeypatch.setattr(os, "rename", lambda *args: renamed.append(args))
    keras_tuner_patches.ORIGINAL_SAVE_JSON(str(tmp_path / "oracle.json"), {"trials": 1})
    assert renamed == [] and json.loads((tmp_path / "oracle.json").read_text()) == {"trials": 1}
    keras_tuner_patches.apply()
    from keras_tuner.src import utils

    assert utils.save_json is keras_tuner_patches.save_json_atomically


def test_keras_tuner_still_counts_infeasible_trials_as_failures(tmp_path):
    """Why InfeasibleIsNotFailureMixin exists: three trials over the budget in a row end a plain search."""

    def three_infeasible(oracle_class):
        oracle = make_oracle(oracle_class, tmp_path / oracle_class.__name__)
        for _ in range(3):
            trial = oracle.create_trial("tuner0")
            oracle.update_trial(trial.trial_id, {"score": 0.5, "feasible": 0.0})
            trial.status = "FAILED"
            oracle.end_trial(trial)

    with pytest.raises(RuntimeError, match="consecutive failures"):
        three_infeasible(keras_tuner.oracles.RandomSearchOracle)
    three_infeasible(ResumableRandomSearchOracle)  # the search goes on


def test_keras_tuner_still_reloads_only_with_its_own_tuner_file():
    """Why reload_if_started exists: upstream decides to reload on the tuner's state file alone."""
    source = inspect.getsource(keras_tuner.engine.base_tuner.BaseTuner.__init__)
    assert "_get_tuner_fname" in source and "reload" in source


def test_an_untested_keras_tuner_version_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(keras_tuner_patches, "version", lambda package: "1.5.0")
    with pytest.raises(UserError, match=r"keras-tuner 1\.5\.0 is installed, but tuning is tested with 1\.4\.8"):
        keras_tuner_patches.apply()


def test_keras_tuner_still_prints_every_failed_trial_s_traceback():
    """Why apply() turns config.DEBUG off: upstream starts with it on (checked in a fresh interpreter)."""
    script = "from keras_tuner.src import config; print(config.DEBUG)"
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.stdout.strip().splitlines()[-1] == "True", completed.stderr[-1000:]


def test_an_untested_keras_tuner_without_the_private_modules_is_refused_before_they_are_imported():
    """A keras-tuner whose private modules moved must give the one-line refusal, not an ImportError."""
    script = (
        "import sys, importlib.metadata\n"
        "importlib.metadata.version = lambda package: '2.0.0'\n"
        "sys.modules['keras_tuner.src.tuners.gridsearch'] = None  # any import of it fails\n"
        "try:\n"
        "    import tuning.keras_tuner_patches\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    last = completed.stdout.strip().splitlines()[-1]
    assert last.startswith("UserError keras-tuner 2.0.0 is installed, but tuning is tested with 1.4.8"), last


def test_keras_tuner_s_chief_still_checks_for_the_end_every_20_seconds():
    """Why serve_oracle exists: upstream's server loop sleeps 20 s between its checks for the end of the search; the
    patch serves the same private servicer (whose names it relies on) and checks every POLL_SECONDS."""
    from keras_tuner.src.distribute import oracle_chief

    source = inspect.getsource(oracle_chief.start_server)
    assert "time.sleep(20)" in source and "exit_chief(oracle)" in source
    assert hasattr(oracle_chief, "OracleServicer") and hasattr(oracle_chief.OracleServicer, "__init__")
