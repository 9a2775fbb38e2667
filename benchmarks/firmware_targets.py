"""Firmware on the emulated Cortex-M4: flash, RAM, arena and instructions per inference of the four MLPerf Tiny
reference models, measured on the built image, beside the estimates and the published figures.

Usage (Debian's gcc-arm-none-eabi, libnewlib-arm-none-eabi, libstdc++-arm-none-eabi-newlib, qemu-system-arm)::

    python benchmarks/firmware_targets.py [--tflm-root ../shared/third_party/tflite-micro]

For each reference recipe at its reference input, trained one epoch on 64 seeded random examples (the weights
change no size and, for these kernels, no instruction count; untrained BatchNorm statistics leave activations
constant on every calibration example, whose zero ranges TFLite Micro aborts on), exported with ``--firmware``
(:mod:`edge.firmware`: the int8 model with batch 1, its test examples), built for a Cortex-M4F with CMSIS-NN
(``-O2``) and run on QEMU's mps2-an386 with ``-icount shift=0`` (:mod:`edge.firmware_build`): instructions per
``model_predict`` (z-score and quantization included), flash (without the example's test examples) and static RAM
of the image (``arm-none-eabi-size``),
the 32-bit arena TFLite Micro used (the 64-bit host arena plus a quarter is reserved). A fifth row runs ds_cnn
behind the MFCC front end in C (16,000 PCM samples in, from espeak-ng clips: benchmarks/speech_clips.py). Beside
them: the cycles the calibrated per-MAC model estimates (:mod:`tuning.hardware`, ``cortex-m4-120mhz``) and the
cycles MLPerf Tiny submissions on a Cortex-M4 at 120 MHz (NUCLEO-L4R5ZI) published (latency × 120 MHz).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import common  # puts the project on the import path

TRAINING_EXAMPLES = 64
TASKS = {"ds_cnn": "kws", "mobilenet_v1": "vww", "resnet8": "ic", "autoencoder": "ad"}  # MLPerf Tiny benchmark names
DEFAULT_TREE = Path(__file__).resolve().parents[2] / "shared" / "third_party" / "tflite-micro"


def exported_firmware(recipe: str, folder: Path, speech: Path | None = None) -> tuple[Path, int]:
    """Train ``recipe`` one epoch on 64 seeded random examples of its reference input (or on the spoken clips in
    ``speech``) and export its int8 model with ``--firmware``; the firmware package and the model's MACs."""
    import numpy as np

    from edge.export import export_run
    from recipes.config import TrainConfig
    from recipes.macs import count_macs
    from recipes.reference_models import REFERENCE_SPECS
    from recipes.training import train

    if speech is None:
        generator = np.random.default_rng(0)
        x = generator.normal(size=(TRAINING_EXAMPLES, *REFERENCE_SPECS[recipe].input_shape)).astype(np.float32)
        np.savez(folder / f"{recipe}.npz", x=x, y=np.arange(TRAINING_EXAMPLES) % 2)
        data = folder / f"{recipe}.npz"
    else:
        data = speech
    config = TrainConfig(recipe=recipe, data=str(data), epochs=1, batch_size=16, out=str(folder))
    result = train(config, report=None)
    export_run(result.run_dir, ["int8"], keep_failing=True, firmware=True)  # noise: parity is not the point
    return result.run_dir / "edge" / "firmware", count_macs(result.model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tflm-root", type=Path, default=DEFAULT_TREE, help="the TFLite Micro tree")
    args = parser.parse_args()
    import numpy as np

    from edge.analyze import analyze_model
    from edge.firmware_build import build, check_tree, image_sizes, model_array_bytes, run_on_qemu
    from edge.targets import TARGETS
    from tuning.latency_calibration import PUBLISHED

    root = check_tree(args.tflm_root)
    target = TARGETS["cortex-m4-120mhz"]
    from edge.analyze import CycleCosts

    costs = CycleCosts(target.name, target.clock_hz, *target.cycles_per_kind)
    published = {system.target: system for system in PUBLISHED}
    systems = ("cortex-m4-120mhz", "cortex-m4-120mhz-microtvm-cmsis-nn", "cortex-m4-120mhz-x-cube-ai")
    systems = [name for name in systems if name in published]
    print(
        "| model | MACs | model bytes | flash bytes | static RAM bytes | arena used | "
        "instructions / inference | instructions / MAC | estimated cycles | "
        + " | ".join(f"published cycles, {name}" for name in systems)
        + " |"
    )
    print("| --- " + "| ---: " * (9 + len(systems)) + "|")
    rows = [(recipe, False) for recipe in TASKS] + [("ds_cnn", True)]
    if common.smoke():
        rows = [("autoencoder", False)]  # the smallest model: one build and one QEMU run
    with tempfile.TemporaryDirectory() as work:
        for recipe, with_front_end in rows:
            folder = Path(work) / f"{recipe}{'-mfcc' if with_front_end else ''}"
            folder.mkdir()
            speech = None
            if with_front_end:
                from speech_clips import tools_missing, write_clips

                if tools_missing():
                    print(f"| ds_cnn + MFCC in C | skipped: {' and '.join(tools_missing())} not installed |")
                    continue
                speech = write_clips(folder / "speech", per_class=6, held_out_per_class=0)["train"]
            firmware, macs = exported_firmware(recipe, folder, speech)
            elf = build(firmware, root, folder / "build")
            run = run_on_qemu(elf)
            sizes = image_sizes(elf)
            content = model_array_bytes(firmware / "model_data.cc")
            estimate = analyze_model(content, costs, recipe).cycles
            instructions = int(np.median(run.instructions))
            cells = [
                f"{recipe} + MFCC in C" if with_front_end else recipe,
                f"{macs:,}",
                f"{len(content):,}",
                f"{sizes['flash_without_examples']:,}",
                f"{sizes['ram']:,}",
                f"{run.arena_used:,}",
                f"{instructions:,}",
                f"{instructions / macs:.2f}",
                f"{estimate:,.0f}",
                *(
                    f"{published[name].latency_ms[TASKS[recipe]] * published[name].clock_hz / 1000:,.0f}"
                    for name in systems
                ),
            ]
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
