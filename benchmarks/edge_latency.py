"""Edge latency: Keras against LiteRT, single-sample, measured side by side in one process.

Usage::

    python benchmarks/edge_latency.py [RUN_DIR] [--runs 500]

Without RUN_DIR it trains the default recipe (mlp on digits, seed 0) into a temporary folder. The run is
exported (float32 and int8) when its ``edge/`` lacks them. Printed: the single-sample latency of the
Keras model (eager call and ``predict``), of LiteRT float32 and int8 (set input, invoke, read output),
and of a one-weight model, which is the interpreter's own invoke overhead: the floor no model can go
below. Then sizes: int8 bytes per parameter against the physical limit of 1.0 (one byte per int8
weight), with the file taken apart into weights, biases, quantization parameters and structure.
"""

from __future__ import annotations

import platform
import tempfile
from pathlib import Path
from typing import Any

from common import prepare_run, run_parser


def size_breakdown(content: bytes) -> dict[str, int]:
    """Bytes of int8 tensor data, int32 tensor data, quantization parameters and the rest of a flatbuffer."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(content, 0)
    parts = {"int8 data": 0, "int32 data": 0, "other data": 0, "quantization parameters": 0}
    for graph_index in range(model.SubgraphsLength()):
        graph = model.Subgraphs(graph_index)
        for tensor_index in range(graph.TensorsLength()):
            tensor = graph.Tensors(tensor_index)
            data = model.Buffers(tensor.Buffer()).DataLength()
            key = {schema.TensorType.INT8: "int8 data", schema.TensorType.INT32: "int32 data"}.get(
                tensor.Type(), "other data"
            )
            parts[key] += data
            quantization = tensor.Quantization()
            if quantization is not None:  # float32 scales, int64 zero points
                parts["quantization parameters"] += 4 * quantization.ScaleLength() + 8 * quantization.ZeroPointLength()
    parts["structure and metadata"] = len(content) - sum(parts.values())
    return parts


def floor_model() -> bytes:
    """A float32 model with one input and one weight: what an invoke costs when the model costs nothing."""
    from edge.convert import convert_model
    from edge.variants import VARIANTS
    from recipes.backend import import_keras

    keras = import_keras(0)
    inputs = keras.Input((1,))
    return convert_model(keras.Model(inputs, keras.layers.Dense(1, use_bias=False)(inputs)), VARIANTS["float32"])


def prepare_exported_run(run_dir: str | None, workspace: Path) -> Path:
    """The run to measure (:func:`common.prepare_run`), exported when it was not."""
    from edge.export import export_run

    run = prepare_run(run_dir, workspace)
    if not all((run / "edge" / name).is_file() for name in ("model_float32.tflite", "model_int8.tflite")):
        print(f"exporting {run} (float32, int8) ...", flush=True)
        export_run(run, ["float32", "int8"])
    return run


def measure(run: Path, runs: int, warmup: int) -> dict[str, Any]:
    """Every latency and size figure, measured in this process one after the other."""
    import numpy as np

    from edge.benchmark import keras_latency, sample_inputs, time_calls
    from edge.device.model import EdgeModel
    from recipes.runs import load_model

    keras_model = load_model(run)
    example = sample_inputs(tuple(keras_model.input_shape[1:]), 1)
    latencies = {
        "Keras eager call model(x)": keras_latency(keras_model, runs, warmup),
        "Keras model.predict(x)": keras_latency(keras_model, max(20, runs // 10), min(warmup, 5), use_predict=True),
    }
    models = {name: EdgeModel.load(run / "edge" / f"model_{name}.tflite") for name in ("float32", "int8")}
    floor = EdgeModel(floor_model(), source="floor model")
    for label, model in (
        ("LiteRT float32 invoke", models["float32"]),
        ("LiteRT int8 invoke", models["int8"]),
        ("LiteRT invoke floor (1-weight model)", floor),
    ):
        prepared = model.quantize(model.as_batch(example if model is not floor else np.zeros((1, 1), np.float32)))
        latencies[label] = time_calls(lambda model=model, prepared=prepared: model.invoke(prepared), runs, warmup)
    return {
        "latencies": latencies,
        "parameters": int(keras_model.count_params()),
        "bytes": {name: len(model.content) for name, model in models.items()},
        "breakdown": size_breakdown(models["int8"].content),
    }


def report(figures: dict[str, Any], runs: int) -> None:
    """Print the latency table, the size table and the limits."""
    latencies = figures["latencies"]
    eager = latencies["Keras eager call model(x)"].median_us
    int8 = latencies["LiteRT int8 invoke"].median_us
    print(
        f"\nsingle-sample latency, {runs} timed calls each after warm-up "
        f"(Python {platform.python_version()}, {platform.machine()}, LiteRT default threads)"
    )
    print(f"{'path':<38}{'median µs':>12}{'p90 µs':>12}{'Keras eager / this':>20}{'this / int8':>13}")
    for label, latency in latencies.items():
        print(
            f"{label:<38}{latency.median_us:>12,.1f}{latency.p90_us:>12,.1f}"
            f"{eager / latency.median_us:>19,.1f}x{latency.median_us / int8:>12,.2f}x"
        )
    parameters, sizes = figures["parameters"], figures["bytes"]
    print(f"\nsizes ({parameters:,} parameters)")
    for name, size in sizes.items():
        print(f"  {name:<8} {size:>9,} bytes  {size / parameters:.3f} bytes/parameter")
    print(f"  int8 / float32 = {sizes['int8'] / sizes['float32']:.1%} (limit for the issue: 35%)")
    per_parameter = sizes["int8"] / parameters
    print(
        f"  int8 bytes per parameter {per_parameter:.3f} against the physical limit 1.0 "
        f"(one byte per int8 weight): {per_parameter - 1:.1%} above it"
    )
    print("  int8 file taken apart:")
    for part, size in figures["breakdown"].items():
        print(f"    {part:<26}{size:>9,} bytes  {size / sizes['int8']:.1%}")
    floor = latencies["LiteRT invoke floor (1-weight model)"].median_us
    print(
        f"\nlimits: an int8 file cannot go below 1.0 byte per weight (int32 biases, per-channel scales and the "
        f"flatbuffer add the rest); a LiteRT invoke cannot go below the interpreter's own overhead, "
        f"{floor:.1f} µs here, so int8 at {int8:.1f} µs is {int8 - floor:.1f} µs of arithmetic above the floor."
    )


def main() -> None:
    """Parse the arguments, prepare the run, measure and print."""
    parser = run_parser(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="timed calls per figure")
    parser.add_argument("--warmup", type=int, default=50, help="untimed calls first")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as workspace:
        run = prepare_exported_run(arguments.run_dir, Path(workspace))
        report(measure(run, arguments.runs, arguments.warmup), arguments.runs)


if __name__ == "__main__":
    main()
