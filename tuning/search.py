"""A search from start to finish: rounds, results files, importance and the retrained best run.

:func:`run_search` is what ``python cli.py tune`` calls. Everything lives in ``<out>/tune/<name>/``::

    search.json              the settings (a re-run must match them to resume)
    space-round-<n>.yaml     the space of each round (round n > 1 narrowed around round n - 1)
    keras_tuner/round-<n>/   keras-tuner's own project: oracle.json, trial_*/trial.json, checkpoints
    trials.csv               one row per trial of every round: values, objective, epochs, seconds
    importance.csv           random-forest importance of each hyperparameter
    pareto.csv               with a hardware budget: the Pareto front (objective, int8 size, latency)
    plots/pareto.png         with a hardware budget: the objective against int8 KB and estimated latency
    plots/trials.png         objective per trial and against the learning rate
    plots/importance.png     the importance as bars
    best.yaml                the best configuration, a config file ``train --config`` accepts
    summary.json             rounds, best trial, importance and the retrained run directory
    retraining.json          the trial being retrained and the runs before it (finds its run after a kill)

Re-running the same command resumes: keras-tuner reloads each round's project, keeps completed
trials and runs an interrupted one again; a round's narrowed space is read back, not recomputed.
The best configuration is retrained through ``recipes.training.train`` into ``runs/train/<name>-<n>/``
(skipped on a re-run whose best trial and run directory are unchanged).

With a hardware budget (:mod:`tuning.hardware`) every trial is measured and one over budget is
infeasible: the best trial is the best feasible one. A round without any feasible trial stops the
search with a :class:`UserError` naming the smallest model reached; its trials stay in
``keras_tuner/round-<n>/`` (a re-run reports the same), and no result file of that round is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edge.device.errors import UserError
from recipes.adaptive_defaults import resolves_to
from recipes.config import TrainConfig, save_config
from recipes.input_pipeline import PreparedData, prepare_data
from recipes.rundir import check_writable, held_lock, write_atomic, write_json
from recipes.runs import Run
from tuning.hardware import ARENA_KB_METRIC, ARENA_NOT_MEASURED, HARDWARE_METRICS, Budget, no_feasible_error
from tuning.pareto import write_pareto
from tuning.report import TrialRecord, best_records, hardware_text, read_trials, write_results
from tuning.settings import RESUME_KEYS, TuneSettings, hyperband_budget, plan_lines
from tuning.spaces import Space, config_for, narrow_space, space_from_data, space_yaml

Report = Callable[[str], None]
# Share of a round's scored trials (at least one) that the next round narrows around.
BEST_SHARE = 0.25


@dataclass
class TuneResult:
    """What a finished search produced.

    Attributes:
        tune_dir: ``<out>/tune/<name>``.
        objective: the objective's name.
        direction: ``"max"`` or ``"min"``.
        records: every trial of every round, in order.
        best: the best trial.
        importance: (hyperparameter, importance) pairs, largest first (empty with few trials).
        config: the best trial's training config.
        run_dir: the retrained best configuration's run directory.
        run_metrics: that run's ``metrics.json``.
        budget: the hardware budget; None when nothing was measured.
        pareto: the Pareto front of the measured trials, smallest int8 model first.
    """

    tune_dir: Path
    objective: str
    direction: str
    records: list[TrialRecord]
    best: TrialRecord
    importance: list[tuple[str, float]]
    config: TrainConfig
    run_dir: Path
    run_metrics: dict[str, Any]
    budget: Budget | None = None
    pareto: list[TrialRecord] = field(default_factory=list)

    def ranked(self, count: int | None = None) -> list[TrialRecord]:
        """The completed trials, best first."""
        return best_records(self.records, self.direction, count)

    def round_lines(self) -> list[str]:
        """One line per round: its trials and its best trial."""
        lines = []
        for round_number in sorted({record.round for record in self.records}):
            in_round = [record for record in self.records if record.round == round_number]
            best = best_records(in_round, self.direction, 1)
            found = f"best {self.objective} {best[0].score:.4f} (trial {best[0].label})" if best else "none completed"
            infeasible = sum(record.feasible is False for record in in_round)
            over = f", {infeasible} infeasible (over budget)" if infeasible else ""
            lines.append(f"round {round_number}: {len(in_round)} trials, {found}{over}")
        return lines


def run_search(settings: TuneSettings, report: Report = print) -> TuneResult:
    """Say the plan, then run (or resume) every round, write the results and retrain the best configuration.

    Args:
        settings: the resolved search (see :func:`tuning.settings.resolve_settings`).
        report: called with one line of progress at a time.

    Returns:
        The trials, the best one, the importance and the retrained run.

    Raises:
        UserError: another ``tune`` of that name is running (the search holds ``<out>/tune/.<name>.lock``), the
            data cannot be loaded, ``<out>/tune/<name>`` holds a different search, every trial failed, or no trial
            met the hardware budget.
    """
    check_writable(settings.base.out)
    tune_dir = settings.tune_dir
    busy = (
        f"another tune named {tune_dir.name} is running (process {{pid}}) in {tune_dir}; wait for it to finish, "
        "or give this search another --name"
    )
    with held_lock(tune_dir.parent / f".{tune_dir.name}.lock", busy):
        for line in plan_lines(settings):
            report(line)
        return _search(settings, report)


def _search(settings: TuneSettings, report: Report) -> TuneResult:
    """:func:`run_search`'s work, with the search's lock held."""
    data = SearchData(settings.base, prepare_data(settings.base))  # data errors before the search starts
    start(settings)
    records: list[TrialRecord] = []
    ranking: list[tuple[str, float]] = []
    front: list[TrialRecord] = []
    for round_number in range(1, settings.rounds + 1):
        space = round_space(settings, round_number, records)
        if round_number > 1:
            report(f"round {round_number}: narrowed space")
            for key, dimension in space.items():
                report(f"  {key:<16} {dimension.describe()}")
        if settings.workers:
            from tuning.distributed import run_distributed_round

            run_distributed_round(settings, round_number, report)
        else:
            run_round(settings, data, round_number, space, report)
        round_records = read_trials(settings.project_dir(round_number), round_number, settings.budget)
        if not any(record.scored for record in round_records):
            infeasible = [record.metrics for record in round_records if record.feasible is False]
            if settings.budget and infeasible:
                raise no_feasible_error(settings.budget, infeasible)
            raise UserError(f"no trial of round {round_number} completed; see {settings.project_dir(round_number)}")
        records.extend(round_records)
        ranking = write_results(settings.tune_dir, records, settings.space, settings.objective, settings.direction)
        if settings.budget:
            space_keys = list(settings.space)
            front = write_pareto(
                settings.tune_dir, records, space_keys, settings.objective, settings.direction, settings.budget
            )
    best = best_records(records, settings.direction, 1)[0]
    config = config_for(settings.base, best.values)
    run_dir, metrics = retrain(settings, best, config, report)
    write_best(settings, records, best, config, ranking, run_dir, metrics, front)
    return TuneResult(
        settings.tune_dir,
        settings.objective,
        settings.direction,
        records,
        best,
        ranking,
        config,
        run_dir,
        metrics,
        settings.budget,
        front,
    )


class SearchData:
    """A search's data, loaded and split once per front end a trial asks for (the same windows, so the same
    seeded split; only what the model sees of each window differs).

    Args:
        base: the search's fixed config (data, label, split, seed, ...).
        first: the data already prepared for ``base``'s own front end, if any.
    """

    def __init__(self, base: TrainConfig, first: PreparedData | None = None) -> None:
        self.base = base
        self.prepared: dict[str, PreparedData] = {base.front_end: first} if first is not None else {}

    def for_config(self, config: TrainConfig) -> PreparedData:
        """The data as ``config``'s front end gives it (prepared on first use)."""
        if config.front_end not in self.prepared:
            self.prepared[config.front_end] = prepare_data(dataclasses.replace(self.base, front_end=config.front_end))
        return self.prepared[config.front_end]


