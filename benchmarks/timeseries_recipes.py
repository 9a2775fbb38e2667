"""The 1-D recipes on the built-in ``motion`` stream: accuracy, size, arena and latency, side by side.

Usage::

    python benchmarks/timeseries_recipes.py

Trains (seed 0, 2 s windows every second, split by recording) ``cnn1d`` on raw windows (100 steps × 6
channels) with conv_filters 16,32, hidden_units 32 and window augmentation (time_shift 0.1, amplitude_scale
0.2), and ``mlp`` on the spectral front end (66 features) with hidden_units 32; exports float32 and int8 and
prints per recipe: parameters, MACs per window, Keras and int8 test accuracy, int8 bytes, the TFLite Micro arena
(when ``tflite-micro`` is installed), the LiteRT median single-window invoke time on this machine, the estimated
latency on a Cortex-M4 at 120 MHz (MACs × cycles/MAC, ``tuning/hardware.py``) and the time the front end takes
per window in numpy.
"""

from __future__ import annotations

import tempfile
import time

import common  # puts the project on the import path
import numpy as np

RUNS = (
    ("cnn1d", "raw", {"conv_filters": [16, 32], "hidden_units": [32], "time_shift": 0.1, "amplitude_scale": 0.2}),
    ("mlp", "spectral", {"hidden_units": [32]}),
)


def main() -> None:
    from edge.benchmark import time_calls
    from edge.device.model import EdgeModel
    from edge.device.windows import describe, model_inputs
    from edge.export import export_run
    from edge.targets import estimate_latency_ms, target_named
    from recipes.config import TrainConfig
    from recipes.data.motion import CHANNELS, motion_recordings
    from recipes.macs import count_macs
    from recipes.training import train

    window = motion_recordings(seed=5, people=1)[0][2][:100][np.newaxis]
    print(
        f"{'recipe':<7} {'front end':<9} {'params':>7} {'MACs':>8} {'Keras acc':>9} {'int8 acc':>8} {'int8 B':>7} "
        f"{'arena B':>8} {'invoke µs':>9} {'M4 est ms':>9} {'front end µs':>12}"
    )
    with tempfile.TemporaryDirectory() as folder:
        for recipe, front_end, settings in RUNS:
            epochs = 1 if common.smoke() else 40
            config = TrainConfig(
                recipe=recipe, data="motion", front_end=front_end, out=folder, epochs=epochs, **settings
            )
            result = train(config, report=None)
            report = export_run(result.run_dir, ["float32", "int8"], keep_failing=common.smoke())  # 1 epoch: noise
            int8 = next(variant for variant in report.variants if variant.name == "int8")
            model = EdgeModel.load(result.run_dir / "edge" / "model_int8.tflite")
            prepared = model.quantize(model.as_batch(model_inputs(window, model.front_end)))
            invoke = time_calls(lambda model=model, prepared=prepared: model.invoke(prepared), 300, 20).median_us
            parameters = describe(front_end, 50.0, 100, 50, list(CHANNELS), 8)
            started = time.perf_counter()
            for _ in range(200):
                model_inputs(window, parameters)
            front_us = (time.perf_counter() - started) / 200 * 1e6
            macs = count_macs(result.model)
            arena = report.micro.arena_bytes if report.micro is not None else None
            print(
                f"{recipe:<7} {front_end:<9} {result.parameters:>7,} {macs:>8,} "
                f"{result.metrics['test']['accuracy']:>9.2%} {int8.parity.accuracy:>8.2%} {int8.bytes:>7,} "
                f"{arena if arena else '-':>8} {invoke:>9.1f} "
                f"{estimate_latency_ms(macs, target_named('cortex-m4-120mhz')):>9.3f} {front_us:>12.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
