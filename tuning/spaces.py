"""Search spaces as data: one default per recipe, overridable by a YAML file.

A space maps a key to a dimension::

    learning_rate: {type: float, min: 1.0e-4, max: 1.0e-1, log: true}   # alpha = 10^r, r ~ U[-4, -1]
    one_minus_beta: {type: float, min: 1.0e-3, max: 1.0e-1, log: true}  # beta in [0.9, 0.999]
    units: {type: int, min: 16, max: 256, log: true}
    batch_size: {type: choice, values: [32, 64, 128, 256]}

``type`` is ``float``, ``int`` or ``choice`` (inferred when left out: ``values`` makes a choice, an
integer config field an int, anything else a float); ``log: true`` samples uniformly in log10 space;
``step`` turns a range into a finite grid (multiplicative when ``log``).

Keys are :class:`~recipes.config.TrainConfig` fields plus these derived keys:

- ``layers``, ``units``: ``hidden_units = [units] * layers`` (the one not searched comes from the
  base config).
- ``conv_blocks``, ``filters`` (cnn): ``conv_filters = [filters * 2**i for i in range(conv_blocks)]``.
- ``one_minus_beta``: 1 - beta of the chosen optimizer's moving average, in the seed's notation:
  ``momentum`` for momentum, ``rho`` for rmsprop, ``beta_1`` for adam (sgd has none). Sampling
  1 - beta on a log scale spends as many trials on beta in [0.99, 0.999] as in [0.9, 0.99].
- ``one_minus_momentum``, ``one_minus_rho``, ``one_minus_beta_1``, ``one_minus_beta_2``: 1 - that field.

``recipe`` may be searched too, as a choice of recipes (the way Edge Impulse's EON Tuner searches the model
family along with the signal processing); a space may then hold any key of any of its recipes, and a key is
*active* in a trial only when the trial's recipe has it (``front_end`` only for a recipe that takes more than raw
windows, see :attr:`recipes.registry.Recipe.front_ends`). The tuner declares such keys under a keras-tuner
conditional scope, and an inactive key (:func:`active_values`) reaches neither the trial's config nor its row of
``trials.csv``.

:func:`config_for` maps sampled values onto the same :class:`TrainConfig` that ``train`` uses. Every
mistake raises :class:`~edge.device.errors.UserError` naming the key and the fix. No TensorFlow here.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edge.device.errors import UserError, closest
from recipes.config import FIELDS, TrainConfig, apply_overrides, validate
from recipes.registry import CONV_BLOCKS, DENSE_HEAD, REFERENCE, REGISTRY, ROCKET, recipe_named
from recipes.safe_yaml import read_yaml

KINDS = ("float", "int", "choice")
ENTRY_FIELDS = ("type", "min", "max", "log", "step", "values")

# Keys that only some recipes have; every other key applies to every recipe.
DENSE_HEAD_KEYS = ("layers", "units")
CNN_KEYS = ("convs_per_block", "kernel_size", "pool_size", "conv_blocks", "filters")
REFERENCE_KEYS = ("width_multiplier", "blocks", "bottleneck_units")
ROCKET_KEYS = ("rocket_features", "rocket_ramp")
# Fixed for a whole search: why, and how to set them instead.
FIXED_KEYS = {
    "data": "choose it with --data",
    "label": "choose it with --label",
    "image_size": "set it with --set image_size=H,W",
    "split": "set it with --set split=...",
    "seed": "set it with --seed",
    "epochs": "each trial's epoch cap is --max-epochs",
    "out": "set it with --out",
    "name": "set it with --name",
    "bayes_error": "set it with --set bayes_error=...",
    "normal_class": "set it with --set normal_class=...",
    "hidden_units": "search 'layers' and 'units' instead",
    "conv_filters": "search 'conv_blocks' and 'filters' instead",
}
# Derived key -> the config field it sets to 1 - value.
ONE_MINUS = {
    "one_minus_momentum": "momentum",
    "one_minus_rho": "rho",
    "one_minus_beta_1": "beta_1",
    "one_minus_beta_2": "beta_2",
}
# The beta that ``one_minus_beta`` sets, per optimizer (the seed's beta of each update rule).
BETA_OF_OPTIMIZER = {"momentum": "momentum", "rmsprop": "rho", "adam": "beta_1"}
DERIVED_INT_KEYS = ("layers", "units", "conv_blocks", "filters")
DERIVED_KEYS = (*DERIVED_INT_KEYS, "one_minus_beta", *ONE_MINUS)
# Pairs that set the same config field twice.
CONFLICTS = (
    *((derived, field) for derived, field in ONE_MINUS.items()),
    *(("one_minus_beta", other) for other in ("momentum", "rho", "beta_1")),
    ("one_minus_beta", "one_minus_momentum"),
    ("one_minus_beta", "one_minus_rho"),
    ("one_minus_beta", "one_minus_beta_1"),
)


@dataclass(frozen=True)
class Dimension:
    """One searched key: a float or int range, or a choice of values.

    Attributes:
        key: the space key (a config field or a derived key).
        kind: ``"float"``, ``"int"`` or ``"choice"``.
        low: smallest value of a range (None for a choice).
        high: largest value of a range (None for a choice).
        log: sample uniformly in log10 space.
        step: grid step of a range (multiplicative when ``log``); None: continuous.
        values: the values of a choice, in order.
    """

    key: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    values: tuple[Any, ...] | None = None

    @property
    def continuous(self) -> bool:
        """Whether this is a float range without a step (no finite grid)."""
        return self.kind == "float" and self.step is None

    def to_dict(self) -> dict[str, Any]:
        """The YAML form of this dimension."""
        if self.kind == "choice":
            return {"type": "choice", "values": list(self.values or ())}
        entry: dict[str, Any] = {"type": self.kind, "min": self.low, "max": self.high, "log": self.log}
        if self.step is not None:
            entry["step"] = self.step
        return entry

    def describe(self) -> str:
        """A short text such as ``float [0.0001, 0.1] log`` or ``choice {adam, momentum}``."""
        if self.kind == "choice":
            return "choice {" + ", ".join(str(value) for value in self.values or ()) + "}"
        scale = " log" if self.log else ""
        step = f" step {self.step:g}" if self.step is not None else ""
        return f"{self.kind} [{self.low:g}, {self.high:g}]{scale}{step}"


Space = dict[str, Dimension]


def default_space(recipe: str) -> Space:
    """The default space of ``recipe``: its registry row's (:mod:`recipes.registry`), in the seed's order of
    importance: the learning rate first (log scale, alpha = 10^r), then beta (as 1 - beta on a log scale), hidden
    units and mini-batch size (powers of two), then layers and the decay schedule, then regularization (dropout,
    L2 lambda on a log scale) and the optimizer. The cnn adds its filters and conv blocks; a recipe without a
    dense head (the reference architectures) searches the optimization keys only.

    Args:
        recipe: a recipe name, e.g. ``"mlp"`` or ``"cnn"``.

    Returns:
        The space, ordered as searched.
    """
    return space_from_data(recipe_named(recipe).space)


KEY_GROUPS = {DENSE_HEAD: DENSE_HEAD_KEYS, CONV_BLOCKS: CNN_KEYS, REFERENCE: REFERENCE_KEYS, ROCKET: ROCKET_KEYS}


def _recipe_lacks(recipe: str, key: str) -> bool:
    """Whether ``key`` belongs to a group of recipe-specific keys that ``recipe`` does not have."""
    groups = recipe_named(recipe).key_groups
    return any(key in keys and group not in groups for group, keys in KEY_GROUPS.items())


def applies(key: str, recipe: str) -> bool:
    """Whether space key ``key`` is a setting of ``recipe`` (``recipe`` and Hyperband's ``tuner/`` keys always
    are; ``front_end`` only for a recipe that takes more than one front end)."""
    if key == "recipe" or key.startswith("tuner/"):
        return True
    if key == "front_end":
        return len(recipe_named(recipe).front_ends) > 1
    return not _recipe_lacks(recipe, key)


def searchable_keys(recipe: str) -> list[str]:
    """Every key a space of ``recipe`` alone may hold (config fields and derived keys)."""
    keys = [name for name in FIELDS if name not in FIXED_KEYS and name != "recipe"] + list(DERIVED_KEYS)
    return [key for key in keys if applies(key, recipe)]


def searched_recipes(space: Mapping[str, Dimension], recipe: str) -> tuple[str, ...]:
    """The recipes a search over ``space`` trains: its ``recipe`` choice, else ``recipe`` (the base config's)."""
    if "recipe" in space:
        return tuple(space["recipe"].values or ())
    return (recipe,)


def active_values(values: Mapping[str, Any], recipe: str) -> dict[str, Any]:
    """The values of a trial that its recipe uses: ``values["recipe"]`` when searched, else ``recipe``. Values of
    keys the trial's recipe lacks (and the None keras-tuner returns for an inactive key) are dropped."""
    chosen = str(values.get("recipe", recipe))
    return {key: value for key, value in values.items() if value is not None and applies(key, chosen)}


def family_space(recipes: tuple[str, ...]) -> Space:
    """The default space of a search over several recipes: the recipe choice, the front ends any of them takes
    (when more than raw windows), then the union of their default spaces (the first recipe's range of a shared
    key)."""
    data: dict[str, Any] = {"recipe": {"type": "choice", "values": list(recipes)}}
    front_ends = [end for end in ("raw", "spectral") if any(end in recipe_named(r).front_ends for r in recipes)]
    if len(front_ends) > 1:
        data["front_end"] = {"type": "choice", "values": front_ends}
    for recipe in recipes:
        for key, entry in recipe_named(recipe).space.items():
            data.setdefault(key, entry)
    return space_from_data(data)


def load_space(path: str | Path, recipe: str, base: TrainConfig | None = None) -> Space:
    """Read a YAML space file; it replaces the recipe's default space.

    Args:
        path: the YAML file, a mapping of key to dimension.
        recipe: the recipe searched (decides which keys exist) unless the file searches ``recipe`` itself.
        base: the fixed config the values are applied to. Defaults to the config defaults.

    Returns:
        The checked space.

    Raises:
        UserError: the file is missing, not YAML, or describes an invalid space.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"space file {path} does not exist; pass an existing YAML file to --space")
    data = read_yaml(path, "space file")
    if not isinstance(data, dict) or not data:
        raise UserError(f"space file {path} must map each searched key to a range or a choice")
    return parse_space(data, recipe, base)


def parse_space(data: Mapping[str, Any], recipe: str, base: TrainConfig | None = None) -> Space:
    """Turn plain data (YAML) into a checked space.

    Args:
        data: mapping of key to ``{type, min, max, log, step}`` or ``{type: choice, values}``.
        recipe: the recipe searched, unless ``data`` searches ``recipe`` itself.
        base: the fixed config the values are applied to. Defaults to the config defaults.

    Returns:
        The space, in the order of ``data``.

    Raises:
        UserError: an unknown or fixed key, a malformed entry, an empty or inverted range, a log
            range that includes 0, conflicting keys, or a value the recipe would reject.
    """
    recipes: tuple[str, ...] = (recipe,)
    if "recipe" in data:
        recipes = searched_recipes({"recipe": _parse_entry("recipe", data["recipe"], recipes)}, recipe)
    space = {str(key): _parse_entry(str(key), entry, recipes) for key, entry in data.items()}
    check_space(space, recipe, base or TrainConfig(recipe=recipe))
    return space


def _check_key(key: str, recipes: tuple[str, ...]) -> None:
    if key in FIXED_KEYS:
        raise UserError(f"space key '{key}' cannot be searched; {FIXED_KEYS[key]}")
    if key == "recipe":
        return
    valid = sorted({name for recipe in recipes for name in searchable_keys(recipe)})
    which = f"the {recipes[0]} recipe" if len(recipes) == 1 else f"any of the recipes {', '.join(recipes)}"
    if key not in valid:
        if any(not applies(key, recipe) for recipe in REGISTRY):
            raise UserError(
                f"space key '{key}' is not a setting of {which}{closest(key, valid)}; remove it from --space FILE"
            )
        raise UserError(
            f"space key '{key}' is not a setting of {which}{closest(key, valid)} (searchable: {', '.join(valid)})"
        )


def _parse_entry(key: str, entry: Any, recipes: tuple[str, ...]) -> Dimension:
    _check_key(key, recipes)
    if isinstance(entry, list):
        entry = {"values": entry}
    if not isinstance(entry, dict):
        raise UserError(
            f"space key '{key}' needs a mapping, e.g. {{min: 0.0001, max: 0.1, log: true}} or "
            f"{{values: [a, b]}}; got {entry!r}"
        )
    for field_name in entry:
        if field_name not in ENTRY_FIELDS:
            raise UserError(
                f"space key '{key}' has unknown field '{field_name}'{closest(str(field_name), ENTRY_FIELDS)} "
                f"(fields: {', '.join(ENTRY_FIELDS)})"
            )
    kind = str(entry.get("type") or ("choice" if "values" in entry else _default_kind(key))).lower()
    if kind not in KINDS:
        raise UserError(f"space key '{key}' has type '{kind}'{closest(kind, KINDS)} (choose from: {', '.join(KINDS)})")
    if kind == "choice":
        return _parse_choice(key, entry)
    if key in ("recipe", "front_end"):
        raise UserError(
            f"space key '{key}' is a choice: give its values, e.g. {{values: [{', '.join(_EXAMPLES[key])}]}}"
        )
    return _parse_range(key, kind, entry)


_EXAMPLES = {"recipe": ("cnn1d", "minirocket", "mlp"), "front_end": ("raw", "spectral")}


def _default_kind(key: str) -> str:
    if key in DERIVED_INT_KEYS:
        return "int"
    annotation = typing.get_type_hints(TrainConfig).get(key)
    return "int" if annotation is int or int in typing.get_args(annotation) else "float"


def _parse_choice(key: str, entry: dict[str, Any]) -> Dimension:
    extra = [name for name in ("min", "max", "log", "step") if name in entry]
    if extra:
        raise UserError(f"space key '{key}' is a choice: give only 'values', not {', '.join(extra)}")
    values = entry.get("values")
    if not isinstance(values, list) or not values:
        raise UserError(f"space key '{key}' has an empty choice; list at least one value, e.g. values: [a, b]")
    coerced = [_coerce_value(key, value) for value in values]
    if len({type(value) for value in coerced}) > 1:
        raise UserError(f"space key '{key}': the values {values} mix types; give values of one type")
    if len(set(coerced)) != len(coerced):
        raise UserError(f"space key '{key}' lists a value twice in {values}; list each value once")
    return Dimension(key, "choice", values=tuple(coerced))


def _number(key: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or value is None:
        raise UserError(f"space key '{key}' needs a number for '{name}', got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"space key '{key}' needs a number for '{name}', got {value!r}") from None
    if not math.isfinite(number):
        raise UserError(f"space key '{key}' needs a finite number for '{name}', got {value!r}")
    return number


def _parse_range(key: str, kind: str, entry: dict[str, Any]) -> Dimension:
    if "values" in entry:
        raise UserError(f"space key '{key}' is a {kind} range: give min and max, or type: choice with values")
    for name in ("min", "max"):
        if name not in entry:
            raise UserError(f"space key '{key}' has no '{name}'; a {kind} range needs min and max")
    low, high = _number(key, "min", entry["min"]), _number(key, "max", entry["max"])
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise UserError(f"space key '{key}': log must be true or false, got {log!r}")
    if kind == "int":
        if not (low.is_integer() and high.is_integer()):
            raise UserError(f"space key '{key}' is an int range but min/max are {low:g}/{high:g}; use whole numbers")
        low, high = int(low), int(high)
    if low > high:
        raise UserError(f"space key '{key}' has an inverted range: min {low:g} > max {high:g}; swap them")
    if low == high:
        raise UserError(
            f"space key '{key}' has an empty range [{low:g}, {high:g}]; "
            f"widen it, or fix the value with --set {key}={low:g}"
        )
    if log and low <= 0:
        raise UserError(
            f"space key '{key}' is sampled on a log scale but its range [{low:g}, {high:g}] includes 0 or less; "
            f"start it above 0 (e.g. min: {high / 1000:g}) or set log: false"
        )
    step = None
    if entry.get("step") is not None:
        step = _number(key, "step", entry["step"])
        if step <= 0 or (log and step <= 1):
            need = "> 1 (a factor)" if log else "> 0"
            raise UserError(f"space key '{key}' has step {step:g}; a {'log ' if log else ''}step must be {need}")
        if kind == "int":
            if not step.is_integer():
                raise UserError(f"space key '{key}' is an int range; its step must be a whole number, got {step:g}")
            step = int(step)
    return Dimension(key, kind, low, high, log, step)


def _coerce_value(key: str, value: Any) -> Any:
    """A choice value converted to the type of the config field it sets."""
    if key in DERIVED_INT_KEYS or key in ONE_MINUS or key == "one_minus_beta":
        kind = "int" if key in DERIVED_INT_KEYS else "float"
        number = _number(key, "values", value)
        if kind == "int":
            if not number.is_integer():
                raise UserError(f"space key '{key}' takes whole numbers, got {value!r}")
            return int(number)
        return number
    return getattr(apply_overrides(TrainConfig(), {key: value}), key)


def _samples(dimension: Dimension) -> list[Any]:
    """The values whose validity stands for the whole dimension: both ends, or every choice."""
    if dimension.kind == "choice":
        return list(dimension.values or ())
    return [dimension.low, dimension.high]


def check_space(space: Space, recipe: str, base: TrainConfig) -> None:
    """Check keys, conflicts and that every end of every range gives a valid recipe config.

    Raises:
        UserError: naming the first problem and its fix.
    """
    if not space:
        raise UserError("the search space is empty; give at least one key in --space FILE")
    recipes = searched_recipes(space, recipe)
    for key in space:
        _check_key(key, recipes)
    for first, second in CONFLICTS:
        if first in space and second in space:
            raise UserError(f"space keys '{first}' and '{second}' set the same value; search only one of them")
    for key, dimension in space.items():
        users = [name for name in recipes if applies(key, name)]
        for value in _samples(dimension):
            for name in users:  # a value must suit every recipe whose setting it is
                try:
                    config_for(base, {"recipe": name, key: value})
                except UserError as error:
                    which = f" with recipe {name}" if len(recipes) > 1 else ""
                    raise UserError(f"space key '{key}' = {value!r}{which} is not valid: {error}") from None


def config_for(base: TrainConfig, values: Mapping[str, Any]) -> TrainConfig:
    """Map sampled values (config fields and derived keys) onto ``base``.

    Keys starting with ``tuner/`` (Hyperband's bookkeeping) and keys the trial's recipe does not have
    (:func:`active_values`) are ignored.

    Args:
        base: the fixed part of the config.
        values: space key -> sampled value.

    Returns:
        The validated config a trial trains.
    """
    values = {key: value for key, value in active_values(values, base.recipe).items() if not key.startswith("tuner/")}
    overrides: dict[str, Any] = {}
    layers, units = values.pop("layers", None), values.pop("units", None)
    if layers is not None or units is not None:
        layers = len(base.hidden_units) if layers is None else int(layers)
        units = (base.hidden_units[0] if base.hidden_units else 64) if units is None else int(units)
        overrides["hidden_units"] = [units] * layers
    blocks, filters = values.pop("conv_blocks", None), values.pop("filters", None)
    if blocks is not None or filters is not None:
        blocks = len(base.conv_filters) if blocks is None else int(blocks)
        filters = (base.conv_filters[0] if base.conv_filters else 32) if filters is None else int(filters)
        overrides["conv_filters"] = [filters * 2**block for block in range(blocks)]
    one_minus_beta = values.pop("one_minus_beta", None)
    for key, field_name in ONE_MINUS.items():
        if key in values:
            overrides[field_name] = 1.0 - float(values.pop(key))
    overrides.update(values)
    if one_minus_beta is not None:
        optimizer = str(overrides.get("optimizer", base.optimizer))
        if optimizer in BETA_OF_OPTIMIZER:
            overrides[BETA_OF_OPTIMIZER[optimizer]] = 1.0 - float(one_minus_beta)
    return validate(apply_overrides(base, overrides))


def fields_set_by(space: Space) -> dict[str, str]:
    """Config field -> the space key that sets it (derived keys set one or more fields)."""
    fields = {}
    for key in space:
        if key in ("layers", "units"):
            fields["hidden_units"] = key
        elif key in ("conv_blocks", "filters"):
            fields["conv_filters"] = key
        elif key in ONE_MINUS:
            fields[ONE_MINUS[key]] = key
        elif key == "one_minus_beta":
            fields.update(dict.fromkeys(BETA_OF_OPTIMIZER.values(), key))
        else:
            fields[key] = key
    return fields


def grid_points(space: Space) -> int:
    """How many configurations a grid search enumerates: the product of each dimension's value count (a range
    counts its steps, multiplicative when ``log``; an int range without a step counts every integer).

    Raises:
        UserError: a float range has no step (see :func:`require_grid`).
    """
    require_grid(space)
    total = 1
    for dimension in space.values():
        if dimension.kind == "choice":
            total *= len(dimension.values or ())
            continue
        step = dimension.step if dimension.step is not None else 1
        if dimension.log and dimension.step is not None:
            count = math.floor(math.log(dimension.high / dimension.low) / math.log(step) + 1e-9) + 1
        else:
            count = math.floor((dimension.high - dimension.low) / step + 1e-9) + 1
        total *= max(count, 1)
    return total


def require_grid(space: Space) -> None:
    """Refuse a space that grid search cannot enumerate.

    Raises:
        UserError: a float range has no step.
    """
    for key, dimension in space.items():
        if dimension.continuous:
            raise UserError(
                f"grid search cannot enumerate the continuous range {key} [{dimension.low:g}, {dimension.high:g}]; "
                f"give it explicit values (values: [...]) or a step in --space FILE, or use --tuner random"
            )


def narrow_space(space: Space, best_values: list[Mapping[str, Any]], margin: float = 0.1) -> Space:
    """The next coarse-to-fine round: shrink each range around the best trials' values.

    A continuous range becomes [lowest, highest] of the best trials' values widened by ``margin``
    of the old width on each side (in log10 space where sampled so), clipped to the old range (an
    int range rounds its ends to the nearest whole numbers that still cover the values); a range
    with a step keeps its step and shrinks to exactly the values used. A choice keeps only the
    values the best trials used. A range that shrinks to one value becomes a one-value choice.

    Args:
        space: the space of the finished round.
        best_values: the sampled values of its best trials (at least one).
        margin: fraction of the old width added on each side of a continuous range.

    Returns:
        The narrowed space, same keys and order.
    """
    if not best_values:
        raise UserError("no trial of the previous round completed, so there is nothing to narrow around")
    narrowed = {}
    for key, dimension in space.items():
        used = [values[key] for values in best_values if values.get(key) is not None]
        if not used:
            narrowed[key] = dimension
        elif dimension.kind == "choice":
            narrowed[key] = Dimension(key, "choice", values=tuple(v for v in dimension.values or () if v in used))
        else:
            narrowed[key] = _narrow_range(dimension, used, margin)
    return narrowed


def _narrow_range(dimension: Dimension, used: list[Any], margin: float) -> Dimension:
    to_axis = math.log10 if dimension.log else float
    from_axis = (lambda t: 10.0**t) if dimension.log else float
    low, high = min(used), max(used)
    if dimension.step is None:
        old_low, old_high = to_axis(dimension.low), to_axis(dimension.high)
        pad = margin * (old_high - old_low)
        low = max(dimension.low, from_axis(to_axis(low) - pad))
        high = min(dimension.high, from_axis(to_axis(high) + pad))
        if dimension.kind == "int":  # nearest whole numbers, still covering the values used
            low, high = min(min(used), round(low)), max(max(used), round(high))
    if low == high:
        return Dimension(dimension.key, "choice", values=(low,))
    return Dimension(dimension.key, dimension.kind, low, high, dimension.log, dimension.step)


def space_to_data(space: Space) -> dict[str, dict[str, Any]]:
    """The space as plain data (the YAML file's form)."""
    return {key: dimension.to_dict() for key, dimension in space.items()}


def space_from_data(data: Mapping[str, Any]) -> Space:
    """Rebuild a space written by :func:`space_to_data` (already checked when it was written)."""
    space = {}
    for key, entry in data.items():
        if entry["type"] == "choice":
            space[key] = Dimension(key, "choice", values=tuple(entry["values"]))
        else:
            space[key] = Dimension(key, entry["type"], entry["min"], entry["max"], entry["log"], entry.get("step"))
    return space


def space_yaml(space: Space) -> str:
    """The space as YAML text, keys in search order."""
    return yaml.safe_dump(space_to_data(space), sort_keys=False)