def _normalised(data: Any) -> Any:
    return json.loads(json.dumps(data))


def start(settings: TuneSettings) -> None:
    """Write ``search.json``; if the search exists, check that it is the same search first.

    Raises:
        UserError: the existing search differs in tuner, objective, budget, space or fixed config.
    """
    path = settings.tune_dir / "search.json"
    wanted = _normalised(settings.to_data())
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            raise UserError(f"{path} is damaged; delete {settings.tune_dir} or pick another --name") from None
        for key, option in RESUME_KEYS.items():
            if saved.get(key) == wanted[key]:
                continue
            what = option
            if key == "base":  # name the fields, e.g. "fixed config (seed)"
                fields = sorted(name for name in wanted[key] if saved[key].get(name) != wanted[key][name])
                what = f"{option} ({', '.join(fields)})"
            raise UserError(
                f"{settings.tune_dir} holds a search with a different {what}; re-run it with its own options "
                "to resume it, or pick another --name"
            )
    write_json(path, wanted)


def load_settings(tune_dir: str | Path) -> TuneSettings:
    """The settings of the search in ``tune_dir`` (its ``search.json``)."""
    return TuneSettings.from_data(json.loads((Path(tune_dir) / "search.json").read_text()))


def round_space(settings: TuneSettings, round_number: int, previous: list[TrialRecord]) -> Space:
    """The space of a round: the settings' space in round 1, then narrowed around the last round's best.

    A round's space is written to ``space-round-<n>.yaml`` when the round first starts and read
    back on a resume, so a resumed round searches exactly the space it started with.
    """
    path = settings.space_file(round_number)
    if round_number > 1 and path.is_file():
        return space_from_data(yaml.safe_load(path.read_text()))
    if round_number == 1:
        space = settings.space
    else:
        last_round = [record for record in previous if record.round == round_number - 1]
        scored = best_records(last_round, settings.direction)
        best = scored[: max(1, math.ceil(BEST_SHARE * len(scored)))]
        space = narrow_space(read_space(settings, round_number - 1), [record.values for record in best])
    write_atomic(path, space_yaml(space))
    return space


