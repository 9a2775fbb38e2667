"""What does `cli.py train`'s training code cost over a plain `model.fit`?

Same model (same initial weights), same data, same epochs and batch size, measured side by side
in one run, alternating the two so machine noise hits both alike:

- plain: ``model.fit(x, y, batch_size, epochs, validation_data, shuffle=True)`` with no callbacks
- ours: ``recipes.training.fit`` (tf.data pipeline reshuffled each epoch, per-epoch learning-rate
  schedule, TerminateOnNaN, TensorBoard logging, the per-epoch progress line; early stopping off
  so both run the same number of epochs)

The physical limit is a ratio of 1.0: both run the same kernels on the same batches, so anything
above 1.0 is per-epoch bookkeeping. Goal: <= 1.05.

It also times the README's first command, ``python cli.py train`` with no arguments in a fresh folder (a new
process: imports, data, training, evaluation, plots and the report page), against its goal of 2 minutes on 2 cores.

Usage: python benchmarks/train_overhead.py [--epochs 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # puts the project on the import path

from recipes.adaptive_defaults import adapt_to_data  # noqa: E402
from recipes.backend import import_keras  # noqa: E402
from recipes.config import resolve_config  # noqa: E402
from recipes.input_pipeline import prepare_data  # noqa: E402
from recipes.models import build_model  # noqa: E402
from recipes.training import EVALUATION_BATCH, compile_model, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    config = resolve_config(None, {"epochs": args.epochs}, ["early_stopping=false"])
    keras = import_keras(config.seed)
    data = prepare_data(config)
    x_train, y_train = data.part("train")
    x_dev, y_dev = data.part("dev")
    config, _ = adapt_to_data(config, len(y_train))  # the batch size and the rest that train sets from the data
    initial = compile_model(build_model(config, data.spec), config, data.task).get_weights()

    def fresh_model():
        model = compile_model(build_model(config, data.spec), config, data.task)
        model.set_weights(initial)
        return model

    def plain() -> float:
        model = fresh_model()
        started = time.perf_counter()
        model.fit(
            x_train,
            y_train,
            batch_size=config.batch_size,
            epochs=config.epochs,
            shuffle=True,
            validation_data=(x_dev, y_dev),
            validation_batch_size=EVALUATION_BATCH,
            verbose=0,
        )
        return time.perf_counter() - started

    def ours(log_dir: Path) -> float:
        model = fresh_model()
        started = time.perf_counter()
        fit(model, config, data, log_dir, report=lambda line: None)
        return time.perf_counter() - started

    plain()  # warm-up: graph tracing and thread pools, paid once by both
    plain_times, our_times = [], []
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            plain_times.append(plain())
            our_times.append(ours(Path(folder) / f"tb{repeat}"))
    plain_median, our_median = statistics.median(plain_times), statistics.median(our_times)
    ratio = our_median / plain_median
    steps = -(-len(y_train) // config.batch_size) * config.epochs

    print(
        f"digits mlp ({keras.backend.backend()} backend), {len(y_train)} training examples, "
        f"batch {config.batch_size}, {config.epochs} epochs = {steps} steps, median of {args.repeats}"
    )
    print(f"{'path':<34}{'seconds':>10}{'ms/step':>10}{'ratio':>8}")
    print(f"{'plain model.fit':<34}{plain_median:>10.2f}{1000 * plain_median / steps:>10.2f}{1.0:>8.3f}")
    print(f"{'recipes.training.fit (cli train)':<34}{our_median:>10.2f}{1000 * our_median / steps:>10.2f}{ratio:>8.3f}")
    print(
        f"goal <= 1.05; physical limit 1.00 (same kernels, same batches); "
        f"overhead {100 * (ratio - 1):+.1f}% -> {'met' if ratio <= 1.05 else 'NOT met'}"
    )

    if not common.smoke():
        seconds = default_train_seconds()
        print(f"python cli.py train (defaults, fresh folder): {seconds:.1f} s (goal < 120 s on 2 cores)")


def default_train_seconds() -> float:
    """Wall time of ``python cli.py train`` with no arguments, in a fresh folder, as a new user runs it."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, str(common.ROOT / "cli.py"), "train"], cwd=folder, check=True, capture_output=True
        )
        return time.perf_counter() - started


if __name__ == "__main__":
    main()
