"""Reference models: size and speed of the four MLPerf Tiny architectures as int8 models.

Usage::

    python benchmarks/reference_models.py [--runs 500] [--threads 1]

For each reference recipe at its reference input (ds_cnn 49×10×1, mobilenet_v1 96×96×3, resnet8
32×32×3, autoencoder 640) and default config: parameters (BatchNorm included), multiply-accumulates
per example (:mod:`recipes.macs`), the size of the full-integer int8 ``.tflite`` (calibrated on 100
seeded random inputs: weights are untrained, which changes no size and no latency) as the converter writes it
(every layer per channel) and after export's per-layer choice of per-tensor weights (:mod:`edge.per_tensor`;
untrained weights have alike channels, so every layer goes per tensor here: what trained models choose is in
BENCHMARKS.md), MLCommons' own int8 file of the model, bytes per
parameter (1.0 is the physical limit of one byte per int8 weight; BatchNorm folds away, biases are
int32, per-channel scales and the flatbuffer's structure add the rest), and the LiteRT single-sample
latency (set input, invoke, read output; median and 90th percentile of ``--runs`` invokes after a
warm-up), with the MAC rate that latency implies.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

CALIBRATION_EXAMPLES = 100
# The int8 files MLCommons publishes for the reference models, in bytes (mlcommons/tiny at commit
# 1afd2c9820f795965a6134facd0b4dfae41ef23f, benchmark/training/<task>/trained_models/).
MLCOMMONS_INT8_BYTES = {
    "ds_cnn": 53_936,  # keyword_spotting/trained_models/kws_ref_model.tflite
    "mobilenet_v1": 333_288,  # visual_wake_words/trained_models/vww_96_int8.tflite
    "resnet8": 98_496,  # image_classification/trained_models/pretrainedResnet_quant.tflite
    "autoencoder": 276_976,  # anomaly_detection/trained_models/ad01_int8.tflite
}


def measure(recipe: str, folder: Path, runs: int, warmup: int, threads: int | None) -> dict[str, float]:
    """Every figure of one reference recipe; its int8 model is written into ``folder``."""
    import numpy as np

    from edge.benchmark import benchmark_model
    from edge.convert import convert_model
    from edge.device.model import EdgeModel
    from edge.per_tensor import narrow_quantization, output_error
    from edge.variants import VARIANTS
    from recipes.backend import import_keras
    from recipes.config import TrainConfig
    from recipes.macs import count_macs
    from recipes.models import build_model
    from recipes.reference_models import REFERENCE_SPECS

    import_keras(0)
    spec = REFERENCE_SPECS[recipe]
    model = build_model(TrainConfig(recipe=recipe), spec)
    calibration = np.random.default_rng(0).normal(size=(CALIBRATION_EXAMPLES, *spec.input_shape)).astype(np.float32)
    per_channel = convert_model(model, VARIANTS["int8"], calibration)
    reference = model.predict(calibration, verbose=0)
    chosen = narrow_quantization(
        per_channel, lambda content: output_error(reference, EdgeModel(content).predict(calibration))
    )
    path = folder / f"{recipe}_int8.tflite"
    path.write_bytes(chosen.content)
    result = benchmark_model(EdgeModel.load(path, threads), recipe, path, runs, warmup, 1, threads)
    parameters, macs = int(model.count_params()), count_macs(model)
    return {
        "parameters": parameters,
        "macs": macs,
        "per_channel_bytes": len(per_channel),
        "per_tensor_layers": f"{len(chosen.per_tensor)}/{len(chosen.per_tensor) + len(chosen.per_channel)}",
        "int8_bytes": result.bytes,
        "bytes_per_parameter": result.bytes / parameters,
        "median_us": result.single.median_us,
        "p90_us": result.single.p90_us,
        "macs_per_us": macs / result.single.median_us,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=500, help="timed invokes per model")
    parser.add_argument("--warmup", type=int, default=50, help="untimed invokes first")
    parser.add_argument("--threads", type=int, default=None, help="LiteRT CPU threads (default: LiteRT's)")
    args = parser.parse_args()
    from recipes.reference_models import REFERENCE_SPECS

    print(f"# python {platform.python_version()}, {platform.machine()}, LiteRT threads {args.threads or 'default'}")
    print(
        "| model | input | parameters | MACs | int8 bytes, per channel | per-tensor layers | int8 bytes | "
        "MLCommons int8 bytes | bytes/param | median µs | p90 µs | MACs/µs |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as folder:
        for recipe, spec in REFERENCE_SPECS.items():
            row = measure(recipe, Path(folder), args.runs, args.warmup, args.threads)
            shape = "×".join(str(side) for side in spec.input_shape)
            print(
                f"| {recipe} | {shape} | {row['parameters']:,} | {row['macs']:,} | {row['per_channel_bytes']:,} | "
                f"{row['per_tensor_layers']} | {row['int8_bytes']:,} | {MLCOMMONS_INT8_BYTES[recipe]:,} | "
                f"{row['bytes_per_parameter']:.2f} | {row['median_us']:,.1f} | {row['p90_us']:,.1f} | "
                f"{row['macs_per_us']:,.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
