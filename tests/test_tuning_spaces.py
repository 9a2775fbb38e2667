"""Search spaces: parsing and checks, the mapping onto TrainConfig, coarse-to-fine narrowing, budgets.

Everything here is plain Python (no TensorFlow) except the sampling tests, which draw from
keras-tuner's own hyperparameter objects (as its random search does).
"""

import math

import numpy as np
import pytest
import yaml

from edge.device.errors import UserError
from recipes.config import TrainConfig
from tuning.settings import hyperband_budget, plan_lines, resolve_settings, series_space
from tuning.spaces import (
    Dimension,
    active_values,
    config_for,
    default_space,
    fields_set_by,
    load_space,
    narrow_space,
    parse_space,
    require_grid,
    space_from_data,
    space_to_data,
)


def write_space(tmp_path, data):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# --- default spaces ------------------------------------------------------------------------------


@pytest.mark.parametrize("recipe", ["mlp", "cnn"])
def test_default_space_follows_the_seed(recipe):
    space = default_space(recipe)
    keys = list(space)
    assert keys[:2] == ["learning_rate", "one_minus_beta"]  # alpha first, then beta
    assert space["learning_rate"] == Dimension("learning_rate", "float", 1e-4, 1e-1, log=True)
    assert space["one_minus_beta"] == Dimension("one_minus_beta", "float", 1e-3, 1e-1, log=True)
    assert space["l2"].log
    assert all(size & (size - 1) == 0 for size in space["batch_size"].values)  # powers of two
    assert {"units", "layers", "dropout", "schedule", "optimizer"} <= set(keys)
    parse_space(space_to_data(space), recipe)  # the default passes its own checks
    assert space_from_data(space_to_data(space)) == space


def test_cnn_space_searches_filters_and_blocks():
    config = config_for(TrainConfig(recipe="cnn"), {"filters": 8, "conv_blocks": 2, "layers": 1, "units": 32})
    assert config.conv_filters == [8, 16]
    assert config.hidden_units == [32]


# --- the mapping onto TrainConfig ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("optimizer", "field_name"), [("momentum", "momentum"), ("rmsprop", "rho"), ("adam", "beta_1")]
)
def test_one_minus_beta_sets_the_optimizers_beta(optimizer, field_name):
    config = config_for(TrainConfig(), {"optimizer": optimizer, "one_minus_beta": 0.01})
    assert getattr(config, field_name) == pytest.approx(0.99)
    others = {"momentum", "rho", "beta_1"} - {field_name}
    assert all(getattr(config, other) == getattr(TrainConfig(), other) for other in others)


def test_layers_units_and_one_minus_keys_map_onto_fields():
    config = config_for(
        TrainConfig(hidden_units=[64, 64]),
        {"units": 32, "one_minus_beta_2": 1e-3, "learning_rate": 0.01, "tuner/epochs": 3, "batch_size": 128},
    )
    assert config.hidden_units == [32, 32]  # layers from the base config
    assert config.beta_2 == pytest.approx(0.999)
    assert (config.learning_rate, config.batch_size) == (0.01, 128)
    assert config_for(TrainConfig(), {"layers": 3}).hidden_units == [256] * 3


def test_fields_set_by_names_derived_fields():
    fields = fields_set_by(default_space("mlp"))
    assert fields["hidden_units"] in ("units", "layers")
    assert fields["momentum"] == fields["beta_1"] == "one_minus_beta"


