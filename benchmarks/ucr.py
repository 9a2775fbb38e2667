"""The time-series recipes against MiniRocket on the UCR/UEA classification sets shipped inside the aeon wheel.

Usage::

    python3 -m venv /work/aeon-venv && /work/aeon-venv/bin/pip install aeon==1.6.0   # once, beside the project
    python benchmarks/ucr.py                                  # every set, minirocket and cnn1d at their defaults
    python benchmarks/ucr.py --sets GunPoint,ArrowHead --recipes minirocket --set rocket_ramp=0.05

aeon is no dependency of the project (its numba pin holds numpy below the project's tested 2.4), so it lives in its
own virtual environment (``--aeon-python``, default ``$AEON_PYTHON`` or ``/work/aeon-venv/bin/python``):
``benchmarks/ucr_aeon.py`` runs there once, writes each set's official TRAIN and TEST files as an ``.npz`` of series
and MiniRocket's test accuracy (aeon 1.6.0, defaults, ``random_state`` 0) to ``minirocket.json`` in ``--cache``;
later runs read them. The classification sets are those with ``_TRAIN.ts`` and ``_TEST.ts`` files; of the two
with unequal lengths (JapaneseVowels, PickupGestureWiimoteZ) the equal-length ``_eq`` files the wheel ships.

Each recipe trains at its defaults (seed 0) through :func:`recipes.training.train` on the official split: the test
split is the TEST file, and a stratified fifth of the TRAIN file (seeded) is the dev split that early stopping
watches; the rest trains. Then :func:`edge.export.export_run` writes float32 and int8, and the int8 file runs
through the project's TensorFlow-free runtime (:class:`edge.device.model.EdgeModel`, as ``predict`` does) on the
whole TEST file. One row per set and recipe: examples, length, channels, classes, MiniRocket's accuracy, Keras's
and int8's, the int8 file's bytes, the TFLite Micro arena (``tflite-micro`` installed), MACs per series and the
training seconds on this machine; an int8 file outside its parity tolerance is marked ``!``. Then each recipe's
mean rank among MiniRocket and the recipes measured (int8 accuracy; ties share the mean rank) and the sets whose
int8 model fits the size cut (file <= 256 KB, arena <= 64 KB). ``--json`` also writes the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

DEV_SHARE = 0.2  # of the TRAIN file, stratified: the dev split early stopping watches
FLASH_LIMIT = 256 * 1024
ARENA_LIMIT = 64 * 1024


def aeon_figures(cache: Path, aeon_python: str) -> dict:
    """MiniRocket's figures and the sets' .npz files in ``cache``, made by ``ucr_aeon.py`` in aeon's venv once."""
    figures = cache / "minirocket.json"
    if not figures.exists():
        if not Path(aeon_python).exists():
            sys.exit(f"no aeon interpreter at {aeon_python}: make its venv (see the docstring) or pass --aeon-python")
        script = Path(__file__).with_name("ucr_aeon.py")
        subprocess.run([aeon_python, str(script), str(cache)], check=True)
    return json.loads(figures.read_text())


