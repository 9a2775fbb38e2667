"""The firmware package: built for a Cortex-M4 with CMSIS-NN kernels against the TFLite Micro tree in
../shared/third_party/tflite-micro, run on QEMU's Cortex-M4 board, compared with LiteRT byte for byte.

What each kind of run is checked for, on 20 raw examples (a table, an image, keyword-spotting clips through the MFCC
in C, sensor windows raw and through the spectral front end in C, an anomaly detector, a regression):

- the int8 input tensor the C front end and z-score computed equals the Python runtime's, byte for byte for the exact
  front ends and within one step on at least 99% of the values for the MFCC (float32 C against float64 numpy);
- the int8 output tensor equals LiteRT's run on that same input tensor, byte for byte (CMSIS-NN and LiteRT's
  reference kernels round alike on these models; a difference would show as a failing row here);
- the values model_predict returns are the ones the Python runtime computes from those output bytes, and the top
  class is the runtime's on every example;
- the 32-bit arena TFLite Micro used fits the one model_config.h reserves.

TFLite Micro's objects are compiled once per session into one folder that every model's build shares.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.export import export_run
from edge.firmware import write_examples
from edge.firmware_build import ARM_PROGRAMS, QemuRun, build, image_sizes, model_array_bytes, run_on_qemu
from edge.front_end_c import MFCC_TOLERANCE, SPECTRAL_TOLERANCE, front_end_source
from edge.preprocessing import Standardization
from edge.runtime import EdgeModel
from recipes.config import resolve_config
from recipes.training import train
from tests.helpers import copy_run, require_programs

REPOSITORY = Path(__file__).resolve().parents[1]
TFLM_ROOT = REPOSITORY.parent / "shared" / "third_party" / "tflite-micro"
EXAMPLES = 20


def require_tree() -> None:
    """Skip (fail in CI) when the TFLite Micro tree is not beside the repository."""
    if (TFLM_ROOT / "tensorflow" / "lite" / "micro" / "micro_interpreter.h").is_file():
        return
    reason = f"no TFLite Micro tree at {TFLM_ROOT}"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def tflm_objects(tmp_path_factory) -> Path:
    """One folder for TFLite Micro's objects, shared by every model's build in the session."""
    return tmp_path_factory.mktemp("tflm-objects")


def build_and_run(folder: Path, tflm_objects: Path) -> tuple[QemuRun, dict[str, int]]:
    """Build the firmware (Cortex-M4, CMSIS-NN) and run it on QEMU; what it printed and the image's sizes."""
    require_programs(*ARM_PROGRAMS)
    require_tree()
    elf = build(folder, TFLM_ROOT, folder / "build", tflm_objects)
    return run_on_qemu(elf), image_sizes(elf)


def firmware_model(edge_dir: Path) -> EdgeModel:
    """The firmware's model (batch 1) with the int8 variant's manifest: z-score, front end, threshold, names."""
    exported = EdgeModel.load(edge_dir / "model_int8.tflite")
    content = model_array_bytes(edge_dir / "firmware" / "model_data.cc")
    return EdgeModel(
        content,
        exported.class_names,
        threshold=exported.threshold,
        front_end=exported.front_end,
        standardization=exported.standardization,
        target_names=exported.target_names,
        output_standardization=exported.output_standardization,
    )


def assert_runs_like_litert(run: QemuRun, model: EdgeModel, features: np.ndarray, exact_inputs: bool = True) -> None:
    """The checks of the module docstring, for examples whose features (what the model's front end computed in
    Python) are ``features``."""
    count = len(features)
    assert len(run.top) == count, run.text[-2000:]
    expected_input = model.quantize(model.as_batch(features)).reshape(count, -1)
    steps = np.abs(run.inputs.astype(int) - expected_input.astype(int))
    if exact_inputs:
        assert steps.max() == 0, f"{np.count_nonzero(steps)} input values differ"
    else:
        assert steps.max() <= 1 and np.mean(steps == 0) >= 0.99, (steps.max(), np.mean(steps == 0))
    litert = model.run(run.inputs.reshape(count, *model.input_shape)).reshape(count, -1)
    differing = np.count_nonzero((run.outputs != litert).any(axis=1))
    assert differing == 0, f"{differing} of {count} output rows differ from LiteRT's"
    values = model.dequantize(run.outputs)
    if model.output_standardization is not None:
        values = model.output_standardization.invert(values)
    assert np.array_equal(run.values, values.astype(np.float32))
    runtime = model.dequantize(model.run(features).reshape(count, -1))
    assert np.array_equal(run.top, runtime.argmax(axis=1))
    assert run.arena_used <= run.arena_reserved
    assert run.instructions.min() > 0


