"""Keyword spotting on speech nobody here recorded, scored on voices the model never heard.

Usage (Debian's ``espeak-ng`` and ``sox`` on the PATH)::

    python benchmarks/speech.py [--folder /tmp/speech] [--recipe ds_cnn] [--seed 0]

Writes the clips of ``benchmarks/speech_clips.py`` (1,080 training clips of 12 classes from 120 voices, 288
held-out clips from 32 other voices; reused when the folder exists), trains the recipe on the training folder at
its defaults (its own 60/20/20 split), exports float32 and int8, and prints one table: the test split's accuracy
in Keras and int8 (from the export), the held-out voices' accuracy of each exported model through the device
runtime (:mod:`edge.device`: WAV → MFCC in numpy → LiteRT), and the three confusions the int8 model makes most on
held-out voices. The MLPerf Tiny keyword-spotting target is 90% top-1 in int8.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import common  # puts the project on the import path
from speech_clips import tools_missing, write_clips


def held_out_accuracy(model_path: Path, folder: Path) -> tuple[float, Counter]:
    """Accuracy of the exported model on the labelled folder ``folder/<class>/*.wav`` as ``python cli.py predict
    MODEL --input FOLDER`` scores it (:func:`edge.device.predictions.predict_file`), and the count of each (true,
    predicted) confusion."""
    from edge.device.predictions import predict_file

    _, predictions = predict_file(model_path, folder, k=1)
    confusions = Counter(
        (prediction.label, prediction.prediction.labels[0]) for prediction in predictions if not prediction.correct
    )
    return sum(prediction.correct for prediction in predictions) / len(predictions), confusions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "edge-recipes-speech")
    parser.add_argument("--recipe", default="ds_cnn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-class", type=int, default=90, help="training clips per class (when writing them)")
    parser.add_argument("--set", action="append", default=[], dest="assignments", help="extra config key=value")
    args = parser.parse_args()
    if tools_missing():
        raise SystemExit(f"error: {' and '.join(tools_missing())} not found; install Debian's espeak-ng and sox")
    if not (args.folder / "held_out").is_dir():
        held_out = {"held_out_per_class": 1} if common.smoke() else {}
        write_clips(args.folder, per_class=args.per_class, seed=args.seed, **held_out)

    from edge.export import export_run
    from recipes.config import resolve_config
    from recipes.training import train

    with tempfile.TemporaryDirectory() as out:
        config = resolve_config(
            None,
            {"recipe": args.recipe, "data": str(args.folder / "train"), "seed": args.seed, "out": out, "name": "kws"},
            args.assignments,
        )
        started = time.perf_counter()
        result = train(config, report=None)
        seconds = time.perf_counter() - started
        report = export_run(result.run_dir, variants=("float32", "int8"))
        parity = {variant.name: variant.parity for variant in report.variants}
        rows = []
        for name in ("float32", "int8"):
            model = result.run_dir / "edge" / f"model_{name}.tflite"
            accuracy, confusions = held_out_accuracy(model, args.folder / "held_out")
            rows.append((name, parity[name].accuracy, accuracy, confusions))
    held_out = sum(1 for _ in (args.folder / "held_out").rglob("*.wav"))
    print(
        f"{args.recipe} on {args.folder / 'train'} (seed {args.seed}, defaults; trained in {seconds:.0f} s, "
        f"{result.epochs_run} epochs, kept epoch {result.metrics['best_epoch']}); held-out: {held_out} clips of voices "
        "never heard in training"
    )
    print(f"Keras test split accuracy: {result.metrics['test']['accuracy']:.4f}")
    print(f"{'model':<8} {'test split':>10} {'held-out voices':>16}  most frequent held-out confusions")
    for name, test, held, confusions in rows:
        top = ", ".join(f"{true}→{guess} ×{count}" for (true, guess), count in confusions.most_common(3))
        print(f"{name:<8} {test:>10.4f} {held:>16.4f}  {top}")


if __name__ == "__main__":
    main()
