"""Tuning budget: random search against Hyperband on digits, beside an SVC baseline, in one run.

Usage::

    python benchmarks/tuning_budget.py [--random-trials 20] [--max-epochs 27] [--factor 3] [--patience 5]

Both searches use the mlp recipe's default space, the same split (seed 0) and the same cap of
``--max-epochs`` epochs per model, with early stopping on dev loss inside every trial. Printed:
the epochs each needed to reach random search's best dev accuracy (trials in the order they ran,
counting only the epochs each trial trained: a Hyperband continuation trains only its extra
epochs), the epochs and time each spent in all, and the dev and test accuracy of each one's best
trial (its own checkpoint, no retraining), beside a scikit-learn SVC (RBF, default C and gamma, on
z-scored features) fitted on the same training split.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path
from typing import Any


def epochs_to_reach(records: list[Any], target: float) -> int | None:
    """Epochs trained, in trial order, until a trial's dev accuracy reaches ``target`` (None: never)."""
    spent = 0
    for record in records:
        spent += record.epochs or 0
        if record.scored and record.score >= target - 1e-9:
            return spent
    return None


def run_search(tuner: str, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One search, in this process; the records and the best trial's dev and test accuracy."""
    from recipes.input_pipeline import prepare_data
    from recipes.training import evaluate
    from tuning.hypermodel import RecipeHyperModel
    from tuning.report import best_records, read_trials
    from tuning.search import SearchData, run_round, start
    from tuning.settings import resolve_settings
    from tuning.tuners import make_tuner

    settings = resolve_settings(
        tuner=tuner,
        max_trials=args.random_trials,
        max_epochs=args.max_epochs,
        factor=args.factor,
        out=str(out),
        seed=0,
        assignments=[f"patience={args.patience}"],
    )
    search_data = SearchData(settings.base, prepare_data(settings.base))
    data = search_data.for_config(settings.base)
    start(settings)
    started = time.perf_counter()
    run_round(settings, search_data, 1, settings.space, report=lambda line: None)
    seconds = time.perf_counter() - started
    records = read_trials(settings.project_dir(1), 1)
    best = best_records(records, settings.direction, 1)[0]
    hypermodel = RecipeHyperModel(settings.base, settings.space, search_data, settings.objective, settings.direction)
    tuner_object = make_tuner(settings, hypermodel, 1)
    model = tuner_object.get_best_models(1)[0]
    metrics = evaluate(model, data)
    return {
        "records": records,
        "best": best,
        "seconds": seconds,
        "dev": metrics["dev"]["accuracy"],
        "test": metrics["test"]["accuracy"],
    }


def svc_baseline() -> dict[str, float]:
    """An RBF SVC on z-scored, flattened digits, fitted on the same training split."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from recipes.config import TrainConfig
    from recipes.input_pipeline import prepare_data

    data = prepare_data(TrainConfig(seed=0))
    (x_train, y_train), (x_dev, y_dev), (x_test, y_test) = (data.part(part) for part in ("train", "dev", "test"))
    started = time.perf_counter()
    model = make_pipeline(StandardScaler(), SVC()).fit(x_train.reshape(len(x_train), -1), y_train)
    seconds = time.perf_counter() - started
    return {
        "dev": float(model.score(x_dev.reshape(len(x_dev), -1), y_dev)),
        "test": float(model.score(x_test.reshape(len(x_test), -1), y_test)),
        "seconds": seconds,
    }


def main() -> None:
    """Run both searches and the baseline, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random-trials", type=int, default=20, help="random search's trials")
    parser.add_argument("--max-epochs", type=int, default=27, help="epochs per model at most (Hyperband's max_epochs)")
    parser.add_argument("--factor", type=int, default=3, help="Hyperband's reduction factor")
    parser.add_argument("--patience", type=int, default=5, help="early stopping patience inside trials")
    args = parser.parse_args()
    from recipes.backend import import_keras
    from tuning.settings import hyperband_budget

    import_keras(0)
    with tempfile.TemporaryDirectory() as folder:
        random = run_search("random", Path(folder), args)
        hyperband = run_search("hyperband", Path(folder), args)
    baseline = svc_baseline()
    target = random["best"].score
    budget = hyperband_budget(args.max_epochs, args.factor)
    print(
        f"digits, mlp default space, seed 0, max {args.max_epochs} epochs per model, patience {args.patience}; "
        f"Hyperband factor {args.factor} (planned {budget.trials} trials, {budget.epochs} epochs); "
        f"python {platform.python_version()}, {platform.machine()}"
    )
    print()
    print(
        "| search | trials | epochs in all | seconds | epochs to reach random's best dev "
        f"({target:.4f}) | best dev accuracy | its test accuracy |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    reach = {}
    for label, result in (("random", random), ("hyperband", hyperband)):
        records = result["records"]
        reach[label] = epochs_to_reach(records, target)
        reached = str(reach[label]) if reach[label] is not None else "not reached"
        print(
            f"| {label} | {len(records)} | {sum(r.epochs or 0 for r in records)} | {result['seconds']:.1f} | "
            f"{reached} | {result['best'].score:.4f} | {result['test']:.4f} |"
        )
    print(
        f"| SVC baseline (RBF, z-scored) | - | - | {baseline['seconds']:.2f} | - | {baseline['dev']:.4f} | "
        f"{baseline['test']:.4f} |"
    )
    print()
    if reach["hyperband"] is not None:
        ratio = reach["hyperband"] / reach["random"]
        verdict = "met" if ratio <= 1 / 3 else "not met"
        print(f"Hyperband / random epochs to random's best: {ratio:.2f} (goal <= 0.33: {verdict})")
    else:
        print("Hyperband did not reach random search's best dev accuracy (goal <= 0.33: not met)")
    print(
        f"best trials' dev accuracy re-measured from their checkpoints: random {random['dev']:.4f}, "
        f"hyperband {hyperband['dev']:.4f}"
    )


if __name__ == "__main__":
    main()
