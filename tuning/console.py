"""What ``tune`` prints when a search ends: tables and lines on a rich console (:func:`recipes.console.console`)."""

from __future__ import annotations

from recipes.console import console

FIRM_IMPORTANCE_TRIALS = 30  # below this many scored trials the importance ranking gets a caveat


def print_tune(result) -> None:
    """A finished search: its best trials side by side, the Pareto front of a hardware budget, each round, the
    importance of each hyperparameter, and the retrained run."""
    from rich.table import Table

    from tuning.hardware import HARDWARE_METRICS, format_metric
    from tuning.report import MIN_TRIALS_FOR_IMPORTANCE, format_value

    best = result.ranked(5)
    table = Table(title=f"best {len(best)} of {len(result.records)} trials")
    table.add_column("trial", no_wrap=True)
    for record in best:
        table.add_column(record.label, justify="right")
    table.add_row(result.objective, *(f"{record.score:.4f}" for record in best))
    table.add_row("epochs", *(str(record.epochs) for record in best))
    table.add_row("seconds", *(f"{record.seconds:.1f}" for record in best), end_section=True)
    for metric in (metric for metric in HARDWARE_METRICS if metric in result.best.metrics):
        table.add_row(metric, *(format_metric(metric, record.metrics.get(metric)) for record in best))
    for key in dict.fromkeys(key for record in best for key in record.values):
        table.add_row(key, *(format_value(record.values.get(key, "")) for record in best))
    console().print(table)
    if result.budget is not None:
        print_pareto(result)
    for line in result.round_lines():
        print(line)
    if result.importance:
        scored = sum(record.scored for record in result.records)
        caveat = (
            f" (a random forest over {scored} trials: a rough ranking until a few dozen)"
            if scored < FIRM_IMPORTANCE_TRIALS
            else ""
        )
        print("importance: " + ", ".join(f"{key} {share:.2f}" for key, share in result.importance) + caveat)
    else:
        print(f"importance: needs at least {MIN_TRIALS_FOR_IMPORTANCE} completed trials with different results")
    pareto = ", pareto.csv, plots/pareto.png" if result.budget is not None else ""
    print(f"results: {result.tune_dir} (trials.csv, plots/trials.png{pareto}, best.yaml, summary.json)")
    scores = next(
        (
            f" (dev {name} {result.run_metrics['dev'][key]:.4f}, test {name} {result.run_metrics['test'][key]:.4f})"
            for key, name in (("accuracy", "accuracy"), ("r2", "R²"))
            if isinstance(result.run_metrics["dev"].get(key), float)
            and isinstance(result.run_metrics["test"].get(key), float)
        ),
        "",
    )
    print(f"best configuration retrained: {result.run_dir}{scores}")
    print(f"next: python cli.py export {result.run_dir}")


def print_pareto(result) -> None:
    """The Pareto front of a hardware-aware search, and whether the arena was measured."""
    from rich.table import Table

    from tuning.hardware import ARENA_KB_METRIC, ARENA_NOT_MEASURED, HARDWARE_METRICS, format_metric

    infeasible = sum(record.feasible is False for record in result.records)
    table = Table(title=f"Pareto front ({len(result.records)} trials, {infeasible} over budget)")
    for column in ("trial", result.objective, *HARDWARE_METRICS, "feasible"):
        table.add_column(column, justify="left" if column == "trial" else "right")
    for record in result.pareto:
        table.add_row(
            record.label,
            f"{record.trained_score(result.objective):.4f}",
            *(format_metric(metric, record.metrics.get(metric)) for metric in HARDWARE_METRICS),
            "yes" if record.feasible else "no",
        )
    console().print(table)
    if not any(ARENA_KB_METRIC in record.metrics for record in result.records):
        print(ARENA_NOT_MEASURED)
