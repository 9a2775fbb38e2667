"""What a search is: tuner, epoch budget, objective, rounds, workers, space, fixed config and hardware budget.

:func:`resolve_settings` checks every option before anything is written or TensorFlow is imported,
so a mistake ends with one line and leaves no tune directory behind. :func:`hyperband_budget`
is keras-tuner's Hyperband schedule in plain Python, printed before a search starts.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.device.errors import UserError, unknown_choice
from recipes import adaptive_defaults
from recipes.config import TrainConfig, apply_overrides, is_series, parse_assignments, resolve_config
from recipes.registry import recipe_named
from recipes.rundir import safe_name
from recipes.tasks import AUTO, TASKS, Task, choose_task
from tuning.hardware import Budget
from tuning.spaces import (
    Space,
    check_space,
    default_space,
    family_space,
    fields_set_by,
    grid_points,
    load_space,
    require_grid,
    searched_recipes,
    space_from_data,
    space_to_data,
)

TUNERS = ("random", "hyperband", "grid", "bayesian")
# Objective -> direction. Both are measured on the dev split after every epoch.
OBJECTIVES = {name: direction for task in TASKS.values() for name, direction in task.objectives.items()}
# Settings a resumed search must share with the one on disk (the rest may grow: trials, rounds, workers).
RESUME_KEYS = {
    "tuner": "--tuner",
    "objective": "--objective",
    "max_epochs": "--max-epochs",
    "factor": "--factor",
    "space": "space",
    "base": "fixed config",
    "budget": "hardware budget (--max-int8-kb, --max-arena-kb, --max-latency-ms, --target)",
}


@dataclass
class TuneSettings:
    """A resolved search.

    Attributes:
        base: the fixed training config (recipe, data, seed, ``--set`` values); ``epochs`` is
            ``max_epochs`` and ``name`` the search's name (the best run is ``runs/train/<name>-<n>``).
        space: the first round's space.
        tuner: one of :data:`TUNERS`.
        name: the search's name: its directory is ``<out>/tune/<name>/``.
        max_trials: trials per round (random, grid, bayesian; Hyperband sets its own).
        max_epochs: most epochs one trial trains (Hyperband's ``max_epochs``).
        factor: Hyperband's reduction factor.
        objective: the dev metric to optimize, a key of :data:`OBJECTIVES`.
        rounds: coarse-to-fine rounds; each narrows the space around the previous round's best.
        workers: worker processes beside a chief; None searches in this process.
        budget: the hardware budget each trial's int8 model must meet; None measures nothing.
    """

    base: TrainConfig
    space: Space
    tuner: str
    name: str
    max_trials: int = 10
    max_epochs: int = 27
    factor: int = 3
    objective: str = "val_accuracy"
    rounds: int = 1
    workers: int | None = None
    budget: Budget | None = None

    @property
    def tune_dir(self) -> Path:
        """``<out>/tune/<name>``."""
        return Path(self.base.out) / "tune" / self.name

    @property
    def project_root(self) -> Path:
        """The folder holding one keras-tuner project per round."""
        return self.tune_dir / "keras_tuner"

    def project_dir(self, round_number: int) -> Path:
        """keras-tuner's project folder of a round (its ``oracle.json`` and ``trial_*/``)."""
        return self.project_root / f"round-{round_number}"

    def space_file(self, round_number: int) -> Path:
        """The space searched in a round, as YAML."""
        return self.tune_dir / f"space-round-{round_number}.yaml"

    @property
    def direction(self) -> str:
        """``"max"`` or ``"min"``."""
        return OBJECTIVES[self.objective]

    def to_data(self) -> dict[str, Any]:
        """Plain data for ``search.json`` (read back by :meth:`from_data` and by worker processes)."""
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        data["base"] = self.base.to_dict()
        data["space"] = space_to_data(self.space)
        data["budget"] = self.budget.to_data() if self.budget else None
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> TuneSettings:
        """Rebuild settings written by :meth:`to_data`."""
        values = dict(data)
        values["base"] = apply_overrides(TrainConfig(), values["base"])
        values["space"] = space_from_data(values["space"])
        values["budget"] = Budget.from_data(values["budget"]) if values.get("budget") else None
        return cls(**values)


def resolve_settings(
    *,
    recipe: str | None = None,
    data: str | None = None,
    label: str | None = None,
    task: str | None = None,
    tuner: str = "random",
    max_trials: int = 10,
    max_epochs: int = 27,
    factor: int = 3,
    objective: str | None = None,
    rounds: int = 1,
    workers: int | None = None,
    space_file: str | Path | None = None,
    name: str | None = None,
    out: str | None = None,
    seed: int | None = None,
    assignments: list[str] | None = None,
    max_int8_kb: float | None = None,
    max_arena_kb: float | None = None,
    max_latency_ms: float | None = None,
    target: str | None = None,
) -> TuneSettings:
    """Check the options of ``python cli.py tune`` and build the search's settings (keyword arguments only:
    the CLI passes its flags by name).

    Args:
        recipe, data, label, task, out, seed: as for ``train`` (None: the config default).
        tuner: one of :data:`TUNERS`.
        max_trials: trials per round, at least 1.
        max_epochs: epochs per trial at most, at least 1.
        factor: Hyperband's reduction factor, at least 2.
        objective: a key of :data:`OBJECTIVES` that the task reports while it trains. Defaults to the task's:
            ``val_accuracy`` for a classifier, ``val_loss`` for an anomaly detector or a regression.
        rounds: coarse-to-fine rounds, at least 1.
        workers: worker processes, at least 1; None searches in this process.
        space_file: YAML space replacing the recipe's default space.
        name: the search's name. Defaults to ``<data>-<recipe>-<tuner>``.
        assignments: ``key=value`` strings fixing config fields for every trial.
        max_int8_kb, max_arena_kb, max_latency_ms, target: the hardware budget
            (:meth:`tuning.hardware.Budget.from_options`); all None for a search that measures nothing.

    Returns:
        The settings.

    Raises:
        UserError: naming the first bad option and its fix.
    """
    if tuner not in TUNERS:
        raise unknown_choice("tuner", tuner, TUNERS)
    if objective is not None and objective not in OBJECTIVES:
        raise unknown_choice("objective", objective, OBJECTIVES)
    for option, value, least in (
        ("--max-trials", max_trials, 1),
        ("--max-epochs", max_epochs, 1),
        ("--factor", factor, 2),
        ("--rounds", rounds, 1),
    ):
        if value < least:
            raise UserError(f"{option} must be at least {least}, got {value}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}; leave it out to search in this process")
    if workers is None and os.environ.get("KERASTUNER_ORACLE_IP"):
        raise UserError(
            "KERASTUNER_ORACLE_IP is set, which makes keras-tuner act as a distributed process; "
            "unset it, or pass --workers N"
        )
    budget = Budget.from_options(max_int8_kb, max_arena_kb, max_latency_ms, target)
    fixed = {key.strip().replace("-", "_") for key in parse_assignments(assignments or [])}
    if "epochs" in fixed:
        raise UserError("each trial's epoch cap is --max-epochs; drop --set epochs=...")
    base = resolve_config(
        None, {"recipe": recipe, "data": data, "label": label, "task": task, "seed": seed, "out": out}, assignments
    )
    family = recipe is None and "recipe" not in fixed and not space_file and is_series(base)
    searching = "recipes" if family else base.recipe
    name = safe_name(name or f"{Path(base.data).stem or 'data'}-{searching}-{tuner}")
    base = dataclasses.replace(base, epochs=max_epochs, name=name)
    task = search_task(base)
    if task.name != base.task and base.task == AUTO and len(recipe_named(base.recipe).tasks) > 1:
        base = dataclasses.replace(base, task=task.name)  # every trial and the retrained run learn the same task
    objective = task.check_objective(objective)
    if space_file:
        space = load_space(space_file, base.recipe, base)
    else:
        fixed_end = None if "front_end" not in fixed else base.front_end
        space = series_space(task.name, fixed_end) if family else default_space(base.recipe)
        check_space(space, base.recipe, base)
    if "recipe" in space and recipe is not None:
        raise UserError(f"--recipe {recipe} is given and the space searches recipe too; drop one of them")
    searched = fields_set_by(space)
    for key in sorted(fixed & set(searched)):
        raise UserError(f"{key} is both fixed with --set and searched (space key '{searched[key]}'); drop one of them")
    if tuner == "grid":
        require_grid(space)
    return TuneSettings(base, space, tuner, name, max_trials, max_epochs, factor, objective, rounds, workers, budget)


SERIES_FAMILY = ("cnn1d", "minirocket", "mlp")  # what a time-series search with no --recipe tries


def series_space(task: str, front_end: str | None = None) -> Space:
    """The default space of a time-series search with no ``--recipe``: the recipes of :data:`SERIES_FAMILY` that
    learn ``task``, the front ends (raw, spectral) for the recipes that take both, and each recipe's own keys;
    ``front_end``: fixed with ``--set``, so only the recipes that take it and no front-end choice."""
    recipes = tuple(
        name
        for name in SERIES_FAMILY
        if task in recipe_named(name).tasks and (front_end is None or front_end in recipe_named(name).front_ends)
    )
    space = family_space(recipes)
    if front_end is not None:
        space.pop("front_end", None)
    return space


def search_task(base: TrainConfig) -> Task:
    """The task a search learns: the recipe's, the config's, or (``auto`` with a recipe that can classify and
    regress) the one :func:`recipes.tasks.choose_task` picks for the data, which is loaded for that."""
    if base.task == AUTO and len(recipe_named(base.recipe).tasks) > 1:
        from recipes.data import load_config_data

        return choose_task(base, load_config_data(base))[0]
    return choose_task(base, None)[0]


@dataclass(frozen=True)
class HyperbandBudget:
    """One Hyperband iteration: brackets, trials and epochs trained in all (continuations counted once)."""

    brackets: int
    trials: int
    epochs: int


def hyperband_budget(max_epochs: int, factor: int) -> HyperbandBudget:
    """The trials and epochs of one keras-tuner Hyperband iteration.

    Bracket ``b`` (``num_brackets - 1`` down to 0) runs rounds ``r = 0..b``; round ``r`` trains
    ``ceil(ceil(1 + log_factor(max_epochs)) / (b + 1) * factor**(b - r))`` models up to
    ``ceil(max_epochs / factor**(b - r))`` epochs, each continuing from its round ``r - 1`` checkpoint,
    so it trains only the difference. These are keras-tuner 1.4's ``HyperbandOracle`` formulas.

    Args:
        max_epochs: most epochs one model trains.
        factor: reduction factor between rounds.

    Returns:
        Brackets, trials and total epochs (e.g. 375 epochs for max_epochs 27, factor 3).
    """
    brackets, epochs = 0, float(max_epochs)
    while epochs >= 1:
        epochs /= factor
        brackets += 1
    last_round_size = math.ceil(1 + math.log(max_epochs, factor))
    trials = total_epochs = 0
    for bracket in range(brackets):
        trained = 0
        for round_number in range(bracket + 1):
            size = math.ceil(last_round_size / (bracket + 1) * factor ** (bracket - round_number))
            round_epochs = math.ceil(max_epochs / factor ** (bracket - round_number))
            trials += size
            total_epochs += size * (round_epochs - trained)
            trained = round_epochs
    return HyperbandBudget(brackets, trials, total_epochs)


def plan_lines(settings: TuneSettings) -> list[str]:
    """What a search will do, printed before it starts (Hyperband's epoch budget included)."""
    base = settings.base
    if not base.early_stopping:
        stopping = "no early stopping"
    elif base.patience == adaptive_defaults.AUTO:
        stopping = "early stopping after a patience set from the training-split size (at least 300 steps)"
    else:
        stopping = f"early stopping after {base.patience} epochs without a better epoch"
    recipes = ", ".join(searched_recipes(settings.space, base.recipe))
    lines = [
        f"search {settings.tune_dir}: {settings.tuner} search of {recipes} on {base.data}, "
        f"objective {settings.objective} ({settings.direction})"
    ]
    if settings.tuner == "hyperband":
        budget = hyperband_budget(settings.max_epochs, settings.factor)
        lines.append(
            f"epoch budget per round: Hyperband max_epochs {settings.max_epochs}, factor {settings.factor}: "
            f"{budget.brackets} brackets, {budget.trials} trials, {budget.epochs} epochs in all ({stopping}; "
            "--max-trials does not apply)"
        )
    else:
        trials = settings.max_trials
        if settings.tuner == "grid":
            points = grid_points(settings.space)
            trials = min(points, settings.max_trials)
            lines.append(f"grid of {points} configurations; the search stops after {trials} trials (--max-trials)")
        lines.append(
            f"epoch budget per round: {trials} trials x up to {settings.max_epochs} epochs = "
            f"{trials * settings.max_epochs} epochs at most ({stopping})"
        )
    if settings.rounds > 1:
        lines.append(
            f"{settings.rounds} rounds, coarse to fine: each narrows the space around the last round's best trials"
        )
    if settings.workers:
        lines.append(f"distributed: a keras-tuner chief and {settings.workers} worker processes on this machine")
    if settings.budget:
        lines.extend(settings.budget.plan_lines())
    lines.append(f"space ({len(settings.space)} hyperparameters):")
    lines.extend(f"  {key:<16} {dimension.describe()}" for key, dimension in settings.space.items())
    return lines
