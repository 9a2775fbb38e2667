"""int8 on tables in mixed units: the z-score inside the int8 graph (the old layout) against the z-score applied
in float in front of it (the export's layout), side by side, per data set.

Usage::

    python benchmarks/int8_layout.py [--epochs N]

Trains the mlp recipe (seed 0) on digits, iris, wine, breast_cancer and a generated CSV whose six features
span six orders of magnitude and whose class depends on the two smallest-scale ones, then converts each
model to full int8 in three layouts, all calibrated on the same stratified 300 training examples:

- ``raw``: the whole model, z-score included, quantized from raw features with one input scale (the old
  export);
- ``zscored``: the model after its z-score layer, fed z-scores computed in float32 by the runtime or the C
  header's preprocess function (the export now);
- ``float-zscore``: the z-score ops kept in float inside the model, in front of QUANTIZE (the converter's
  selective quantization, through its quantization debugger's deny list).

Printed per data set and layout: Keras accuracy and the int8 model's over the whole data set, argmax
agreement with Keras, bytes, TFLite Micro arena (when ``tflite-micro`` is installed) and the LiteRT median
single-example invoke time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import common  # puts the project on the import path
import numpy as np

DATA = ("digits", "iris", "wine", "breast_cancer", "mixed_units")


def median_invoke_us(model, example, runs: int = 300) -> float:
    """Median LiteRT invoke time of one prepared example, after 20 warm-up calls."""
    prepared = model.quantize(model.as_batch(example))
    for _ in range(20):
        model.invoke(prepared)
    times = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        model.invoke(prepared)
        times.append(time.perf_counter_ns() - started)
    return float(np.median(times)) / 1e3


def float_zscore_layout(model, calibration: np.ndarray) -> bytes:
    """The whole model with its z-score ops (SUB, MUL) left in float in front of the int8 graph."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([example[np.newaxis]] for example in calibration)
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=["SUB", "MUL"])
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter,
        debug_dataset=lambda: ([example[np.newaxis]] for example in calibration[:8]),
        debug_options=options,
    )
    return bytes(debugger.get_nondebug_quantized_model())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the recipe's)")
    arguments = parser.parse_args()
    from edge.convert import calibration_samples, convert_for_device, convert_model
    from edge.device.model import EdgeModel
    from edge.micro import micro_check
    from edge.variants import VARIANTS
    from recipes.config import resolve_config
    from recipes.data import load_dataset
    from recipes.runs import Run
    from recipes.training import train
    from tests.test_edge_sensor_int8 import mixed_units_csv

    workspace = Path(tempfile.mkdtemp(prefix="int8-layout-"))
    rows = []
    for name in DATA[:1] if common.smoke() else DATA:
        source, label = (
            (str(mixed_units_csv(workspace / "mixed_units.csv")), "state") if name == "mixed_units" else (name, "label")
        )
        settings = {"data": source, "label": label, "out": str(workspace)}
        if arguments.epochs:
            settings["epochs"] = arguments.epochs
        result = train(resolve_config(None, settings, []), report=None)
        dataset = load_dataset(source, label, None)
        train_split = Run(result.run_dir).split().train
        calibration = calibration_samples(dataset.x[train_split], 300, 0, dataset.y[train_split])
        keras_predicted = np.asarray(result.model.predict(dataset.x, verbose=0)).argmax(axis=1)
        keras_accuracy = float(np.mean(keras_predicted == dataset.y))
        spread = dataset.x.reshape(len(dataset.x), -1).std(axis=0)
        spread = spread[spread > 0]
        layouts = {"raw": (convert_model(result.model, VARIANTS["int8"], calibration), None)}
        layouts["zscored"] = convert_for_device(result.model, VARIANTS["int8"], calibration)[:2]  # no output scaling
        try:
            layouts["float-zscore"] = (float_zscore_layout(result.model, calibration), None)
        except Exception as error:  # a converter that refuses selective quantization: say so, measure the rest
            print(f"{name}: float-zscore layout not converted ({type(error).__name__}: {str(error)[:80]})")
        for layout, (content, standardization) in layouts.items():
            model = EdgeModel(content, standardization=standardization)
            predicted = model.predict(dataset.x).argmax(axis=1)
            micro = micro_check(model, dataset.x[:1])
            rows.append(
                (
                    name,
                    f"{spread.max() / spread.min():.0e}",
                    layout,
                    keras_accuracy,
                    float(np.mean(predicted == dataset.y)),
                    float(np.mean(predicted == keras_predicted)),
                    len(content),
                    micro.arena_bytes,
                    median_invoke_us(model, dataset.x[:1]),
                )
            )
    header = ("data", "feature std span", "layout", "Keras acc", "int8 acc", "agree", "bytes", "arena", "invoke µs")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, span, layout, keras, int8, agree, size, arena, micro_seconds in rows:
        print(
            f"| {name} | {span} | {layout} | {keras:.2%} | {int8:.2%} | {agree:.1%} | {size:,} | "
            f"{arena if arena is None else format(arena, ',')} | {micro_seconds:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
