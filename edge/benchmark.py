"""Size and latency of exported models, and of the Keras model beside them.

Single-sample latency is the time of one invoke as a device does it (set the input tensor, invoke,
read the output) on the LiteRT interpreter, median and 90th percentile over ``runs`` calls after
``warmup`` calls. Batch throughput runs the runtime's whole path (quantize, invoke, dequantize) on
``batch_size`` examples. The Keras figure is an eager call ``model(x)`` on one example.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.device.errors import UserError
from edge.device.model import EdgeModel
from edge.variants import COMPRESSED_VARIANTS, VARIANTS
from recipes.rundir import write_json

BENCHMARK_NAME = "benchmark.json"


@dataclass
class Latency:
    """Median and 90th percentile of repeated calls, in microseconds."""

    median_us: float
    p90_us: float
    runs: int

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        """Summarize call durations given in seconds."""
        ordered = sorted(seconds)
        p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
        return cls(float(np.median(ordered)) * 1e6, p90 * 1e6, len(ordered))


def time_calls(call: Callable[[], Any], runs: int, warmup: int) -> Latency:
    """Call ``call`` ``warmup`` times untimed, then ``runs`` times timed one by one."""
    for _ in range(warmup):
        call()
    durations = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return Latency.of(durations)


@dataclass
class ModelBenchmark:
    """Size and speed of one ``.tflite`` file."""

    name: str
    path: str
    bytes: int
    single: Latency
    batch_size: int
    throughput_per_s: float
    threads: int | None


def sample_inputs(shape: tuple[int, ...], count: int) -> np.ndarray:
    """Seeded raw inputs ``(count, *shape)`` (values do not change the cost of these models)."""
    return np.random.default_rng(0).uniform(0.0, 1.0, size=(count, *shape)).astype(np.float32)


def benchmark_model(
    model: EdgeModel, name: str, path: Path, runs: int, warmup: int, batch_size: int, threads: int | None
) -> ModelBenchmark:
    """Measure one loaded model: single-sample invoke latency and batch throughput."""
    single = model.quantize(model.as_batch(sample_inputs(model.input_shape, 1)))
    if not model.dynamic_batch:
        single = np.repeat(single, model.input.shape[0], axis=0)
    latency = time_calls(lambda: model.invoke(single), runs, warmup)
    batch = sample_inputs(model.input_shape, batch_size)
    batches = max(3, runs // 20)
    batch_latency = time_calls(lambda: model.run(batch), batches, min(warmup, 3))
    return ModelBenchmark(
        name, str(path), path.stat().st_size, latency, batch_size, batch_size / (batch_latency.median_us / 1e6), threads
    )


def keras_latency(model: Any, runs: int, warmup: int, use_predict: bool = False) -> Latency:
    """Single-sample latency of a Keras model: an eager call ``model(x)``, or ``model.predict(x)``."""
    x = sample_inputs(tuple(model.input_shape[1:]), 1)
    if use_predict:
        return time_calls(lambda: model.predict(x, verbose=0), runs, warmup)
    return time_calls(lambda: model(x, training=False), runs, warmup)


@dataclass
class BenchmarkReport:
    """The benchmark of a ``.tflite`` file or of every variant of a run."""

    models: list[ModelBenchmark]
    keras_eager: Latency | None = None
    keras_parameters: int | None = None
    written: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``benchmark.json`` and ``--json``."""
        return {
            "models": [asdict(model) for model in self.models],
            "keras_eager": asdict(self.keras_eager) if self.keras_eager else None,
            "keras_parameters": self.keras_parameters,
        }


def check_settings(runs: int, warmup: int, batch_size: int, threads: int | None) -> None:
    """Refuse impossible benchmark settings.

    Raises:
        UserError: runs or batch size < 1, warm-up < 0, or threads < 1.
    """
    if runs < 1 or batch_size < 1 or warmup < 0 or (threads is not None and threads < 1):
        raise UserError(
            f"--runs ({runs}), --batch-size ({batch_size}) and --threads ({threads}) must be >= 1 "
            f"and --warmup ({warmup}) >= 0"
        )


def benchmark_path(
    path: str | Path, runs: int = 200, warmup: int = 20, threads: int | None = None, batch_size: int = 64
) -> BenchmarkReport:
    """Benchmark a ``.tflite`` file, or every variant exported in a run directory.

    For a run directory the Keras model's eager latency is measured beside the variants, the report is written to
    ``edge/benchmark.json`` and the run's ``report.html`` is rewritten with it.

    Args:
        path: a ``.tflite`` file or a run directory with an ``edge/`` export.
        runs: timed single-sample invokes.
        warmup: untimed invokes before timing.
        threads: LiteRT CPU threads; default LiteRT's choice.
        batch_size: examples per batch for the throughput figure.

    Raises:
        UserError: bad settings, a missing path, a run without an export, or a damaged model.
    """
    check_settings(runs, warmup, batch_size, threads)
    path = Path(path)
    if not path.is_dir():
        model = EdgeModel.load(path, threads)
        return BenchmarkReport([benchmark_model(model, path.stem, path, runs, warmup, batch_size, threads)])
    from recipes.runs import Run, load_model

    edge_dir = Run(path).require(Run.MODEL) / Run.EDGE
    files = [
        edge_dir / variant.filename
        for variant in (*VARIANTS.values(), *COMPRESSED_VARIANTS.values())
        if (edge_dir / variant.filename).is_file()
    ]
    if not files:
        raise UserError(f"{path} has no exported models in edge/; run 'python cli.py export {path}' first")
    rows = [
        benchmark_model(
            EdgeModel.load(file, threads), file.stem.removeprefix("model_"), file, runs, warmup, batch_size, threads
        )
        for file in files
    ]
    keras_model = load_model(path)
    report = BenchmarkReport(
        rows, keras_latency(keras_model, max(10, runs // 4), min(warmup, 5)), int(keras_model.count_params())
    )
    report.written = write_json(edge_dir / BENCHMARK_NAME, report.to_dict())
    from recipes.report_page import write_report

    write_report(path)  # the run's page shows the measured latencies
    return report