def read_space(settings: TuneSettings, round_number: int) -> Space:
    """The space a round searched (from its ``space-round-<n>.yaml``)."""
    return space_from_data(yaml.safe_load(settings.space_file(round_number).read_text()))


def run_round(settings: TuneSettings, data: SearchData, round_number: int, space: Space, report: Report) -> None:
    """Run one round in this process with keras-tuner (resuming its project if it exists).

    Raises:
        UserError: keras-tuner stopped after consecutive failed trials (e.g. every one diverged).
    """
    from recipes.backend import import_keras

    import_keras(settings.base.seed)
    resuming = (settings.project_dir(round_number) / "oracle.json").is_file()
    tuner = round_tuner(settings, data, round_number, space, report)
    if resuming:
        trials = tuner.oracle.trials.values()
        done = sum(trial.status == "COMPLETED" for trial in trials)
        report(f"round {round_number}: resuming {settings.project_dir(round_number)} ({done} trials completed)")
    search(tuner)


def round_tuner(settings: TuneSettings, data: SearchData, round_number: int, space: Space, report: Report) -> Any:
    """The keras-tuner tuner of one round over ``space`` (resuming its project if it exists): what this process,
    the distributed chief and each worker search with."""
    from tuning.hypermodel import RecipeHyperModel
    from tuning.tuners import make_tuner

    hypermodel = RecipeHyperModel(settings.base, space, data, settings.objective, settings.direction, settings.budget)
    return make_tuner(settings, hypermodel, round_number, report)


def search(tuner: Any) -> None:
    """``tuner.search()``, with keras-tuner's stop after consecutive failures as a :class:`UserError`."""
    try:
        tuner.search(verbose=0)
    except RuntimeError as error:
        if "consecutive failures" not in str(error):
            raise
        last = str(error).strip().splitlines()[-1]
        raise UserError(f"the search stopped after consecutive failed trials; the last: {last}") from None


RETRAINING = "retraining.json"  # which trial is (or was last) retrained, and the runs there were before


def retrain(
    settings: TuneSettings, best: TrialRecord, config: TrainConfig, report: Report
) -> tuple[Path, dict[str, Any]]:
    """Train the best configuration as a normal run (``runs/train/<name>-<n>/``).

    A re-run of a search whose best trial is unchanged reuses the run it retrained before, also when the search
    was killed after that run was committed but before ``summary.json`` named it: ``retraining.json`` records the
    trial and the runs that existed before, so the new run with the trial's config is found.

    Returns:
        The run directory and its metrics.
    """
    previous = _retrained_before(settings, best, config)
    if previous is not None:
        report(f"best trial {best.label} unchanged; its run is {previous}")
        return previous, Run(previous).metrics()
    from recipes.training import train

    write_json(settings.tune_dir / RETRAINING, {"trial": best.key, "runs_before": _train_runs(config)})
    report(f"retraining the best configuration (trial {best.label}) for up to {config.epochs} epochs")
    result = train(config, report=None)
    dev, test = result.metrics["dev"].get("accuracy"), result.metrics["test"].get("accuracy")
    scores = f": dev accuracy {dev:.4f}, test accuracy {test:.4f}" if dev is not None and test is not None else ""
    report(f"retrained{scores} -> {result.run_dir}")
    return result.run_dir, result.metrics


