"""The recipe catalogue: what ``python cli.py recipes`` lists."""

from __future__ import annotations

from typing import Any

from recipes.config import resolve_config
from recipes.data import load_dataset
from recipes.models import BUILDERS, DataSpec, build_model

DESCRIPTIONS = {
    "mlp": "multilayer perceptron: z-score, hidden dense layers (hidden_units, activation), softmax",
    "cnn": "convnet: z-score, conv blocks with max pooling (conv_filters), dense head, softmax",
}


def describe_recipes(data: str | None = None, assignments: list[str] | None = None) -> list[dict[str, Any]]:
    """Each recipe with its parameter count for the default config on ``data`` (default digits).

    Returns:
        One dict per recipe: name, description, parameters, input_shape, num_classes, data.
    """
    from recipes.backend import import_keras

    import_keras()
    rows = []
    for name in BUILDERS:
        config = resolve_config(None, {"recipe": name, "data": data}, assignments)
        dataset = load_dataset(config.data, config.label, config.image_size)
        spec = DataSpec(dataset.input_shape, dataset.num_classes)
        model = build_model(config, spec)
        rows.append(
            {
                "name": name,
                "description": DESCRIPTIONS[name],
                "parameters": int(model.count_params()),
                "input_shape": list(dataset.input_shape),
                "num_classes": dataset.num_classes,
                "data": config.data,
            }
        )
    return rows
