"""Config: defaults, YAML, overrides, validation with closest-key suggestions."""

import pytest

from edge.device.errors import UserError
from recipes.config import (
    FIELDS,
    TrainConfig,
    apply_overrides,
    describe_fields,
    load_config,
    parse_assignments,
    resolve_config,
    save_config,
    validate,
)


def test_every_field_is_documented():
    assert len(describe_fields()) == len(FIELDS)
    assert all(meaning.strip() for _, _, meaning in describe_fields())


def test_overrides_are_coerced_to_field_types():
    config = apply_overrides(
        TrainConfig(),
        {
            "hidden_units": "64,32",
            "dropout": "0.25",
            "batch_norm": "true",
            "epochs": "7",
            "split": "0.8,0.1,0.1",
            "batch_size": "full",
            "image_size": "none",
        },
    )
    assert config.hidden_units == [64, 32]
    assert config.dropout == 0.25
    assert config.batch_norm is True
    assert config.epochs == 7
    assert config.split == [0.8, 0.1, 0.1]
    assert config.batch_size == "full"
    assert config.image_size is None
    assert apply_overrides(TrainConfig(), {"batch_size": "128"}).batch_size == 128


def test_unknown_key_suggests_closest():
    with pytest.raises(UserError, match="unknown config key 'dropuot'; did you mean 'dropout'"):
        apply_overrides(TrainConfig(), {"dropuot": 0.2})


def test_yaml_round_trip(tmp_path):
    config = apply_overrides(TrainConfig(), {"recipe": "cnn", "l2": 0.5, "hidden_units": [32]})
    path = tmp_path / "config.yaml"
    path.write_text(save_config(config))
    assert load_config(path) == config


def test_yaml_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1, 2\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="mapping"):
        load_config(listed)
    typo = tmp_path / "typo.yaml"
    typo.write_text("learning_rat: 0.1\n")
    with pytest.raises(UserError, match="did you mean 'learning_rate'"):
        load_config(typo)


def test_resolve_order_file_then_flags_then_set(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\nlearning_rate: 0.1\ndropout: 0.1\n")
    config = resolve_config(path, {"learning_rate": 0.01, "epochs": None}, ["dropout=0.3"])
    assert (config.epochs, config.learning_rate, config.dropout) == (3, 0.01, 0.3)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": 1.5}, "dropout"),
        ({"learning_rate": -0.1}, "learning_rate must be > 0"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"batch_size": 0}, "batch_size must be at least 1"),
        ({"batch_size": "half"}, "batch_size"),
        ({"recipe": "mlpp"}, "unknown recipe 'mlpp'; did you mean 'mlp'"),
        ({"optimizer": "adamw"}, "did you mean 'adam'"),
        ({"split": "0.5,0.2"}, "three positive fractions"),
        ({"split": "0.5,0.2,0.2"}, "add up to 1"),
        ({"momentum": 1.0}, "momentum must be in"),
        ({"l2": -1}, "l2 must be >= 0"),
    ],
)
def test_validation_names_the_problem(overrides, message):
    with pytest.raises(UserError, match=message):
        validate(apply_overrides(TrainConfig(), overrides))


def test_bad_types_and_assignments():
    with pytest.raises(UserError, match="epochs must be an integer or 'auto', got 'many'"):
        validate(apply_overrides(TrainConfig(), {"epochs": "many"}))
    with pytest.raises(UserError, match="dropout=.many. is not valid"):
        apply_overrides(TrainConfig(), {"dropout": "many"})
    with pytest.raises(UserError, match="key=value"):
        parse_assignments(["dropout"])
    assert parse_assignments(["a=1", "split=0.8,0.1,0.1"]) == {"a": "1", "split": "0.8,0.1,0.1"}


def test_run_name():
    assert TrainConfig().run_name() == "digits-mlp"
    assert TrainConfig(data="/x/sensors.csv", recipe="mlp").run_name() == "sensors-mlp"
    assert TrainConfig(name="mine").run_name() == "mine"
    # A folder named for its part of a data set takes its parent's name in front; other names stay as they are.
    assert TrainConfig(data="/x/speech/train", recipe="ds_cnn").run_name() == "speech-train-ds_cnn"
    assert TrainConfig(data="/x/speech/Validation", recipe="ds_cnn").run_name() == "speech-Validation-ds_cnn"
    assert TrainConfig(data="/x/GunPoint_TRAIN.ts", recipe="cnn1d").run_name() == "GunPoint_TRAIN-cnn1d"