def train_and_export(tmp_path: Path, overrides: dict, sets: list[str] | None = None) -> Path:
    config = resolve_config(None, {"out": str(tmp_path / "runs"), **overrides}, sets or [])
    run_dir = train(config, report=None).run_dir
    export_run(run_dir, ["int8"], firmware=True)
    return run_dir / "edge"


def test_batch_of_one_keeps_the_outputs_and_drops_the_shape_operators(shared, tmp_path):
    """The digits MLP's int8 file computes its Flatten's shape for a dynamic batch (SHAPE, STRIDED_SLICE, PACK);
    the firmware's model has batch 1, none of them, and LiteRT's outputs byte for byte."""
    from edge.operators import list_operators
    from edge.static_batch import batch_of_one

    content = (shared.run_dir / "edge" / "model_int8.tflite").read_bytes()
    before = list_operators(content)[0]
    assert {"SHAPE", "STRIDED_SLICE", "PACK"} <= set(before)
    one = batch_of_one(content)
    after = list_operators(one)[0]
    assert not {"SHAPE", "STRIDED_SLICE", "PACK"} & set(after)
    assert after == {name: count for name, count in before.items() if name not in ("SHAPE", "STRIDED_SLICE", "PACK")}
    exported, single = EdgeModel.load(shared.run_dir / "edge" / "model_int8.tflite"), EdgeModel(one)
    assert not single.dynamic_batch and single.input.shape[0] == 1
    assert np.array_equal(single.run(exported.quantize(shared.x_test)), exported.run(exported.quantize(shared.x_test)))


def test_export_refuses_firmware_without_int8_in_one_line(shared, tmp_path):
    from recipes.errors import UserError

    run = copy_run(shared.run_dir, tmp_path / "run")
    with pytest.raises(UserError, match="--firmware packages the int8 model"):
        export_run(run, ["float32"], firmware=True)
    with pytest.raises(UserError, match="leave out --float-io"):
        export_run(run, ["int8"], float_io=True, firmware=True)


def test_image_digits_runs_bit_exact_on_the_cortex_m4(shared, tmp_path, tflm_objects):
    run = copy_run(shared.run_dir, tmp_path / "run")
    export_run(run, ["int8"], firmware=True)
    folder = run / "edge" / "firmware"
    for name in ("model.h", "model.cc", "model_config.h", "model_data.cc", "front_end.c", "Makefile", "CMakeLists.txt"):
        assert (folder / name).is_file(), name
    assert "#define MODEL_EXAMPLE_COUNT 20" in (folder / "example" / "examples.h").read_text()
    result, sizes = build_and_run(folder, tflm_objects)
    model = firmware_model(run / "edge")
    assert_runs_like_litert(result, model, shared.x_test[:EXAMPLES])
    assert np.mean(result.top == shared.y_test[:EXAMPLES]) >= 0.8
    assert len(model.content) < sizes["flash"] < len(model.content) + 400_000  # the model array is in flash
    assert sizes["ram"] >= result.arena_reserved