# --- bad spaces: one clear line each ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"learning_rat": {"min": 1e-4, "max": 0.1}}, "did you mean 'learning_rate'"),
        ({"kernel_size": {"values": [3, 5]}}, "not a setting of the mlp recipe"),
        ({"seed": {"values": [1, 2]}}, "cannot be searched"),
        ({"hidden_units": {"values": [8]}}, "search 'layers' and 'units' instead"),
        ({"dropout": {"min": 0.3, "max": 0.3}}, "empty range"),
        ({"dropout": {"min": 0.5, "max": 0.1}}, "inverted range"),
        ({"l2": {"min": 0, "max": 1, "log": True}}, "includes 0"),
        ({"learning_rate": {"min": -1, "max": 1, "log": True}}, "includes 0"),
        ({"optimizer": {"values": []}}, "empty choice"),
        ({"optimizer": {"values": ["adam", "adma"]}}, "unknown optimizer 'adma'"),
        ({"dropout": {"min": 0.0, "max": 1.0}}, "dropout is a drop probability"),
        ({"learning_rate": {"min": 1e-4, "max": 0.1, "lgo": True}}, "did you mean 'log'"),
        ({"units": {"min": 8.5, "max": 64}}, "whole numbers"),
        ({"one_minus_beta": {"min": 1e-3, "max": 0.1}, "momentum": {"values": [0.9]}}, "set the same value"),
        ({"batch_size": {"values": [32, 32]}}, "twice"),
        ({"learning_rate": "fast"}, "needs a mapping"),
    ],
)
def test_bad_space_is_one_clear_error(data, message):
    with pytest.raises(UserError, match=message) as error:
        parse_space(data, "mlp")
    assert "\n" not in str(error.value)


