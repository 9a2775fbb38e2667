"""The four keras-tuner tuners: random, Hyperband, grid and Bayesian.

keras-tuner runs the search loop; the tuners here only add one line of progress per finished trial
and make grid search resumable. Importing this module imports keras-tuner (and TensorFlow).

Grid search resume (keras-tuner 1.4.8, issue #1055): ``GridSearchOracle`` keeps the order in which
it walks the grid (a linked list of trial ids and a queue of trials whose successor is still to be
made) in memory only, so after a restart its first new trial looks up an id that is not there
(``KeyError``). :class:`ResumableGridSearchOracle` rebuilds both from the trials on disk whenever
the oracle state is reloaded: every trial, sorted in grid order, and every trial queued again (a
trial whose successor was already tried is skipped by the oracle itself).

Completed trials are never run again: keras-tuner's ``end_trial`` writes ``oracle.json`` before it
drops the trial from the ongoing ones, and a distributed chief writes nothing after that, so the
file on disk can list a finished trial as ongoing; on reload keras-tuner queues every ongoing trial
to run again. Each oracle here drops completed trials (``trial.json`` is written first and says
COMPLETED) from that queue when it reloads.

Infeasible trials (hardware budget): a trial whose int8 model breaks the budget fails with
:class:`~tuning.hypermodel.InfeasibleTrialError`, so keras-tuner keeps it out of the best trials, the
Bayesian model and Hyperband's promotions. The tuners record its metrics first (keras-tuner records none
for a failed trial), and the oracles leave it out of keras-tuner's stop after
``max_consecutive_failed_trials`` (3) consecutive failures: it trained, only its size or latency was
wrong, and a tight budget must not end the search. Diverged trials still count.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
from collections.abc import Callable
from typing import Any

import keras_tuner
from keras_tuner.src import config as keras_tuner_config
from keras_tuner.src import utils as keras_tuner_utils
from keras_tuner.src.tuners.gridsearch import LinkedList

from recipes.rundir import write_atomic
from tuning.hardware import FEASIBLE_METRIC
from tuning.hypermodel import InfeasibleTrialError
from tuning.report import TrialRecord, trial_line
from tuning.settings import TuneSettings

# keras-tuner prints the traceback of every failed trial to stderr; the progress line names the error
# and the whole traceback stays in the trial's trial.json.
keras_tuner_config.DEBUG = False


def _save_json_atomically(path: str, obj: Any) -> str:
    """keras-tuner's ``save_json``, but through a temp file and a rename.

    keras-tuner 1.4.8 rewrites ``oracle.json`` and ``trial.json`` in place; a search killed during
    such a write left an empty or truncated file and the resumed search died on a JSONDecodeError.
    """
    text = json.dumps(obj)
    write_atomic(path, text)
    return text


keras_tuner_utils.save_json = _save_json_atomically


class _ResumeMixin:
    """Reload without queueing completed trials to run again (see the module docstring)."""

    def reload(self) -> None:
        super().reload()  # type: ignore[misc]
        trials = self.trials  # type: ignore[attr-defined]
        self._retry_queue = [
            trial_id
            for trial_id in self._retry_queue
            if trials[trial_id].status != "COMPLETED"  # type: ignore[has-type]
        ]


def is_infeasible(trial: keras_tuner.engine.trial.Trial) -> bool:
    """Whether ``trial`` trained but broke the hardware budget (it reported ``feasible`` 0)."""
    return trial.metrics.exists(FEASIBLE_METRIC) and trial.metrics.get_last_value(FEASIBLE_METRIC) == 0.0


class _InfeasibleIsNotFailureMixin:
    """keras-tuner 1.4.8's check for consecutive failed trials, with infeasible trials not counted."""

    def _check_consecutive_failures(self) -> None:
        consecutive = 0
        for trial_id in self.end_order:  # type: ignore[attr-defined]
            trial = self.trials[trial_id]  # type: ignore[attr-defined]
            failed = trial.status == keras_tuner.engine.trial.TrialStatus.FAILED and not is_infeasible(trial)
            consecutive = consecutive + 1 if failed else 0
            if consecutive == self.max_consecutive_failed_trials:  # type: ignore[attr-defined]
                raise RuntimeError(
                    f"Number of consecutive failures exceeded the limit of {consecutive}.\n" + (trial.message or "")
                )


class ResumableRandomSearchOracle(_ResumeMixin, _InfeasibleIsNotFailureMixin, keras_tuner.oracles.RandomSearchOracle):
    """keras-tuner's random search oracle that never reruns a completed trial."""


class ResumableBayesianOracle(
    _ResumeMixin, _InfeasibleIsNotFailureMixin, keras_tuner.oracles.BayesianOptimizationOracle
):
    """keras-tuner's Bayesian optimization oracle (Gaussian process) that never reruns a completed trial."""


class ResumableHyperbandOracle(_ResumeMixin, _InfeasibleIsNotFailureMixin, keras_tuner.oracles.HyperbandOracle):
    """keras-tuner's Hyperband oracle that never reruns a completed trial."""


class ResumableGridSearchOracle(_ResumeMixin, _InfeasibleIsNotFailureMixin, keras_tuner.oracles.GridSearchOracle):
    """keras-tuner's grid oracle whose walk order survives a restart (see the module docstring)."""

    def set_state(self, state: dict[str, Any]) -> None:
        """Reload the saved state, then rebuild the walk order from the reloaded trials."""
        super().set_state(state)
        known = [trial_id for trial_id in self.start_order if trial_id in self.trials]
        in_grid_order = sorted(
            known,
            key=functools.cmp_to_key(
                lambda first, second: self._compare(
                    self.trials[first].hyperparameters.values, self.trials[second].hyperparameters.values
                )
            ),
        )
        self._ordered_ids = LinkedList()
        for trial_id in in_grid_order:
            self._ordered_ids.insert(trial_id)
        self._populate_next = list(known)


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
    started = (settings.project_dir(round_number) / "oracle.json").is_file()
    with contextlib.redirect_stdout(io.StringIO()):  # keras-tuner's "Reloading Tuner from ..." line
        tuner = tuner_class(
            oracle=oracle,
            hypermodel=hypermodel,
            directory=str(settings.project_root),
            project_name=f"round-{round_number}",
            overwrite=False,
        )
    if started and not os.path.exists(tuner._get_tuner_fname()) and not tuner._is_worker():
        # keras-tuner reloads a project only if the tuner's own state file exists, and writes that
        # after the first trial has ended: a search killed in between would start over and run its
        # completed trials again. The oracle's files are there, so reload them.
        tuner.oracle.reload()
    tuner.report = report
    tuner.round_number = round_number
    return tuner