def test_table_regression_and_anomaly_run_bit_exact(tmp_path, tflm_objects):
    """Three small runs, each built and run on QEMU: iris (a table), diabetes (a regression: values in target
    units), machine (an anomaly detector: the score and the decision at the threshold)."""
    from recipes.data import load_dataset

    for name, recipe, epochs in (("iris", "mlp", 20), ("diabetes", "mlp", 10), ("machine", "autoencoder", 3)):
        edge = train_and_export(tmp_path / name, {"data": name, "recipe": recipe, "epochs": epochs})
        dataset = load_dataset(name)
        x = np.asarray(dataset.x[-EXAMPLES:], np.float32)
        write_examples(edge / "firmware", x, "none")
        result = build_and_run(edge / "firmware", tflm_objects)[0]
        model = firmware_model(edge)
        assert_runs_like_litert(result, model, x)
        if name == "machine":
            scores = result.values[:, 0].astype(np.float64)
            assert result.anomaly == [int(score >= model.threshold) for score in scores]


def test_sensor_windows_raw_and_spectral_run_bit_exact(tmp_path, tflm_objects):
    """The built-in motion stream's windows (2 s, 6 channels at 50 Hz): a cnn1d on the raw samples, and an MLP on
    the spectral statistics, which the C front end computes from the same raw samples on the Cortex-M4."""
    from recipes.data import load_dataset
    from recipes.windows import model_inputs

    windows = np.asarray(load_dataset("motion").x[::29][:EXAMPLES], np.float32)
    for front_end, recipe in (("raw", "cnn1d"), ("spectral", "mlp")):
        edge = train_and_export(
            tmp_path / front_end, {"data": "motion", "recipe": recipe, "epochs": 2}, [f"front_end={front_end}"]
        )
        write_examples(edge / "firmware", windows, front_end)
        model = firmware_model(edge)
        result = build_and_run(edge / "firmware", tflm_objects)[0]
        assert_runs_like_litert(result, model, model_inputs(windows, model.front_end), front_end == "raw")


def test_keyword_spotting_computes_its_mfccs_in_c(tmp_path, tflm_objects):
    """Spoken clips (espeak-ng voices through sox): the C front end computes the MFCCs from 16-bit PCM on the
    Cortex-M4; the int8 input bytes are within one step of the Python runtime's and the outputs LiteRT's."""
    require_programs("espeak-ng", "sox")
    sys.path.insert(0, str(REPOSITORY / "benchmarks"))
    from speech_clips import write_clips

    from edge.mfcc import wav_features
    from recipes.audio import read_wav

    parts = write_clips(tmp_path / "speech", per_class=4, held_out_per_class=2, seed=0)
    edge = train_and_export(tmp_path, {"data": str(parts["train"]), "recipe": "ds_cnn", "epochs": 3})
    clips = sorted(parts["held_out"].rglob("*.wav"))[:EXAMPLES]
    pcm = np.array([np.rint(read_wav(clip)[0] * 32768.0).astype(np.int16)[:16000] for clip in clips])
    write_examples(edge / "firmware", pcm, "mfcc")
    model = firmware_model(edge)
    result = build_and_run(edge / "firmware", tflm_objects)[0]
    features = np.concatenate([wav_features(clip, model.front_end) for clip in clips])
    assert_runs_like_litert(result, model, features, exact_inputs=False)


def _compile_front_end(tmp_path: Path, source: str, config: str, raw_type: str, raw_values: int, features: int) -> Path:
    """Compile front_end.c with the host's gcc and a driver that reads raw examples from stdin and writes float32
    features to stdout."""
    require_programs("gcc")
    from edge.firmware import SOURCES

    (tmp_path / "model.h").write_text((SOURCES / "model.h").read_text())
    (tmp_path / "model_config.h").write_text(config)
    (tmp_path / "front_end.c").write_text(source)
    (tmp_path / "driver.c").write_text(
        '#include <stdio.h>\n#include "model.h"\n'
        f"int main(void) {{ static {raw_type} raw[{raw_values}]; static float features[{features}];\n"
        f"  while (fread(raw, sizeof raw[0], {raw_values}, stdin) == {raw_values}) {{\n"
        f"    model_front_end(raw, features); fwrite(features, sizeof features[0], {features}, stdout); }}\n"
        "  return 0; }\n"
    )
    binary = tmp_path / "front_end"
    subprocess.run(
        [
            "gcc",
            "-O2",
            "-std=c11",
            "-I",
            str(tmp_path),
            str(tmp_path / "front_end.c"),
            str(tmp_path / "driver.c"),
            "-lm",
            "-o",
            str(binary),
        ],
        check=True,
    )
    return binary