def test_space_file_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_space(tmp_path / "missing.yaml", "mlp")
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: {min: [\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_space(bad, "mlp")


def test_space_file_values_are_coerced(tmp_path):
    # PyYAML reads 1e-4 (no dot) as text: it still is a number here.
    path = tmp_path / "space.yaml"
    path.write_text("learning_rate: {min: 1e-4, max: 1e-1, log: true}\nbatch_size: [64, 128]\n")
    space = load_space(path, "mlp")
    assert space["learning_rate"] == Dimension("learning_rate", "float", 1e-4, 0.1, log=True)
    assert space["batch_size"] == Dimension("batch_size", "choice", values=(64, 128))


def test_grid_needs_a_finite_grid():
    with pytest.raises(UserError, match="cannot enumerate the continuous range learning_rate"):
        require_grid(default_space("mlp"))
    require_grid(parse_space({"learning_rate": {"min": 1e-3, "max": 1e-1, "log": True, "step": 10}}, "mlp"))


# --- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tuner": "hyperbnad"}, "unknown tuner 'hyperbnad'; did you mean 'hyperband'"),
        ({"workers": 0}, "--workers must be at least 1"),
        ({"objective": "accuracy"}, "unknown objective"),
        ({"factor": 1}, "--factor must be at least 2"),
        ({"max_trials": 0}, "--max-trials must be at least 1"),
        ({"tuner": "grid"}, "cannot enumerate"),
        ({"assignments": ["epochs=5"]}, "--max-epochs"),
        ({"assignments": ["momentum=0.95"]}, "both fixed with --set and searched"),
        ({"assignments": ["dropuot=0.1"]}, "did you mean 'dropout'"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(UserError, match=message):
        resolve_settings(**options)


def test_anomaly_detector_optimizes_dev_loss():
    assert resolve_settings(recipe="autoencoder").objective == "val_loss"
    assert resolve_settings().objective == "val_accuracy"
    with pytest.raises(UserError, match="anomaly detector.*use --objective val_loss"):
        resolve_settings(recipe="autoencoder", objective="val_accuracy")


def test_distributed_variables_need_workers(monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    with pytest.raises(UserError, match="unset it, or pass --workers N"):
        resolve_settings()
    assert resolve_settings(workers=2).workers == 2


def test_settings_defaults_and_plan(tmp_path):
    settings = resolve_settings(tuner="hyperband", max_epochs=27, out=str(tmp_path), assignments=["patience=3"])
    assert settings.name == "digits-mlp-hyperband"
    assert settings.tune_dir == tmp_path / "tune" / "digits-mlp-hyperband"
    assert (settings.base.epochs, settings.base.name, settings.base.patience) == (27, settings.name, 3)
    plan = "\n".join(plan_lines(settings))
    assert "4 brackets, 70 trials, 375 epochs" in plan
    assert not settings.tune_dir.exists()  # resolving writes nothing


# --- Hyperband's budget --------------------------------------------------------------------------


@pytest.mark.parametrize(("max_epochs", "epochs"), [(10, 120), (27, 375), (81, 1767)])
def test_hyperband_budget_matches_the_measured_figures(max_epochs, epochs):
    assert hyperband_budget(max_epochs, 3).epochs == epochs


@pytest.mark.parametrize(("max_epochs", "factor"), [(3, 3), (9, 3), (27, 3), (30, 4), (50, 2)])
def test_hyperband_budget_matches_keras_tuner(max_epochs, factor):
    from keras_tuner.oracles import HyperbandOracle

    oracle = HyperbandOracle(objective="val_accuracy", max_epochs=max_epochs, factor=factor)
    brackets = oracle._get_num_brackets()
    trials = sum(oracle._get_size(b, r) for b in range(brackets) for r in range(b + 1))
    budget = hyperband_budget(max_epochs, factor)
    assert (budget.brackets, budget.trials) == (brackets, trials)


# --- coarse to fine ------------------------------------------------------------------------------


def test_narrow_space_shrinks_ranges_in_log_space_and_keeps_used_choices():
    space = default_space("mlp")
    best = [
        {"learning_rate": 1e-3, "units": 64, "dropout": 0.2, "optimizer": "adam", "batch_size": 64},
        {"learning_rate": 4e-3, "units": 100, "dropout": 0.3, "optimizer": "rmsprop", "batch_size": 64},
    ]
    narrowed = narrow_space(space, best)
    assert list(narrowed) == list(space)
    rate = narrowed["learning_rate"]
    # [1e-3, 4e-3] widened by 10% of the 3 decades (0.3 decade) on each side, in log10 space.
    assert math.log10(rate.low) == pytest.approx(-3.3)
    assert math.log10(rate.high) == pytest.approx(math.log10(4e-3) + 0.3)
    assert rate.log
    assert narrowed["dropout"].low == pytest.approx(0.15) and narrowed["dropout"].high == pytest.approx(0.35)
    assert narrowed["units"].kind == "int" and narrowed["units"].low <= 64 and narrowed["units"].high >= 100
    assert narrowed["optimizer"].values == ("adam", "rmsprop")
    assert narrowed["batch_size"].values == (64,)
    assert narrowed["layers"] == space["layers"]  # not used by the best trials: unchanged


def test_narrow_space_clips_to_the_old_range_and_collapses_single_values():
    space = {"dropout": Dimension("dropout", "float", 0.0, 0.5), "layers": Dimension("layers", "int", 1, 3, step=1)}
    narrowed = narrow_space(space, [{"dropout": 0.0, "layers": 2}])
    assert narrowed["dropout"].low == 0.0 and narrowed["dropout"].high == pytest.approx(0.05)
    assert narrowed["layers"] == Dimension("layers", "choice", values=(2,))


# --- sampling: what the seed asks of the scales -----------------------------------------------------


def samples(dimension, count=3000):
    """Draw like keras-tuner's random search: the hyperparameter's own sampler, one seed per draw."""
    import keras_tuner

    from tuning.hypermodel import declare

    hp = keras_tuner.HyperParameters()
    declare(hp, dimension)
    (registered,) = hp.space
    return np.asarray([registered.random_sample(seed) for seed in range(count)])


def test_learning_rate_spreads_evenly_over_decades():
    rates = samples(default_space("mlp")["learning_rate"])
    assert rates.min() >= 1e-4 and rates.max() <= 1e-1
    shares = np.histogram(np.log10(rates), bins=[-4, -3, -2, -1])[0] / len(rates)
    assert shares == pytest.approx([1 / 3] * 3, abs=0.035)  # about 4 standard errors
    # A linear draw over the same range would put about 90% in the top decade.
    linear = samples(Dimension("learning_rate", "float", 1e-4, 1e-1))
    assert np.mean(linear >= 1e-2) > 0.85


def test_beta_concentrates_near_one():
    beta = 1.0 - samples(default_space("mlp")["one_minus_beta"])
    assert beta.min() >= 0.9 - 1e-12 and beta.max() <= 0.999 + 1e-12
    # 1 - beta uniform in log space: beta in [0.99, 0.999] as often as in [0.9, 0.99] (10 "averaged
    # values" vs 100 to 1000), where a linear draw of beta would put only 9% of trials.
    assert np.mean(beta >= 0.99) == pytest.approx(0.5, abs=0.035)
    assert np.median(beta) == pytest.approx(0.99, abs=0.004)
    linear = samples(Dimension("momentum", "float", 0.9, 0.999))
    assert np.mean(linear >= 0.99) == pytest.approx(0.09, abs=0.02)


# --- searching the recipe and the front end ------------------------------------------------------------


def test_a_series_search_without_a_recipe_tries_the_series_recipes_and_both_front_ends():
    settings = resolve_settings(data="motion", max_trials=2, max_epochs=1)
    assert settings.name == "motion-recipes-random"
    assert settings.space["recipe"].values == ("cnn1d", "minirocket", "mlp")
    assert settings.space["front_end"].values == ("raw", "spectral")
    for key in ("conv_blocks", "filters", "rocket_features", "rocket_ramp", "units", "learning_rate"):
        assert key in settings.space
    assert "search of cnn1d, minirocket, mlp on motion" in plan_lines(settings)[0]
    named = resolve_settings(data="motion", recipe="cnn1d", max_trials=2, max_epochs=1)
    assert "recipe" not in named.space and "front_end" not in named.space
    tables = resolve_settings(data="digits", max_trials=2, max_epochs=1)
    assert "recipe" not in tables.space


def test_a_regression_series_search_leaves_out_the_classifier_only_recipe():
    space = series_space("regression")
    assert space["recipe"].values == ("cnn1d", "mlp")
    assert "rocket_features" not in space
    spectral = series_space("classification", front_end="spectral")
    assert spectral["recipe"].values == ("mlp",) and "front_end" not in spectral


def test_keys_a_trial_s_recipe_lacks_do_not_reach_its_config():
    base = TrainConfig(recipe="cnn1d", data="motion")
    values = {"recipe": "cnn1d", "front_end": "spectral", "rocket_features": 504, "filters": 8, "conv_blocks": 2}
    config = config_for(base, values)
    assert (config.recipe, config.front_end, config.conv_filters) == ("cnn1d", "raw", [8, 16])
    assert config.rocket_features == TrainConfig().rocket_features
    assert active_values(values, "cnn1d") == {"recipe": "cnn1d", "filters": 8, "conv_blocks": 2}
    mlp = config_for(base, {**values, "recipe": "mlp"})
    assert (mlp.recipe, mlp.front_end, mlp.conv_filters) == ("mlp", "spectral", base.conv_filters)
    rocket = config_for(base, {**values, "recipe": "minirocket", "units": None})
    assert (rocket.recipe, rocket.front_end, rocket.rocket_features) == ("minirocket", "raw", 504)


def test_a_space_over_recipes_holds_the_keys_of_each_and_no_others():
    data = {
        "recipe": {"values": ["cnn1d", "minirocket"]},
        "rocket_ramp": {"min": 0.05, "max": 0.2},
        "conv_blocks": {"min": 1, "max": 2},
    }
    space = parse_space(data, "mlp")
    assert list(space) == ["recipe", "rocket_ramp", "conv_blocks"]
    with pytest.raises(UserError, match="not a setting of any of the recipes cnn1d, minirocket"):
        parse_space({**data, "width_multiplier": {"min": 0.25, "max": 1.0}}, "mlp")
    with pytest.raises(UserError, match="space key 'recipe' is a choice"):
        parse_space({"recipe": {"min": 1, "max": 2}}, "mlp")
    with pytest.raises(UserError, match="unknown recipe 'cnn2d'"):
        parse_space({"recipe": {"values": ["cnn1d", "cnn2d"]}}, "mlp")
    with pytest.raises(UserError, match="space key .front_end. is not a setting of the cnn1d recipe"):
        parse_space({"front_end": {"values": ["raw", "spectral"]}}, "cnn1d")


def test_the_recipe_is_named_once(tmp_path):
    path = write_space(tmp_path, {"recipe": {"values": ["cnn1d", "mlp"]}})
    with pytest.raises(UserError, match="--recipe cnn1d is given and the space searches recipe too"):
        resolve_settings(data="motion", recipe="cnn1d", space_file=path)
    with pytest.raises(UserError, match="recipe is both fixed with --set and searched"):
        resolve_settings(data="motion", space_file=path, assignments=["recipe=mlp"])
