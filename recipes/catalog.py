"""The recipe catalogue: what ``python cli.py recipes`` lists."""

from __future__ import annotations

from typing import Any

from edge.device.errors import UserError
from recipes.config import resolve_config
from recipes.data import load_config_data
from recipes.macs import count_macs
from recipes.models import DataSpec, build_model
from recipes.reference_models import REFERENCE_SPECS
from recipes.registry import REGISTRY
from recipes.tasks import choose_task

MOTION_SPEC = DataSpec((100, 6), 4)  # cnn1d without data: a 2 s window of the built-in motion set, 4 activities


def describe_recipes(data: str | None = None, assignments: list[str] | None = None) -> list[dict[str, Any]]:
    """Each recipe with its parameter and multiply-accumulate counts for the default config.

    Without ``data``, mlp and cnn are built for digits and each reference recipe for the input it was
    designed for (:data:`recipes.reference_models.REFERENCE_SPECS`); with ``data``, every recipe is
    built for that data.

    Returns:
        One dict per recipe: name, description, parameters, macs (per example), input_shape,
        num_classes (the model's outputs: classes, or a regression's targets), task, data; a recipe that
        cannot learn the data (a classifier-only recipe on a continuous target) has parameters and macs None
        and the reason under ``refused``.
    """
    from recipes.backend import import_keras

    import_keras()
    rows = []
    for name, recipe in REGISTRY.items():
        config = resolve_config(None, {"recipe": name, "data": data}, assignments)
        row = {"name": name, "description": recipe.description, "refused": None}
        if data is None and (name in REFERENCE_SPECS or recipe.series):
            spec = REFERENCE_SPECS.get(name, MOTION_SPEC)
            source = "reference input" if name in REFERENCE_SPECS else "motion windows"
        else:
            dataset = load_config_data(config)
            source, spec = config.data, None
        try:
            if spec is None:
                task = choose_task(config, dataset)[0]
                spec = DataSpec(dataset.input_shape, task.outputs(task.prepare(dataset, config)), task=task.name)
            model = build_model(config, spec)
        except UserError as error:  # a recipe that cannot learn this data: said in its row
            shape = list(dataset.input_shape)
            rows.append(
                {**row, "parameters": None, "macs": None, "input_shape": shape, "num_classes": None, "task": None}
                | {"data": source, "refused": str(error)}
            )
            continue
        rows.append(
            {
                **row,
                "parameters": int(model.count_params()),
                "macs": count_macs(model),
                "input_shape": list(spec.input_shape),
                "num_classes": spec.num_classes,
                "task": spec.task,
                "data": source,
            }
        )
    return rows