def _config(raw_type: str, raw_values: int, features: int) -> str:
    return (
        f"#include <stdint.h>\ntypedef {raw_type} model_raw_t;\n#define MODEL_RAW_VALUES {raw_values}\n"
        f"#define MODEL_FEATURES {features}\n#define MODEL_OUTPUTS 1\n#define MODEL_TASK_ANOMALY 0\n"
    )


def test_the_c_mfcc_matches_numpy_on_tones_noise_and_silence(tmp_path):
    """float32 C against float64 numpy (edge.mfcc): within MFCC_TOLERANCE on a chirp, tones, noise, a quiet clip
    and silence, whose features span about -124 to 25."""
    from edge.mfcc import mfcc
    from recipes.audio import FRONT_END, prepare_clip

    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000.0
    signals = [
        0.5 * np.sin(2 * np.pi * (200 + 1800 * t) * t),
        0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t),
        rng.normal(0, 0.1, 16000),
        0.001 * rng.normal(0, 1, 16000),
        np.zeros(16000),
    ]
    pcm = np.array([np.rint(np.clip(signal, -1, 1) * 32767).astype(np.int16) for signal in signals])
    standardization = Standardization(np.zeros(10), np.ones(10))
    source = front_end_source(dict(FRONT_END), 490, standardization, (0.1, 0), (1.0, 0), None)
    binary = _compile_front_end(tmp_path, source, _config("int16_t", 16000, 490), "int16_t", 16000, 490)
    out = subprocess.run([str(binary)], input=pcm.astype("<i2").tobytes(), capture_output=True, check=True).stdout
    c_features = np.frombuffer(out, np.float32).reshape(len(pcm), 49, 10, 1)
    expected = mfcc(np.array([prepare_clip(clip / np.float32(32768.0), 16000) for clip in pcm]), FRONT_END)
    assert np.abs(c_features - expected).max() <= MFCC_TOLERANCE
    assert expected.min() < -100  # the silent clip's floor is in the comparison


def test_the_c_spectral_front_end_matches_numpy(tmp_path):
    """Double-precision C against numpy on random walks, a sine of known frequency and a constant (dead) channel:
    the peak frequency exact, every feature within SPECTRAL_TOLERANCE relative (a dead channel's log floor too)."""
    from recipes.windows import spectral_features

    steps, channels, bands, rate = 100, 3, 6, 50.0
    rng = np.random.default_rng(1)
    windows = rng.normal(0, 1, (8, steps, channels)).cumsum(axis=1).astype(np.float32)
    windows[:, :, 1] = np.sin(2 * np.pi * 7.5 * np.arange(steps) / rate)
    windows[:4, :, 2] = 9.81
    front_end = {
        "kind": "windows",
        "front_end": "spectral",
        "window_steps": steps,
        "channels": ["a", "b", "c"],
        "bands": bands,
        "sample_rate": rate,
    }
    features = channels * (3 + bands)
    source = front_end_source(front_end, features, None, (0.1, 0), (1.0, 0), None)
    binary = _compile_front_end(
        tmp_path, source, _config("float", steps * channels, features), "float", steps * channels, features
    )
    out = subprocess.run([str(binary)], input=windows.astype("<f4").tobytes(), capture_output=True, check=True).stdout
    c_features = np.frombuffer(out, np.float32).reshape(len(windows), features)
    expected = spectral_features(windows, rate, bands)
    assert np.allclose(c_features, expected, rtol=SPECTRAL_TOLERANCE, atol=1e-9)
    assert np.all(c_features[:, 3 + bands + 2] == 7.5)  # channel b's peak frequency
