"""The recipe registry: one row per recipe, everything the toolkit knows about it in one place.

A row names the builder (a function ``(config, spec, keras_module) -> keras.Model``, given as
``"module:function"`` so this module imports nothing and any module may read it), what the recipe learns
(its tasks), its description, which groups of config keys apply to it, the reference weight decay it trains
with, and its default search space as data (the format of a ``--space`` file). Adding a recipe is adding a
row here and its builder; training, tuning, the CLI help and ``python cli.py recipes`` read the row (the builder is
imported only when a model is built).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge.device.errors import unknown_choice

# Groups of config keys that only some recipes have (the others ignore them, and a search space may not
# hold them): a dense head (hidden layers), convolution blocks, the reference architectures' width and depth.
DENSE_HEAD = "dense_head"
CONV_BLOCKS = "conv_blocks"
REFERENCE = "reference"
ROCKET = "rocket"
# The time-series front ends (edge.device.windows.FRONT_ENDS): raw windows of samples, or per-window spectral features.
RAW_ONLY = ("raw",)
ANY_FRONT_END = ("raw", "spectral")


def _range(low: float, high: float, kind: str = "float", log: bool = False) -> dict[str, Any]:
    return {"type": kind, "min": low, "max": high, "log": log}


def _choice(*values: Any) -> dict[str, Any]:
    return {"type": "choice", "values": list(values)}


# The seed's order of importance: the learning rate first (alpha = 10^r), then beta (as 1 - beta, log scale),
# hidden units and mini-batch size, then layers and the decay schedule, then regularization and the optimizer.
_LEARNING = {"learning_rate": _range(1e-4, 1e-1, log=True), "one_minus_beta": _range(1e-3, 1e-1, log=True)}
_BATCH = {"batch_size": _choice(32, 64, 128, 256)}
_SCHEDULE = {"schedule": _choice("constant", "inverse_time", "exponential")}
_REGULARIZATION = {"dropout": _range(0.0, 0.5), "l2": _range(1e-3, 1e1, log=True)}
_OPTIMIZER = {"optimizer": _choice("adam", "momentum", "rmsprop")}
_OPTIMIZATION_ONLY = {**_LEARNING, **_BATCH, **_SCHEDULE, **_OPTIMIZER}


def _convnet_space(most_blocks: int) -> dict[str, dict[str, Any]]:
    """The search space of a convnet with a dense head (cnn, cnn1d): up to ``most_blocks`` conv blocks."""
    return {
        **_LEARNING,
        "units": _range(16, 128, "int", log=True),
        **_BATCH,
        "layers": _range(1, 2, "int"),
        "filters": _choice(8, 16, 32),
        "conv_blocks": _range(1, most_blocks, "int"),
        **_SCHEDULE,
        **_REGULARIZATION,
        **_OPTIMIZER,
    }


@dataclass(frozen=True)
class Recipe:
    """One recipe.

    Args:
        name: the ``--recipe`` name.
        description: one line for ``python cli.py recipes``.
        builder: ``"module:function"`` of its builder.
        tasks: what it can learn: ``"classification"``, ``"regression"`` (see :mod:`recipes.tasks`), or
            ``"anomaly"`` alone (its model outputs an anomaly score).
        key_groups: the groups of recipe-specific config keys it has (:data:`DENSE_HEAD`, ...).
        weight_decay: the reference training's weight decay c (Keras ``l2``), used when the config sets none.
        space: the default search space, in search order, as ``--space`` file data.
        front_ends: the time-series front ends whose windows it takes: a convolution over time needs the raw
            samples (``raw``); a dense network also takes the spectral front end's flat features.
        series: its model takes series ``(steps, channels)``, so an ``.npz`` whose ``x`` is 3-D is read as series
            for it (as images for the others).
        check: the recipe's own limits on a config: a function returning the first problem as one line with its
            fix, or None; :func:`recipes.config.validate` calls it after the common checks.
    """

    name: str
    description: str
    builder: str
    tasks: tuple[str, ...] = ("classification",)
    key_groups: tuple[str, ...] = ()
    weight_decay: float = 0.0
    space: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(_OPTIMIZATION_ONLY))
    front_ends: tuple[str, ...] = RAW_ONLY
    series: bool = False
    check: Callable[[Any], str | None] | None = None

    def build_function(self) -> Callable[..., Any]:
        """The builder itself (imports its module)."""
        module, function = self.builder.split(":")
        return getattr(importlib.import_module(module), function)


def _check_cnn(config: Any) -> str | None:
    if not config.conv_filters:
        return "cnn needs at least one conv block; e.g. --set conv_filters=32,64"
    return None


def _check_ds_cnn(config: Any) -> str | None:
    if config.dropout >= 0.5:
        return f"ds_cnn drops 2 x dropout before pooling, so dropout must be < 0.5, got {config.dropout}"
    return None


REGISTRY: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            "mlp",
            "multilayer perceptron: z-score, hidden dense layers (hidden_units, activation), softmax or values",
            "recipes.models:build_mlp",
            tasks=("classification", "regression"),
            key_groups=(DENSE_HEAD,),
            front_ends=ANY_FRONT_END,
            space={
                **_LEARNING,
                "units": _range(16, 256, "int", log=True),
                **_BATCH,
                "layers": _range(1, 3, "int"),
                **_SCHEDULE,
                **_REGULARIZATION,
                **_OPTIMIZER,
            },
        ),
        Recipe(
            "cnn",
            "convnet: z-score, conv blocks with max pooling (conv_filters), dense head, softmax or values",
            "recipes.models:build_cnn",
            tasks=("classification", "regression"),
            key_groups=(DENSE_HEAD, CONV_BLOCKS),
            space=_convnet_space(2),
            check=_check_cnn,
        ),
        Recipe(
            "cnn1d",
            "1-D convnet for sensor windows: z-score, Conv1D-BatchNorm blocks, global pooling, dense head",
            "recipes.models:build_cnn1d",
            tasks=("classification", "regression"),
            key_groups=(DENSE_HEAD, CONV_BLOCKS),
            space=_convnet_space(3),
            series=True,
        ),
        Recipe(
            "minirocket",
            "MiniRocket for series: 84 fixed dilated kernels, biases from training quantiles, ramps, linear head",
            "recipes.minirocket:build_minirocket",
            key_groups=(ROCKET,),
            weight_decay=1e-3,
            series=True,
            space={
                **_LEARNING,
                **_BATCH,
                "rocket_features": _choice(504, 1008, 2016),
                "rocket_ramp": _range(0.02, 0.5, log=True),
                "weight_decay": _range(1e-5, 1e-1, log=True),
                **_SCHEDULE,
                **_OPTIMIZER,
            },
        ),
        Recipe(
            "ds_cnn",
            "MLPerf Tiny keyword spotting: depthwise-separable CNN on 49x10 MFCCs (64 filters, 4 blocks)",
            "recipes.reference_models:build_ds_cnn",
            key_groups=(REFERENCE,),
            weight_decay=1e-4,
            check=_check_ds_cnn,
        ),
        Recipe(
            "mobilenet_v1",
            "MLPerf Tiny visual wake words: MobileNetV1, width 0.25, 13 depthwise-separable blocks",
            "recipes.reference_models:build_mobilenet_v1",
            key_groups=(REFERENCE,),
            weight_decay=1e-4,
        ),
        Recipe(
            "resnet8",
            "MLPerf Tiny image classification: ResNet-8, 3 residual stacks of 16/32/64 filters",
            "recipes.reference_models:build_resnet8",
            key_groups=(REFERENCE,),
            weight_decay=1e-4,
        ),
        Recipe(
            "autoencoder",
            "MLPerf Tiny anomaly detection: dense autoencoder 128x4-8-128x4; outputs the anomaly score",
            "recipes.reference_models:build_autoencoder",
            tasks=("anomaly",),
            key_groups=(REFERENCE,),
            front_ends=ANY_FRONT_END,
        ),
    )
}


def recipe_named(name: str) -> Recipe:
    """The registry row of ``name``.

    Raises:
        UserError: an unknown recipe (the closest name is suggested).
    """
    if name not in REGISTRY:
        raise unknown_choice("recipe", name, REGISTRY)
    return REGISTRY[name]