def _train_runs(config: TrainConfig) -> list[str]:
    """The run folders under ``<out>/train`` now."""
    folder = Path(config.out) / "train"
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def _retrained_before(settings: TuneSettings, best: TrialRecord, config: TrainConfig) -> Path | None:
    """The committed run of ``best`` that an earlier pass of this search trained: the one ``summary.json`` names,
    or else a run committed after ``retraining.json`` was written for the same trial, with the same config (its
    ``auto`` keys as the data set them)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        summary = json.loads((settings.tune_dir / "summary.json").read_text())
        run_dir = Path(summary["run_dir"])
        if summary["best"]["trial"] == best.key and Run(run_dir).has(Run.METRICS):
            return run_dir
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        intent = json.loads((settings.tune_dir / RETRAINING).read_text())
        if intent["trial"] == best.key:
            for name in sorted(set(_train_runs(config)) - set(intent["runs_before"])):
                run = Run(Path(config.out) / "train" / name)
                with contextlib.suppress(UserError):
                    if run.has(Run.METRICS) and resolves_to(config, run.config()):
                        return run.path
    return None


def _round_summaries(settings: TuneSettings, records: list[TrialRecord]) -> list[dict[str, Any]]:
    summaries = []
    for round_number in range(1, settings.rounds + 1):
        in_round = [record for record in records if record.round == round_number]
        best = best_records(in_round, settings.direction, 1)
        summaries.append(
            {
                "round": round_number,
                "space": yaml.safe_load(settings.space_file(round_number).read_text()),
                "trials": len(in_round),
                "completed": sum(record.scored for record in in_round),
                "epochs": sum(record.epochs or 0 for record in in_round),
                "best_trial": best[0].key if best else None,
                "best_score": best[0].score if best else None,
            }
        )
    return summaries


def write_best(
    settings: TuneSettings,
    records: list[TrialRecord],
    best: TrialRecord,
    config: TrainConfig,
    ranking: list[tuple[str, float]],
    run_dir: Path,
    metrics: dict[str, Any],
    front: list[TrialRecord],
) -> None:
    """Write ``best.yaml`` (a config file, with where it came from in comments) and ``summary.json``."""
    hardware = f"# int8 model of the trial: {hardware_text(best)}\n" if best.feasible is not None else ""
    header = (
        f"# best configuration of the {settings.tuner} search {settings.tune_dir}: trial {best.label}, "
        f"{settings.objective} {best.score:.4f}\n"
        f"{hardware}"
        f"# retrained as {run_dir}\n"
        f"# train it again: python cli.py train --config {settings.tune_dir / 'best.yaml'}\n"
    )
    write_atomic(settings.tune_dir / "best.yaml", header + save_config(config))
    summary: dict[str, Any] = {
        "tuner": settings.tuner,
        "objective": settings.objective,
        "direction": settings.direction,
        "rounds": _round_summaries(settings, records),
        "best": {
            "trial": best.key,
            "score": best.score,
            "values": best.values,
            "epochs": best.epochs,
            "hyperband": best.hyperband,
        },
        "importance": [{"hyperparameter": key, "importance": value} for key, value in ranking],
        "run_dir": str(run_dir),
        "run_metrics": {part: metrics[part] for part in ("train", "dev", "test") if part in metrics},
    }
    if settings.budget:
        summary["hardware_budget"] = settings.budget.to_data()
        summary["best"]["hardware"] = {name: best.metrics[name] for name in HARDWARE_METRICS if name in best.metrics}
        summary["infeasible_trials"] = [record.key for record in records if record.feasible is False]
        summary["pareto_front"] = [record.key for record in front]
        if not any(ARENA_KB_METRIC in record.metrics for record in records):
            summary["arena"] = ARENA_NOT_MEASURED
    if settings.tuner == "hyperband":
        budget = hyperband_budget(settings.max_epochs, settings.factor)
        summary["hyperband_budget"] = {"brackets": budget.brackets, "trials": budget.trials, "epochs": budget.epochs}
    write_json(settings.tune_dir / "summary.json", summary)