def dev_indices(labels: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A stratified, seeded ``share`` of each class's positions (at least one of a class with two or more)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for value in np.unique(labels):
        rows = np.flatnonzero(labels == value)
        count = min(max(int(round(share * len(rows))), 1 if len(rows) > 1 else 0), len(rows) - 1)
        chosen.extend(rng.choice(rows, count, replace=False).tolist())
    return np.sort(np.asarray(chosen, np.int64))


def run_set(name: str, archive: Path, recipe: str, overrides: list[str], workspace: Path) -> dict:
    """Train ``recipe`` on one set's official split, export it and score its int8 file on the TEST file."""
    import recipes.input_pipeline as input_pipeline
    import recipes.training as training
    from edge.device.model import EdgeModel
    from edge.export import export_run
    from recipes.config import resolve_config
    from recipes.macs import count_macs
    from recipes.splitting import Split

    arrays = np.load(archive)
    x_train, x_test = arrays["x_train"], arrays["x_test"]
    y_train, y_test = arrays["y_train"], arrays["y_test"]
    data = workspace / f"{name}.npz"
    np.savez(data, x=np.concatenate([x_train, x_test]), y=np.concatenate([y_train, y_test]))
    dev = dev_indices(y_train, DEV_SHARE, 0)
    official = Split(
        np.setdiff1d(np.arange(len(y_train)), dev),
        dev,
        np.arange(len(y_train), len(y_train) + len(y_test)),
        True,
    )
    prepare = training.prepare_data

    def prepare_official(config, progress=None):  # the official split instead of the project's own
        prepared = prepare(config, progress)
        spec = input_pipeline.data_spec(prepared.dataset, official, prepared.task)
        return input_pipeline.PreparedData(prepared.dataset, official, spec, prepared.task, prepared.note)

    steps = x_train.shape[1]
    config = resolve_config(
        None,
        {"recipe": recipe, "data": str(data), "out": str(workspace), "seed": 0, "name": f"{name}-{recipe}"},
        [f"window_seconds={steps}", "sample_rate=1", *overrides],
    )
    training.prepare_data = prepare_official
    try:
        result = training.train(config, report=None)
    finally:
        training.prepare_data = prepare
    report = export_run(result.run_dir, ["float32", "int8"], keep_failing=True)
    int8 = next(variant for variant in report.variants if variant.name == "int8")
    model = EdgeModel.load(result.run_dir / "edge" / "model_int8.tflite")
    classes = list(model.class_names) if getattr(model, "class_names", None) else sorted(set(y_train.tolist()))
    predicted = np.asarray(classes)[np.argmax(model.predict(x_test), axis=1)]
    arena = report.micro.arena_bytes if report.micro is not None else None
    return {
        "set": name,
        "recipe": recipe,
        "train": len(y_train),
        "test": len(y_test),
        "steps": steps,
        "channels": x_train.shape[2],
        "classes": len(set(y_train.tolist())),
        "keras": float(result.metrics["test"]["accuracy"]),
        "int8": float(np.mean(predicted == y_test)),
        "int8_passes": "int8" not in report.failing,
        "int8_bytes": int8.bytes,
        "arena_bytes": arena,
        "macs": count_macs(result.model),
        "seconds": round(result.seconds, 1),
        "epochs": result.epochs_run,
    }


def ranks(scores: dict[str, float]) -> dict[str, float]:
    """Rank 1 for the highest score; tied scores share the mean of their ranks."""
    ordered = sorted(scores.values(), reverse=True)
    return {
        key: float(np.mean([place + 1 for place, value in enumerate(ordered) if value == score]))
        for key, score in scores.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", help="comma-separated set names (default: every classification set)")
    parser.add_argument("--recipes", default="minirocket,cnn1d", help="comma-separated recipes")
    parser.add_argument("--set", action="append", default=[], dest="overrides", help="key=value for every run")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "edge-recipes-ucr"))
    parser.add_argument("--aeon-python", default=os.environ.get("AEON_PYTHON", "/work/aeon-venv/bin/python"))
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    figures = aeon_figures(cache, args.aeon_python)["sets"]
    names = args.sets.split(",") if args.sets else sorted(figures)
    recipes = args.recipes.split(",")
    print(
        f"{'set':<25} {'train':>5} {'test':>5} {'len':>5} {'ch':>3} {'cls':>3} {'MiniRocket':>10} {'recipe':<10} "
        f"{'Keras':>6} {'int8':>7} {'int8 B':>8} {'arena B':>8} {'MACs':>11} {'train s':>7}",
        flush=True,
    )
    rows, rank_table = [], {}
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            scores = {"MiniRocket": figures[name]["accuracy"]}
            for recipe in recipes:
                row = run_set(name, cache / f"{name}.npz", recipe, args.overrides, Path(folder))
                row["minirocket"] = figures[name]["accuracy"]
                rows.append(row)
                scores[recipe] = row["int8"]
                mark = "" if row["int8_passes"] else "!"
                print(
                    f"{name:<25} {row['train']:>5} {row['test']:>5} {row['steps']:>5} {row['channels']:>3} "
                    f"{row['classes']:>3} {row['minirocket']:>10.4f} {recipe:<10} {row['keras']:>6.4f} "
                    f"{row['int8']:>6.4f}{mark:1} {row['int8_bytes']:>8,} {row['arena_bytes'] or '-':>8} "
                    f"{row['macs']:>11,} {row['seconds']:>7.1f}",
                    flush=True,
                )
            rank_table[name] = ranks(scores)
    print(
        "mean rank (int8 accuracy; MiniRocket's float): "
        + ", ".join(
            f"{key} {np.mean([table[key] for table in rank_table.values()]):.2f}" for key in ["MiniRocket", *recipes]
        )
    )
    for recipe in recipes:
        own = [row for row in rows if row["recipe"] == recipe]
        fits = [row for row in own if row["int8_bytes"] <= FLASH_LIMIT and (row["arena_bytes"] or 0) <= ARENA_LIMIT]
        within = [row["set"] for row in fits if row["int8"] >= row["minirocket"] - 0.03]
        print(
            f"{recipe}: {len(fits)}/{len(own)} sets fit 256 KB flash and 64 KB arena; within 3 points of "
            f"MiniRocket on {len(within)}: {', '.join(within) or '-'}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
