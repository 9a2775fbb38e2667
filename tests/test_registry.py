"""The recipe registry: every row is complete and is what training, tuning, the CLI and the catalogue read."""

import pytest
from typer.testing import CliRunner

import cli
from edge.device.errors import UserError
from recipes.config import TrainConfig, weight_decay_of
from recipes.registry import REGISTRY, Recipe, recipe_named
from recipes.tasks import TASKS
from tuning.spaces import check_space, default_space, searchable_keys


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_row_is_complete_and_consistent(name):
    recipe = REGISTRY[name]
    assert recipe.name == name and recipe.description and recipe.tasks
    assert set(recipe.tasks) <= set(TASKS) and (recipe.tasks == ("anomaly",) or "anomaly" not in recipe.tasks)
    assert callable(recipe.build_function())
    assert weight_decay_of(TrainConfig(recipe=name)) == recipe.weight_decay
    space = default_space(name)
    assert list(space) == list(recipe.space)
    assert set(space) <= set(searchable_keys(name))  # its default space only holds keys it has
    check_space(space, name, TrainConfig(recipe=name))


def test_the_rest_of_the_toolkit_reads_the_registry():
    help_text = " ".join(CliRunner().invoke(cli.app, ["train", "--help"]).output.split())
    assert all(name in help_text.replace("│", "").replace(" ", "") for name in REGISTRY)
    with pytest.raises(UserError, match="unknown recipe 'mpl'; did you mean 'mlp'"):
        recipe_named("mpl")


def build_toy(config, spec, keras_module=None):
    """A toy recipe's builder: the z-score and the task's output layer, nothing between."""
    from recipes.layers import keras_module_or_default, zscore_input
    from recipes.tasks import task_named

    keras = keras_module_or_default(keras_module)
    inputs, x = zscore_input(keras, spec)
    x = keras.layers.Flatten()(x) if len(spec.input_shape) > 1 else x
    return keras.Model(inputs, task_named(spec.task).output_layer(keras, x, config, spec), name="toy")


def test_adding_a_recipe_is_one_registry_row_and_its_builder(monkeypatch, tmp_path):
    """A recipe nobody else knows of: its row (with a check of its own and a search space) is all that training,
    the catalogue, validation and tuning need."""
    row = Recipe(
        "toy",
        "linear model: z-score and the output layer",
        "tests.test_registry:build_toy",
        tasks=("classification", "regression"),
        space={"learning_rate": {"type": "float", "min": 0.001, "max": 0.1, "log": True}},
        check=lambda config: "toy trains 1 to 50 epochs" if config.epochs != "auto" and config.epochs > 50 else None,
    )
    monkeypatch.setitem(REGISTRY, "toy", row)
    runner = CliRunner()
    trained = runner.invoke(
        cli.app, ["train", "--recipe", "toy", "--data", "iris", "--epochs", "3", "--out", str(tmp_path)]
    )
    assert trained.exit_code == 0, trained.output
    assert (tmp_path / "train" / "iris-toy-1" / "model.keras").is_file()
    listed = runner.invoke(cli.app, ["recipes", "--data", "iris"])
    assert "toy" in listed.output and "linear model: z-score and the output layer" in listed.output
    refused = runner.invoke(cli.app, ["train", "--recipe", "toy", "--data", "iris", "--epochs", "60"])
    assert refused.exit_code == 2 and "toy trains 1 to 50 epochs" in refused.stderr
    space = default_space("toy")
    assert list(space) == ["learning_rate"]
    tuned = runner.invoke(
        cli.app,
        ["tune", "--recipe", "toy", "--data", "iris", "--max-trials", "2", "--max-epochs", "2", "--out", str(tmp_path)],
    )
    assert tuned.exit_code == 0, tuned.output
    assert (tmp_path / "tune" / "iris-toy-random" / "best.yaml").is_file()


def test_the_edge_side_knows_every_task_in_one_row_each():
    """The device's task rows are keyed like recipes.tasks.TASKS, every function they name exists, and every variant
    states a tolerance for each task it is exported for."""
    from edge.device.tasks import TASKS as EDGE_TASKS
    from edge.variants import COMPRESSED_VARIANTS, VARIANTS

    assert list(EDGE_TASKS) == list(TASKS)
    for task in EDGE_TASKS.values():
        for role in ("predict", "agrees", "parity"):
            assert callable(task.function(role)), (task.name, role)
    for variant in VARIANTS.values():
        assert set(variant.tolerances) == set(TASKS)
    for variant in COMPRESSED_VARIANTS.values():
        assert set(variant.tolerances) == {"classification"}  # compression fine-tunes classifiers only
