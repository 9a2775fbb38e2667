"""Defaults before and after they followed the data size: the same commands in two checkouts, side by side.

Usage::

    git worktree add /tmp/before <commit before the change>
    python benchmarks/small_data_defaults.py --before /tmp/before [--speech /tmp/speech/train]

Runs ``python cli.py train --data SET --recipe RECIPE --seed 0`` at its defaults in the checkout given by
``--before`` and in this one, for the built-in sets (digits, iris, wine, breast_cancer, diabetes, motion, machine)
and, with ``--speech``, a folder of spoken keywords (``benchmarks/speech_clips.py``), and prints per set: the test
figure (accuracy, a regression's R², an anomaly detector's AUC), epochs run, the kept epoch and seconds, before and
after, each the mean over ``--seeds`` seeds. Both checkouts run in this Python, one command at a time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

SETS = (
    ("digits", "mlp"),
    ("iris", "mlp"),
    ("wine", "mlp"),
    ("breast_cancer", "mlp"),
    ("diabetes", "mlp"),
    ("motion", "cnn1d"),
    ("machine", "autoencoder"),
)


def run(tree: Path, data: str, recipe: str, out: Path, seed: int) -> dict:
    """Train in checkout ``tree``; the run's test figure, epochs, kept epoch and seconds."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(tree / "cli.py"), "train", "--data", data, "--recipe", recipe, "--seed", str(seed)]
        + ["--out", str(out), "--name", "run", "-q"],
        cwd=tree,
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - started
    run_dir = out / "train" / "run-1"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    epochs = json.loads((run_dir / "run.json").read_text())["epochs_run"]
    test = metrics["test"]
    figure = next(test[key] for key in ("auc", "r2", "accuracy") if test.get(key) is not None)
    return {"figure": figure, "epochs": epochs, "kept": metrics.get("best_epoch"), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the commit to compare with")
    parser.add_argument("--speech", help="a folder of keyword clips to add (ds_cnn)")
    parser.add_argument("--sets", help="comma-separated built-in sets to run (default: all)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1; the figures are their means")
    args = parser.parse_args()
    chosen = set(args.sets.split(",")) if args.sets else None
    sets = [row for row in SETS if chosen is None or row[0] in chosen]
    sets += [(args.speech, "ds_cnn")] if args.speech else []
    print("| data | recipe | test before | test after | epochs before → after | kept epoch | seconds |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for data, recipe in sets:
        results = []
        for tree in (args.before, common.ROOT):
            runs = []
            for seed in range(args.seeds):
                with tempfile.TemporaryDirectory() as out:
                    runs.append(run(Path(tree), data, recipe, Path(out), seed))
            results.append({key: sum(r[key] for r in runs) / len(runs) for key in runs[0]})
        before, after = results
        name = Path(data).name if "/" in data else data
        print(
            f"| {name} | {recipe} | {before['figure']:.4f} | {after['figure']:.4f} | {before['epochs']:.0f} → "
            f"{after['epochs']:.0f} | {before['kept']:.0f} → {after['kept']:.0f} | "
            f"{before['seconds']:.0f} → {after['seconds']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
