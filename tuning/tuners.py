"""The four keras-tuner tuners: random, Hyperband, grid and Bayesian.

keras-tuner runs the search loop; the tuners here add one line of progress per finished trial and record the
metrics of a trial over the hardware budget (keras-tuner keeps none of a failed trial). The oracles are the
resumable ones of :mod:`tuning.keras_tuner_patches`, which holds every change this project makes to
keras-tuner and is applied by :func:`make_tuner`. Importing this module imports keras-tuner (and TensorFlow).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

import keras_tuner

from tuning import keras_tuner_patches
from tuning.hypermodel import InfeasibleTrialError
from tuning.keras_tuner_patches import (
    ResumableBayesianOracle,
    ResumableGridSearchOracle,
    ResumableHyperbandOracle,
    ResumableRandomSearchOracle,
)
from tuning.report import TrialRecord, trial_line
from tuning.settings import TuneSettings


class _ProgressMixin:
    """Reports one line per finished trial through ``self.report``; records an infeasible trial's metrics."""

    report: Callable[[str], None] | None = None
    round_number: int = 1

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().run_trial(trial, *args, **kwargs)  # type: ignore[misc]
        except InfeasibleTrialError as error:  # keras-tuner keeps no metrics of a failed trial
            self.oracle.update_trial(trial.trial_id, error.metrics)  # type: ignore[attr-defined]
            raise

    def on_trial_end(self, trial: Any) -> None:
        super().on_trial_end(trial)  # type: ignore[misc]
        if self.report is None:
            return
        oracle = self.oracle  # type: ignore[attr-defined]
        record = TrialRecord.from_state(oracle.get_trial(trial.trial_id).get_state(), self.round_number)
        best = oracle.get_best_trials(1)
        best_score = best[0].score if best and best[0].status == "COMPLETED" else None
        self.report(trial_line(record, oracle.objective.name, best_score))


class RecipeTuner(_ProgressMixin, keras_tuner.Tuner):
    """A keras-tuner ``Tuner`` driven by any oracle, reporting each trial."""


class RecipeHyperband(_ProgressMixin, keras_tuner.Hyperband):
    """keras-tuner's ``Hyperband`` tuner (which continues models between rounds), reporting each trial.

    Args:
        oracle: a :class:`ResumableHyperbandOracle`.
        hypermodel: the recipe's HyperModel.
        **kwargs: ``Tuner`` arguments (directory, project_name, overwrite).
    """

    def __init__(self, oracle: ResumableHyperbandOracle, hypermodel: keras_tuner.HyperModel, **kwargs: Any) -> None:
        # Hyperband.__init__ only builds a HyperbandOracle of its own; this tuner brings the resumable one.
        keras_tuner.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)


def oracle_seed(settings: TuneSettings, round_number: int) -> int:
    """The oracle's seed for a round: different per round, never 0 (keras-tuner treats 0 as unseeded)."""
    return settings.base.seed * 1000 + round_number


def make_tuner(
    settings: TuneSettings,
    hypermodel: keras_tuner.HyperModel,
    round_number: int,
    report: Callable[[str], None] | None = None,
) -> keras_tuner.Tuner:
    """Create (or reload, if its project exists) the tuner of one round.

    The project is ``<tune dir>/keras_tuner/round-<n>/``; an existing one is resumed
    (``overwrite=False``): completed trials stay, an interrupted one is run again.

    Args:
        settings: the search.
        hypermodel: the recipe's HyperModel.
        round_number: the coarse-to-fine round, from 1.
        report: called with one line per finished trial; None for silence.

    Returns:
        The tuner, ready for ``search()``.
    """
    objective = keras_tuner.Objective(settings.objective, settings.direction)
    seed = oracle_seed(settings, round_number)
    if settings.tuner == "hyperband":
        oracle = ResumableHyperbandOracle(
            objective=objective,
            max_epochs=settings.max_epochs,
            factor=settings.factor,
            hyperband_iterations=1,
            seed=seed,
        )
        tuner_class: type[keras_tuner.Tuner] = RecipeHyperband
    else:
        oracle_class = {
            "random": ResumableRandomSearchOracle,
            "grid": ResumableGridSearchOracle,
            "bayesian": ResumableBayesianOracle,
        }[settings.tuner]
        oracle = oracle_class(objective=objective, max_trials=settings.max_trials, seed=seed)
        tuner_class = RecipeTuner
    keras_tuner_patches.apply()
    started = (settings.project_dir(round_number) / "oracle.json").is_file()
    with contextlib.redirect_stdout(io.StringIO()):  # keras-tuner's "Reloading Tuner from ..." line
        tuner = tuner_class(
            oracle=oracle,
            hypermodel=hypermodel,
            directory=str(settings.project_root),
            project_name=f"round-{round_number}",
            overwrite=False,
        )
    keras_tuner_patches.reload_if_started(tuner, started)
    tuner.report = report
    tuner.round_number = round_number
    return tuner
