"""Memory and time of training on folders of growing size: features cached once, rows read from disk.

Builds seeded synthetic folders of one-second 16 kHz WAV clips (four tone classes in noise) or 96x96 RGB JPEGs
(four colour classes in noise), then in a fresh process per run (``/usr/bin/time -v``) trains on each:
``ds_cnn`` on clips, ``mobilenet_v1`` on images, two epochs, with ``in_memory_mb=0`` so the features are read
from the cache on disk a batch at a time. A second run of the same folder shows the cache reused. Printed per
size: peak RSS, the time the features took (decoding and caching), the first and second epoch's time, and the
peak memory per extra example against the previous size (goal: at most 0.02 MiB, i.e. flat).

    python benchmarks/data_scale.py --kind wav --sizes 2000 8000 32000
    python benchmarks/data_scale.py --kind image --sizes 2000 8000
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
from common import ROOT  # also puts the project on the import path

CLASSES = 4


def make_wavs(folder: Path, count: int, seed: int = 0) -> None:
    """``count`` clips: tones of 300, 600, 1200 and 2400 Hz at random level and phase, in noise."""
    generator = np.random.default_rng(seed)
    time_axis = np.arange(16000) / 16000
    for index in range(count):
        label = index % CLASSES
        samples = generator.uniform(0.1, 0.6) * np.sin(2 * np.pi * 300 * 2**label * time_axis + generator.uniform(0, 7))
        samples = samples + generator.normal(0, 0.05, 16000)
        path = folder / f"tone{label}" / f"{index:06d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as clip:
            clip.setnchannels(1)
            clip.setsampwidth(2)
            clip.setframerate(16000)
            clip.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def make_images(folder: Path, count: int, seed: int = 0) -> None:
    """``count`` 96x96 JPEGs: noise around one of four colours."""
    from PIL import Image

    generator = np.random.default_rng(seed)
    colours = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40]])
    for index in range(count):
        label = index % CLASSES
        pixels = np.clip(colours[label] + generator.normal(0, 60, (96, 96, 3)), 0, 255).astype(np.uint8)
        path = folder / f"colour{label}" / f"{index:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path, quality=90)


def train_once(folder: Path, recipe: str, out: Path) -> dict[str, float]:
    """One training run in a fresh process: its peak RSS, feature time and epoch times."""
    command = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        str(ROOT / "cli.py"),
        "train",
        "--data",
        str(folder),
        "--recipe",
        recipe,
        "--epochs",
        "2",
        "--out",
        str(out),
        "--set",
        "in_memory_mb=0",
        "--set",
        "early_stopping=false",
    ]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(result.stderr[-2000:])
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1)) / 1024
    epochs = [float(seconds) for seconds in re.findall(r"^epoch .*\s([\d.]+)s$", result.stdout, re.MULTILINE)]
    features = re.search(r"computing features of \w+: [\d,]+ in (?:(\d+) min )?(\d+) s", result.stdout)
    feature_seconds = (int(features.group(1) or 0) * 60 + int(features.group(2))) if features else 0.0
    return {
        "peak_mib": peak,
        "features_s": feature_seconds,
        "epoch1_s": epochs[0],
        "epoch2_s": epochs[1],
        "total_s": time.perf_counter() - started,
    }


BASELINE = """
import sys, time
import keras
from recipes.backend import import_keras
from recipes.config import TrainConfig
from recipes.models import DataSpec, build_model
from recipes.tasks import task_named
from recipes.optimizers import make_optimizer

import_keras(0)
folder = sys.argv[1]
train = keras.utils.image_dataset_from_directory(folder, image_size=(96, 96), batch_size=64, seed=0)
config = TrainConfig(recipe="mobilenet_v1", epochs=2)
spec = DataSpec((96, 96, 3), 4, [127.0] * 3, [4000.0] * 3, 1000)
model = task_named("classification").compile(build_model(config, spec), make_optimizer(config))
for epoch in range(2):
    started = time.perf_counter()
    model.fit(train, epochs=1, verbose=0)
    print(f"epoch {epoch + 1} {time.perf_counter() - started:.1f}s", flush=True)
"""


def baseline_once(folder: Path) -> dict[str, float]:
    """``keras.utils.image_dataset_from_directory`` on the same folder, the same model, two epochs (all examples
    trained on: no split), in a fresh process."""
    command = ["/usr/bin/time", "-v", sys.executable, "-c", BASELINE, str(folder)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(result.stderr[-2000:])
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1)) / 1024
    epochs = [float(seconds) for seconds in re.findall(r"^epoch \d ([\d.]+)s$", result.stdout, re.MULTILINE)]
    return {"peak_mib": peak, "epoch1_s": epochs[0], "epoch2_s": epochs[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("wav", "image"), default="wav")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000, 32000])
    parser.add_argument("--workdir", type=Path, default=None, help="where folders go (default: a temporary folder)")
    parser.add_argument("--skip-baseline", action="store_true", help="images: leave out image_dataset_from_directory")
    arguments = parser.parse_args()
    workdir = arguments.workdir or Path(tempfile.mkdtemp(prefix="data-scale-"))
    recipe = "ds_cnn" if arguments.kind == "wav" else "mobilenet_v1"
    make = make_wavs if arguments.kind == "wav" else make_images
    print(f"{arguments.kind} folders, {recipe}, 2 epochs, features read from the cache on disk; work in {workdir}")
    header = (
        f"{'examples':>8}  {'make s':>6}  {'peak MiB':>8}  {'features s':>10}  {'epoch 1 s':>9}  {'epoch 2 s':>9}  "
        f"{'rerun peak':>10}  {'rerun feat s':>12}  {'MiB/extra':>9}"
    )
    print(header)
    previous = None
    for size in arguments.sizes:
        folder = workdir / f"{arguments.kind}-{size}"
        started = time.perf_counter()
        if not folder.exists():
            make(folder, size)
        made = time.perf_counter() - started
        first = train_once(folder, recipe, workdir / f"runs-{size}")
        again = train_once(folder, recipe, workdir / f"runs-{size}")  # the cache is reused
        slope = "" if previous is None else f"{(first['peak_mib'] - previous[1]) / (size - previous[0]):.4f}"
        print(
            f"{size:>8}  {made:>6.0f}  {first['peak_mib']:>8.0f}  {first['features_s']:>10.0f}  "
            f"{first['epoch1_s']:>9.1f}  {first['epoch2_s']:>9.1f}  {again['peak_mib']:>10.0f}  "
            f"{again['features_s']:>12.0f}  {slope:>9}",
            flush=True,
        )
        previous = (size, first["peak_mib"])
        if arguments.kind == "image" and not arguments.skip_baseline:
            base = baseline_once(folder)
            print(
                f"{'':>8}  image_dataset_from_directory, all {size} images each epoch: "
                f"peak {base['peak_mib']:.0f} MiB, epoch 1 {base['epoch1_s']:.1f} s, epoch 2 {base['epoch2_s']:.1f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
