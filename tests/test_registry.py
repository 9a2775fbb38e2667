"""The recipe registry: every row is complete and is what training, tuning, the CLI and the catalogue read."""

import pytest
from typer.testing import CliRunner

import cli
from edge.device.errors import UserError
from recipes.config import RECIPES, TrainConfig, weight_decay_of
from recipes.models import BUILDERS
from recipes.registry import REGISTRY, recipe_named
from recipes.tasks import TASKS
from tuning.spaces import check_space, default_space, searchable_keys


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_row_is_complete_and_consistent(name):
    recipe = REGISTRY[name]
    assert recipe.name == name and recipe.description and recipe.tasks
    assert set(recipe.tasks) <= set(TASKS) and (recipe.tasks == ("anomaly",) or "anomaly" not in recipe.tasks)
    assert BUILDERS[name] is recipe.build_function() and callable(BUILDERS[name])
    assert weight_decay_of(TrainConfig(recipe=name)) == recipe.weight_decay
    space = default_space(name)
    assert list(space) == list(recipe.space)
    assert set(space) <= set(searchable_keys(name))  # its default space only holds keys it has
    check_space(space, name, TrainConfig(recipe=name))


def test_the_rest_of_the_toolkit_reads_the_registry():
    assert RECIPES == tuple(REGISTRY)
    help_text = " ".join(CliRunner().invoke(cli.app, ["train", "--help"]).output.split())
    assert all(name in help_text.replace("│", "").replace(" ", "") for name in REGISTRY)
    with pytest.raises(UserError, match="unknown recipe 'mpl'; did you mean 'mlp'"):
        recipe_named("mpl")
