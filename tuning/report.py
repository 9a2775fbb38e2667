"""A search's results: trial records, ``trials.csv``, the trials plot and hyperparameter importance.

Trials are read from keras-tuner's own ``trial_*/trial.json`` files, so a search run in this
process and one run by a chief and its workers are reported by the same code. Importance is a
scikit-learn random forest fitted to predict the objective from the sampled values (log10 of the
values of log-scaled ranges, one column per option of a text choice); each hyperparameter's
importance is the impurity decrease of its columns, normalised to sum to 1. With few trials it is
a rough guide, and it is left out below :data:`MIN_TRIALS_FOR_IMPORTANCE` completed trials.
A hardware-aware search adds its measurements, feasibility and reasons to ``trials.csv`` (its Pareto
front is :mod:`tuning.pareto`). No TensorFlow here; matplotlib and scikit-learn are imported inside the
functions that use them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recipes.plots import load_pyplot, save_figure
from recipes.rundir import write_atomic
from tuning.hardware import (
    ARENA_KB_METRIC,
    FEASIBLE_METRIC,
    HARDWARE_METRICS,
    INT8_ACCURACY_METRIC,
    INT8_KB_METRIC,
    LATENCY_METRIC,
    Budget,
    Measurement,
    violations,
)
from tuning.spaces import Space, active_values

MIN_TRIALS_FOR_IMPORTANCE = 5
# What a trial reports besides Keras's metrics (see tuning.hypermodel.trial_metrics).
EPOCHS_METRIC = "epochs_run"
SECONDS_METRIC = "seconds"
# keras-tuner's Hyperband bookkeeping values -> trials.csv column.
HYPERBAND_COLUMNS = {
    "tuner/epochs": "budget_epochs",
    "tuner/initial_epoch": "initial_epoch",
    "tuner/trial_id": "continues_trial",
    "tuner/bracket": "bracket",
}
BUDGET_FEATURE = "budget_epochs"
# The exception's name that starts the last line of a traceback, e.g. "keras_tuner.errors.FailedTrialError: ".
_EXCEPTION_PREFIX = re.compile(r"^[A-Za-z_][\w.]*: ")


@dataclass
class TrialRecord:
    """One keras-tuner trial of one round.

    Attributes:
        round: the coarse-to-fine round (1-based).
        trial_id: keras-tuner's id within the round.
        status: ``COMPLETED``, ``RUNNING`` (interrupted or in progress), ``INVALID`` or ``FAILED``.
        values: the sampled value of each space key.
        hyperband: Hyperband's bookkeeping values (``tuner/epochs``...); empty for other tuners.
        score: the objective of the best epoch; None unless completed.
        epochs: epochs trained in this trial; None unless completed.
        seconds: training time of this trial; None unless completed.
        message: the error of a failed trial.
        metrics: the last value of every metric the trial reported (an infeasible trial's too).
    """

    round: int
    trial_id: str
    status: str
    values: dict[str, Any]
    hyperband: dict[str, Any] = field(default_factory=dict)
    score: float | None = None
    epochs: int | None = None
    seconds: float | None = None
    message: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``<round>/<trial id>``, e.g. ``2/07``: the trial's identity in ``summary.json``."""
        return f"{self.round}/{self.trial_id}"

    @property
    def label(self) -> str:
        """How lines name the trial, e.g. ``7 (round 2)`` (keras-tuner's zero-padded id as a number)."""
        number = str(int(self.trial_id)) if self.trial_id.isdigit() else self.trial_id
        return f"{number} (round {self.round})"

    @property
    def scored(self) -> bool:
        """Completed with a finite objective."""
        return self.status == "COMPLETED" and self.score is not None and math.isfinite(self.score)

    @property
    def feasible(self) -> bool | None:
        """Whether the trial met the hardware budget; None when it was not measured."""
        value = self.metrics.get(FEASIBLE_METRIC)
        return None if value is None else value == 1.0

    @property
    def reason(self) -> str | None:
        """Why the trial did not complete (the last line of its error, without the exception's name)."""
        if self.scored or not self.message:
            return None
        lines = self.message.strip().splitlines()
        return _EXCEPTION_PREFIX.sub("", lines[-1]) if lines else None

    def trained_score(self, objective: str) -> float | None:
        """The objective it reached: the score, or what an infeasible trial reached before it was refused."""
        if self.scored:
            return self.score
        return self.metrics.get(objective) if self.feasible is False else None

    def device_score(self, objective: str) -> float | None:
        """What the device would reach: the int8 model's dev accuracy when the objective is ``val_accuracy`` and it
        was measured, else :meth:`trained_score`."""
        if (
            objective == "val_accuracy"
            and INT8_ACCURACY_METRIC in self.metrics
            and self.trained_score(objective) is not None
        ):
            return self.metrics[INT8_ACCURACY_METRIC]
        return self.trained_score(objective)

    @classmethod
    def from_state(cls, state: dict[str, Any], round_number: int) -> TrialRecord:
        """Build a record from keras-tuner's trial state (the content of ``trial.json``)."""
        values = dict(state.get("hyperparameters", {}).get("values", {}))
        hyperband = {key: values.pop(key) for key in list(values) if key.startswith("tuner/")}
        if "recipe" in values:  # a search over recipes: only the keys the trial's recipe has
            values = active_values(values, str(values["recipe"]))
        metrics = state.get("metrics", {}).get("metrics", {})

        def last(name: str) -> float | None:
            observations = metrics.get(name, {}).get("observations", [])
            return float(observations[-1]["value"][0]) if observations else None

        epochs = last(EPOCHS_METRIC)
        reported = {name: value for name in metrics if (value := last(name)) is not None}
        return cls(
            round=round_number,
            trial_id=str(state["trial_id"]),
            status=str(state.get("status")),
            values=values,
            hyperband=hyperband,
            score=state.get("score"),
            epochs=None if epochs is None else int(epochs),
            seconds=last(SECONDS_METRIC),
            message=state.get("message"),
            metrics=reported,
        )


def read_trials(project_dir: Path, round_number: int, budget: Budget | None = None) -> list[TrialRecord]:
    """The trials of one round's keras-tuner project, in trial order.

    A ``trial.json`` that cannot be parsed (being written at this moment) is skipped. keras-tuner's
    distributed mode does not pass a failed trial's message from a worker to the chief, so with a
    ``budget`` the reason of an infeasible trial without one is rebuilt from its measurements.
    """
    records = []
    for path in Path(project_dir).glob("trial_*/trial.json"):
        try:
            records.append(TrialRecord.from_state(json.loads(path.read_text()), round_number))
        except (OSError, ValueError, KeyError):
            continue
    if budget is not None:
        for record in records:
            if record.feasible is False and not record.message:
                record.message = "; ".join(violations(Measurement.from_metrics(record.metrics), budget))
    return sorted(records, key=lambda record: int(record.trial_id))


def best_records(records: Sequence[TrialRecord], direction: str, count: int | None = None) -> list[TrialRecord]:
    """The scored records, best first (ties keep trial order)."""
    scored = [record for record in records if record.scored]
    scored.sort(key=lambda record: -record.score if direction == "max" else record.score)
    return scored[:count] if count is not None else scored


def format_value(value: Any) -> str:
    """A sampled value for a line or a table cell (floats to 4 significant digits)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def hardware_text(record: TrialRecord) -> str:
    """The measurements of a trial, e.g. ``int8 8.80 KB, arena 3.73 KB, est. 0.079 ms`` ("" if not measured)."""
    parts = []
    for metric, text in (
        (INT8_KB_METRIC, "int8 {:,.2f} KB"),
        (ARENA_KB_METRIC, "arena {:,.2f} KB"),
        (LATENCY_METRIC, "est. {:.3g} ms"),
        (INT8_ACCURACY_METRIC, "int8 dev accuracy {:.4f}"),
    ):
        if metric in record.metrics:
            parts.append(text.format(record.metrics[metric]))
    return ", ".join(parts)


def trial_line(record: TrialRecord, objective: str, best: float | None = None) -> str:
    """One line of progress for a finished trial."""
    values = ", ".join(f"{key} {format_value(value)}" for key, value in record.values.items())
    budget = record.hyperband.get("tuner/epochs")
    budget_text = f" (budget {budget})" if budget is not None else ""
    if record.feasible is False:
        reached = record.trained_score(objective)
        scored = f"; {objective} {reached:.4f}" if reached is not None else ""
        return f"trial {record.label} infeasible{budget_text}: {record.reason}{scored}  | {values}"
    if not record.scored:
        error = (record.message or "").strip().splitlines()[-1:] or [""]
        return f"trial {record.label} {record.status.lower()}{budget_text}: {error[0]}  | {values}"
    best_text = f" (best {best:.4f})" if best is not None else ""
    hardware = hardware_text(record)
    hardware = f", {hardware}" if hardware else ""
    return (
        f"trial {record.label}: {objective} {record.score:.4f}{best_text}, {record.epochs} epochs{budget_text}, "
        f"{record.seconds:.1f}s{hardware}  | {values}"
    )


def trials_csv(records: Sequence[TrialRecord], space_keys: Sequence[str], objective: str) -> str:
    """``trials.csv``: one row per trial with its values, objective, epochs and seconds.

    When the trials were measured (a hardware budget), also ``int8_kb``, ``arena_kb``, ``macs``,
    ``est_latency_ms``, ``feasible`` (yes/no) and ``reason`` (why a trial did not complete); an
    infeasible trial's objective is the one it reached before it was refused.
    """
    hyperband = [key for key in HYPERBAND_COLUMNS if any(key in record.hyperband for record in records)]
    measured = any(record.feasible is not None for record in records)
    hardware = [*HARDWARE_METRICS, "feasible", "reason"] if measured else []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["round", "trial", "status", *space_keys, *(HYPERBAND_COLUMNS[key] for key in hyperband), objective]
        + ["epochs", "seconds", *hardware]
    )
    for record in records:
        row = (
            [record.round, record.trial_id, record.status]
            + [_cell(record.values.get(key)) for key in space_keys]
            + [_cell(record.hyperband.get(key)) for key in hyperband]
            + [_cell(record.trained_score(objective)), _cell(record.epochs), _cell(record.seconds)]
        )
        if measured:
            feasible = {True: "yes", False: "no", None: ""}[record.feasible]
            row += [_cell(record.metrics.get(metric)) for metric in HARDWARE_METRICS] + [feasible, record.reason or ""]
        writer.writerow(row)
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


# --- importance ------------------------------------------------------------------------------


def _feature_columns(records: Sequence[TrialRecord], space: Space) -> tuple[np.ndarray, list[str]]:
    """The design matrix and, per column, the hyperparameter it belongs to."""
    columns, groups = [], []
    for key, dimension in space.items():
        values = [record.values.get(key) for record in records]
        present = [value for value in values if value is not None]
        if present and all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in present):
            # A key the trial's recipe lacks (a search over recipes) is missing: NaN, which the forest splits on.
            numbers = np.asarray([np.nan if value is None else value for value in values], dtype=np.float64)
            columns.append(np.log10(numbers) if dimension.log else numbers)
            groups.append(key)
        else:
            for option in dict.fromkeys(values):
                columns.append(np.asarray([value == option for value in values], dtype=np.float64))
                groups.append(key)
    if any("tuner/epochs" in record.hyperband for record in records):
        columns.append(np.asarray([record.hyperband.get("tuner/epochs", 0) for record in records], np.float64))
        groups.append(BUDGET_FEATURE)
    return np.column_stack(columns), groups


def importance(records: Sequence[TrialRecord], space: Space, seed: int = 0) -> list[tuple[str, float]]:
    """Random-forest importance of each hyperparameter for the objective, largest first.

    Hyperband's epoch budget is a feature of its own (``budget_epochs``), so a configuration is not
    credited for having been trained longer.

    Args:
        records: the trials (only scored ones are used).
        space: the space they were sampled from.
        seed: the forest's random state.

    Returns:
        (hyperparameter, importance) pairs summing to 1; empty with fewer than
        :data:`MIN_TRIALS_FOR_IMPORTANCE` scored trials or when no value varied.
    """
    from sklearn.ensemble import RandomForestRegressor

    scored = [record for record in records if record.scored]
    if len(scored) < MIN_TRIALS_FOR_IMPORTANCE:
        return []
    features, groups = _feature_columns(scored, space)
    target = np.asarray([record.score for record in scored], dtype=np.float64)
    if np.ptp(target) == 0 or not (np.nan_to_num(np.ptp(features, axis=0)) > 0).any():
        return []
    forest = RandomForestRegressor(n_estimators=300, random_state=seed).fit(features, target)
    totals: dict[str, float] = {}
    for group, value in zip(groups, forest.feature_importances_, strict=True):
        totals[group] = totals.get(group, 0.0) + float(value)
    total = sum(totals.values()) or 1.0
    return sorted(((key, value / total) for key, value in totals.items()), key=lambda item: -item[1])


def importance_csv(ranking: Sequence[tuple[str, float]]) -> str:
    """``importance.csv``: hyperparameter, importance."""
    return "hyperparameter,importance\n" + "".join(f"{key},{value!r}\n" for key, value in ranking)


# --- plots -------------------------------------------------------------------------------------


def _against_key(space: Space) -> str | None:
    """The key plotted on the second panel: the learning rate, else the first numeric range."""
    if "learning_rate" in space and space["learning_rate"].kind != "choice":
        return "learning_rate"
    return next((key for key, dimension in space.items() if dimension.kind != "choice"), None)


def plot_trials(records: Sequence[TrialRecord], space: Space, objective: str, direction: str, path: Path) -> None:
    """``plots/trials.png``: the objective per trial (with the best so far), and against the learning rate.

    Args:
        records: all trials, in order; each round gets its own colour.
        space: the first round's space (decides the second panel's axis and scale).
        objective: the objective's name (axis label).
        direction: ``"max"`` or ``"min"`` (for the best-so-far line).
        path: the PNG to write.
    """
    pyplot = load_pyplot()
    figure, (per_trial, against) = pyplot.subplots(1, 2, figsize=(11, 4.2))
    rounds = sorted({record.round for record in records})
    scored = [(index, record) for index, record in enumerate(records, start=1) if record.scored]
    for round_number in rounds:
        points = [(index, record.score) for index, record in scored if record.round == round_number]
        if points:
            per_trial.scatter(*zip(*points, strict=True), s=18, label=f"round {round_number}")
    if scored:
        better = max if direction == "max" else min
        running, best_so_far = [], None
        for _, record in scored:
            best_so_far = record.score if best_so_far is None else better(best_so_far, record.score)
            running.append(best_so_far)
        per_trial.step([index for index, _ in scored], running, where="post", color="black", lw=1, label="best so far")
    per_trial.set(title=f"{objective} per trial", xlabel="trial (in order)", ylabel=objective)
    per_trial.legend(loc="best", fontsize=8)
    key = _against_key(space)
    if key is None:
        against.text(0.5, 0.5, "no numeric range searched", ha="center", va="center", transform=against.transAxes)
    else:
        for round_number in rounds:
            points = [(r.values[key], r.score) for _, r in scored if r.round == round_number and key in r.values]
            if points:
                against.scatter(*zip(*points, strict=True), s=18, label=f"round {round_number}")
        if space[key].log:
            against.set_xscale("log")
        against.set(title=f"{objective} against {key}", xlabel=key, ylabel=objective)
    figure.tight_layout()
    save_figure(figure, path)
    pyplot.close(figure)


def plot_importance(ranking: Sequence[tuple[str, float]], path: Path) -> None:
    """``plots/importance.png``: a horizontal bar per hyperparameter, most important on top."""
    pyplot = load_pyplot()
    figure, axes = pyplot.subplots(figsize=(6, 0.4 * max(len(ranking), 3) + 1))
    names = [key for key, _ in ranking][::-1]
    axes.barh(names, [value for _, value in ranking][::-1], color="tab:blue")
    axes.set(title="hyperparameter importance (random forest)", xlabel="share of importance")
    figure.tight_layout()
    save_figure(figure, path)
    pyplot.close(figure)


def write_results(
    folder: Path, records: Sequence[TrialRecord], space: Space, objective: str, direction: str
) -> list[tuple[str, float]]:
    """Write ``trials.csv``, ``importance.csv``, ``plots/trials.png`` and ``plots/importance.png``.

    Every file is replaced atomically, so a killed search leaves the previous version.

    Returns:
        The importance ranking (empty, and no importance files, with too few trials).
    """
    write_atomic(folder / "trials.csv", trials_csv(records, list(space), objective))
    plot_trials(records, space, objective, direction, folder / "plots" / "trials.png")
    ranking = importance(records, space)
    if ranking:
        write_atomic(folder / "importance.csv", importance_csv(ranking))
        plot_importance(ranking, folder / "plots" / "importance.png")
    return ranking
