"""The Pareto front of a hardware-aware search: the objective against int8 size and estimated latency.

The accuracy axis is what the device runs: for ``val_accuracy`` the trial's int8 model on the dev split
(:meth:`tuning.report.TrialRecord.device_score`). A measured trial is on the front when no other measured
trial is at least as good on that score,
the int8 size and the compute (the estimated latency; MACs without ``--target``, which orders trials
the same way) and better on one of them. Infeasible trials take part, so the front also shows what a
larger budget would buy; they are greyed in the plot and marked in the table. No TensorFlow here.

Written by :func:`write_pareto`: ``pareto.csv`` (the front, smallest int8 model first) and
``plots/pareto.png`` (the objective against int8 KB and against the estimated latency, front ringed,
budget limits dashed).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from recipes.plots import load_pyplot, save_figure
from recipes.rundir import write_atomic
from tuning.hardware import ARENA_KB_METRIC, INT8_KB_METRIC, LATENCY_METRIC, MACS_METRIC, Budget
from tuning.report import TrialRecord, _cell


def measured_records(records: Sequence[TrialRecord], objective: str) -> list[TrialRecord]:
    """The trials that were measured and reached an objective value (feasible or not)."""
    return [
        record for record in records if INT8_KB_METRIC in record.metrics and record.trained_score(objective) is not None
    ]


def compute_metric(records: Sequence[TrialRecord]) -> str:
    """The compute axis: the estimated latency when every trial has one, else MACs."""
    return LATENCY_METRIC if records and all(LATENCY_METRIC in record.metrics for record in records) else MACS_METRIC


def pareto_front(records: Sequence[TrialRecord], objective: str, direction: str) -> list[TrialRecord]:
    """The measured trials no other trial dominates, smallest int8 model first.

    Args:
        records: all trials (unmeasured ones are ignored).
        objective: the objective's name.
        direction: ``"max"`` or ``"min"``: how the objective improves.

    Returns:
        The front (ties stay: two trials with the same numbers are both on it).
    """
    candidates = measured_records(records, objective)
    compute = compute_metric(candidates)
    sign = -1.0 if direction == "max" else 1.0

    def costs(record: TrialRecord) -> tuple[float, float, float]:  # all three: lower is better
        score = record.device_score(objective)
        return sign * float(score or 0.0), record.metrics[INT8_KB_METRIC], record.metrics[compute]

    def dominates(first: tuple[float, ...], second: tuple[float, ...]) -> bool:
        return all(a <= b for a, b in zip(first, second, strict=True)) and first != second

    front = [
        record
        for record in candidates
        if not any(dominates(costs(other), costs(record)) for other in candidates if other is not record)
    ]
    return sorted(front, key=lambda record: (record.metrics[INT8_KB_METRIC], record.round, int(record.trial_id)))


def pareto_csv(front: Sequence[TrialRecord], objective: str, space_keys: Sequence[str]) -> str:
    """``pareto.csv``: one row per trial of the front with its objective, measurements, feasibility and values."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    metrics = (INT8_KB_METRIC, ARENA_KB_METRIC, MACS_METRIC, LATENCY_METRIC)
    writer.writerow(["round", "trial", objective, *metrics, "feasible", *space_keys])
    for record in front:
        writer.writerow(
            [record.round, record.trial_id, _cell(record.device_score(objective))]
            + [_cell(record.metrics.get(metric)) for metric in metrics]
            + ["yes" if record.feasible else "no"]
            + [_cell(record.values.get(key)) for key in space_keys]
        )
    return buffer.getvalue()


def plot_pareto(
    records: Sequence[TrialRecord],
    front: Sequence[TrialRecord],
    objective: str,
    budget: Budget,
    path: Path,
) -> None:
    """``plots/pareto.png``: the objective against int8 KB and against the estimated latency (or MACs).

    Feasible trials are blue, infeasible ones grey; the front is ringed in red and each limit of the
    budget is a dashed line.
    """
    pyplot = load_pyplot()
    measured = measured_records(records, objective)
    compute = compute_metric(measured)
    on_front = {id(record) for record in front}
    figure, panels = pyplot.subplots(1, 2, figsize=(11, 4.2))
    latency = compute == LATENCY_METRIC
    axes_of = (
        (INT8_KB_METRIC, "int8 size", "int8 model (KB)", budget.max_int8_kb, "KB"),
        (
            compute,
            "estimated latency" if latency else "MACs",
            f"estimated latency on {budget.target} (ms)" if latency else "MACs per example",
            budget.max_latency_ms if latency else None,
            "ms",
        ),
    )
    for axes, (metric, title, label, limit, unit) in zip(panels, axes_of, strict=True):
        for feasible, colour, name in ((True, "tab:blue", "feasible"), (False, "0.7", "infeasible (over budget)")):
            points = [(r.metrics[metric], r.device_score(objective)) for r in measured if bool(r.feasible) == feasible]
            if points:
                axes.scatter(*zip(*points, strict=True), s=22, color=colour, label=name, zorder=2)
        ringed = [(r.metrics[metric], r.device_score(objective)) for r in measured if id(r) in on_front]
        if ringed:
            axes.scatter(
                *zip(*ringed, strict=True),
                s=90,
                facecolors="none",
                edgecolors="tab:red",
                label="Pareto front (pareto.csv)",
                zorder=3,
            )
        if limit is not None:
            axes.axvline(limit, color="tab:red", linestyle="--", linewidth=1, label=f"budget {limit:g} {unit}")
        values = [r.metrics[metric] for r in measured]
        if values and min(values) > 0 and max(values) / min(values) > 10:
            axes.set_xscale("log")
        shown = "int8 val_accuracy" if objective == "val_accuracy" else objective
        axes.set(title=f"{shown} against {title}", xlabel=label, ylabel=shown)
        axes.legend(loc="best", fontsize=8)
    figure.suptitle(f"budget: {budget.describe()}", fontsize=9)
    figure.tight_layout()
    save_figure(figure, path)
    pyplot.close(figure)


def write_pareto(
    folder: Path,
    records: Sequence[TrialRecord],
    space_keys: Sequence[str],
    objective: str,
    direction: str,
    budget: Budget,
) -> list[TrialRecord]:
    """Write ``pareto.csv`` and ``plots/pareto.png`` (atomically) and return the front."""
    front = pareto_front(records, objective, direction)
    write_atomic(folder / "pareto.csv", pareto_csv(front, objective, space_keys))
    plot_pareto(records, front, objective, budget, folder / "plots" / "pareto.png")
    return front
