"""Defaults that follow the training-split size, early stopping by the task's measures, and what the diagnosis
finds in the history (a BatchNorm that never settled, a first epoch kept)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml

from edge.device.errors import UserError
from recipes.adaptive_defaults import (
    adapt_to_data,
    batch_norm_momentum_rule,
    batch_size_rule,
    epochs_rule,
    patience_rule,
    steps_per_epoch,
)
from recipes.config import TrainConfig, apply_overrides, validate
from recipes.diagnosis import diagnose, training_findings, with_findings
from recipes.early_stopping import is_better, keep_best, kept_epoch

CLASSIFIER = {"val_accuracy": "max", "val_loss": "min"}
LOSS_ONLY = {"val_loss": "min"}


@pytest.mark.parametrize(
    ("examples", "batch", "steps", "epochs", "patience", "momentum"),
    [
        (34, 16, 3, 500, 100, 0.9),  # a small UCR set: 3 steps an epoch, not 1
        (24, 16, 2, 750, 150, 0.9),
        (10, 16, 1, 1000, 300, 0.9),  # fewer examples than a batch: one full batch a step
        (290, 16, 19, 100, 16, 0.947),
        (648, 64, 11, 137, 28, 0.909),  # the spoken-keyword set of 1,080 clips
        (1078, 64, 17, 100, 18, 0.941),  # digits
        (400, 32, 13, 116, 24, 0.923),
        (60_000, 64, 938, 100, 10, 0.99),  # large sets keep the usual values
    ],
)
def test_rules_follow_the_training_split_size(examples, batch, steps, epochs, patience, momentum):
    assert batch_size_rule(examples) == batch
    assert steps_per_epoch(examples, batch) == steps == math.ceil(examples / min(batch, examples))
    assert epochs_rule(steps) == epochs
    assert epochs * steps >= 1500 or epochs == 1000
    assert patience_rule(steps) == patience and patience * steps >= 300
    assert batch_norm_momentum_rule(steps) == pytest.approx(momentum)
    config, line = adapt_to_data(validate(TrainConfig()), examples)
    assert (config.batch_size, config.epochs, config.patience) == (batch, epochs, patience)
    assert config.batch_norm_momentum == pytest.approx(momentum)
    assert line.startswith(f"defaults for {examples:,} training examples: batch size {batch} ({steps} step")


def test_given_values_win_and_the_line_names_only_what_was_chosen():
    given = {"batch_size": "8", "patience": "5", "batch_norm_momentum": "0.99"}
    config = validate(apply_overrides(TrainConfig(), given))
    adapted, line = adapt_to_data(config, 34)
    assert (adapted.batch_size, adapted.patience, adapted.batch_norm_momentum) == (8, 5, 0.99)
    assert adapted.epochs == epochs_rule(5)  # 34 examples at batch 8: 5 steps an epoch, 300 epochs
    assert line == "defaults for 34 training examples: up to 300 epochs (set a key to override)"
    assert adapt_to_data(adapted, 34) == (adapted, None)  # idempotent
    full = validate(apply_overrides(TrainConfig(), {"batch_size": "full"}))
    assert adapt_to_data(full, 500)[0].patience == 300  # one step an epoch


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("epochs", "many", "epochs must be an integer or 'auto'"),
        ("patience", "-1", "patience must be at least 0"),
        ("batch_size", "half", "batch_size must be a positive integer, 'full' or 'auto'"),
        ("batch_norm_momentum", "1.5", "batch_norm_momentum must be in [0, 1)"),
        ("batch_norm_momentum", "fast", "batch_norm_momentum must be in [0, 1) or 'auto'"),
    ],
)
def test_bad_values_are_one_line(key, value, words):
    with pytest.raises(UserError, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        validate(apply_overrides(TrainConfig(), {key: value}))


def test_a_classifier_keeps_its_highest_dev_accuracy_while_the_dev_loss_rises():
    # The case that rolled keyword spotting back to epoch 1: dev loss rising from the first epoch on.
    history = {"dev_accuracy": [0.30, 0.60, 0.80, 0.80, 0.75], "dev_loss": [1.0, 1.2, 1.5, 1.4, 1.9]}
    assert kept_epoch(history, CLASSIFIER, 0.0) == 4  # 0.80 twice: the lower dev loss
    assert kept_epoch(history, LOSS_ONLY, 0.0) == 1  # what watching the loss alone kept
    assert not is_better([0.8, 1.4], [0.8, 1.4], CLASSIFIER, 0.0)  # a tie keeps the earlier epoch
    assert not is_better([0.8, 1.35], [0.8, 1.4], CLASSIFIER, 0.1)  # min_delta applies to the loss
    assert is_better([0.81, 9.0], [0.8, 1.4], CLASSIFIER, 0.1)
    assert not is_better([math.nan, 0.1], [0.1, 2.0], CLASSIFIER, 0.0)
    assert is_better([0.0, 5.0], None, CLASSIFIER, 0.0)


class _Model:
    """What the callback asks of a model: weights in and out, and the stop flag."""

    def __init__(self) -> None:
        self.weights, self.stop_training = [np.zeros(2)], False

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [w.copy() for w in weights]


def _run(callback, logs):
    model = _Model()
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, entry in enumerate(logs):
        model.weights = [np.full(2, float(epoch))]
        callback.on_epoch_end(epoch, entry)
        if model.stop_training:
            break
    callback.on_train_end()
    return model, epoch


def test_the_callback_stops_when_neither_a_better_epoch_nor_a_lower_loss_came_and_restores_the_best():
    import keras

    logs = [
        {"val_accuracy": 0.5, "val_loss": 1.0},
        {"val_accuracy": 0.7, "val_loss": 1.1},  # better: kept
        {"val_accuracy": 0.6, "val_loss": 0.9},  # not better, but a new lowest loss: waits again
        {"val_accuracy": 0.6, "val_loss": 1.0},
        {"val_accuracy": 0.6, "val_loss": 1.0},  # two epochs without progress: stop (patience 2)
        {"val_accuracy": 0.9, "val_loss": 0.1},
    ]
    callback = keep_best(CLASSIFIER, 2, 0.0, keras)
    model, last = _run(callback, logs)
    assert last == 4 and callback.best_epoch == 1
    np.testing.assert_array_equal(model.weights[0], [1.0, 1.0])  # epoch 2's weights restored
    state = callback.state()
    assert state == {"wait": 2, "best": [0.7, 1.1], "best_epoch": 1, "lowest_loss": 0.9}
    resumed = keep_best(CLASSIFIER, 2, 0.0, keras)
    resumed.restore(state, [np.ones(2)])
    assert (resumed.best, resumed.best_epoch, resumed.lowest_loss, resumed.wait) == ([0.7, 1.1], 1, 0.9, 2)
    resumed.restore({**state, "best": 1.1}, None)  # a checkpoint from when only the dev loss was watched
    assert resumed.best == [1.1]


def test_loss_only_tasks_stop_as_keras_early_stopping_does():
    import keras

    losses = [1.0, 0.8, 0.85, 0.9, 0.7, 0.75, 0.76, 0.77, 0.6]
    ours = keep_best(LOSS_ONLY, 3, 0.0, keras)
    ours_model, _ = _run(ours, [{"val_loss": loss} for loss in losses])
    theirs = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    theirs_model, _ = _run(theirs, [{"val_loss": loss} for loss in losses])
    assert ours.stopped_epoch == theirs.stopped_epoch == 7 and ours.best_epoch == theirs.best_epoch == 4
    np.testing.assert_array_equal(ours_model.weights[0], theirs_model.weights[0])


def test_findings_name_batch_norm_and_a_first_epoch_kept_instead_of_a_bigger_network():
    history = {"epoch": [1, 2, 3], "accuracy": [0.3, 0.6, 0.78], "loss": [2.0, 1.0, 0.6]}
    metrics = {"train": {"accuracy": 0.083, "loss": 2.5}, "dev": {"accuracy": 0.083, "loss": 2.5}}
    found = training_findings(
        history, metrics, 3, batch_norm=True, batch_norm_momentum=0.99, steps_per_epoch=11, learning_rate=0.001
    )
    assert len(found) == 1
    assert "0.083 evaluated but 0.78 in the epoch log at epoch 3" in found[0]["finding"]
    assert "--set batch_norm_momentum=0.9" in found[0]["remedy"] and "11 steps an epoch" in found[0]["remedy"]
    diagnosis = with_findings(diagnose(1 - 0.083, 1 - 0.083), found)
    assert diagnosis.remedies[0] == found[0]["remedy"]
    assert not any(remedy.startswith("bigger network") for remedy in diagnosis.remedies)
    assert "Found in training: the training split's accuracy" in diagnosis.to_markdown()
    first = training_findings(
        history, {"train": {"accuracy": 0.3}}, 1, batch_norm=False, batch_norm_momentum=0.99, steps_per_epoch=3,
        learning_rate=0.01,
    )  # fmt: skip
    assert [item["finding"] for item in first] == [
        "early stopping kept epoch 1 of 3: no later epoch did better on the dev split"
    ]
    assert "--learning-rate 0.001" in first[0]["remedy"]
    settled = training_findings(
        history, {"train": {"accuracy": 0.75}}, 3, batch_norm=True, batch_norm_momentum=0.9, steps_per_epoch=11,
        learning_rate=0.001,
    )  # fmt: skip
    assert settled == []


def test_a_forty_example_set_gets_enough_steps_and_learns(tmp_path):
    """40 examples (24 for training): batch 16 gives 2 steps an epoch, so early stopping waits 150 epochs (300
    steps) instead of 10 epochs (10 steps at batch 64), and the saved config says what was chosen."""
    from recipes.training import train

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    x = rng.normal(size=(40, 6)).astype(np.float32) + 1.5 * y[:, None]
    np.savez(tmp_path / "small.npz", x=x, y=y)
    lines = []
    config = validate(apply_overrides(TrainConfig(), {"data": str(tmp_path / "small.npz"), "out": str(tmp_path)}))
    result = train(config, report=lines.append)
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    chosen = (saved["batch_size"], saved["epochs"], saved["patience"], saved["batch_norm_momentum"])
    assert chosen == (16, 750, 150, 0.9)
    assert "defaults for 24 training examples: batch size 16 (2 steps an epoch), up to 750 epochs" in "\n".join(lines)
    assert any(line.startswith("model mlp:") and "batch 16" in line for line in lines)
    epochs = result.epochs_run
    assert epochs >= 151 and 2 * epochs >= 300  # at least patience + 1 epochs, 300 gradient steps
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["train"]["accuracy"] >= 0.95 and metrics["test"]["accuracy"] >= 0.75


def test_a_resolved_config_is_recognized_as_the_request_it_came_from():
    from recipes.adaptive_defaults import resolves_to

    requested = validate(apply_overrides(TrainConfig(), {"dropout": "0.3"}))
    resolved, _ = adapt_to_data(requested, 1079)
    assert resolves_to(requested, resolved) and not resolves_to(resolved, requested)
    assert not resolves_to(requested, apply_overrides(resolved, {"dropout": "0.1"}))  # another key differs
    given = validate(apply_overrides(TrainConfig(), {"batch_size": "32"}))
    assert not resolves_to(given, adapt_to_data(requested, 1079)[0])  # 32 was given, the run has 64


def test_series_get_cnn1d_when_no_recipe_is_named(tmp_path):
    from recipes.config import resolve_config

    assert resolve_config(None, {"data": "ArrowHead_TRAIN.ts"}).recipe == "cnn1d"
    assert resolve_config(None, {"data": "motion"}).recipe == "cnn1d"
    assert resolve_config(None, {"data": "log.csv"}, ["window_seconds=2"]).recipe == "cnn1d"
    assert resolve_config(None, {"data": "log.csv"}, ["window_seconds=2", "front_end=spectral"]).recipe == "mlp"
    assert resolve_config(None, {"data": "motion", "recipe": "mlp"}).recipe == "mlp"  # a named recipe wins
    assert resolve_config(None, {"data": "motion"}, ["recipe=mlp"]).recipe == "mlp"
    (tmp_path / "my.yaml").write_text("recipe: mlp\ndata: motion\n")
    assert resolve_config(tmp_path / "my.yaml").recipe == "mlp"
    assert resolve_config(None, {"data": "digits"}).recipe == "mlp"  # tables and images keep the default
