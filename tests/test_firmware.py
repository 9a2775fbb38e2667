"""The firmware package (export --firmware): built for a Cortex-M4 with CMSIS-NN kernels against the TFLite Micro
tree in ../shared/third_party/tflite-micro, run on QEMU's Cortex-M4 board and checked against LiteRT
(tests/firmware_checks.py says what is checked) on 20 raw examples of each kind of run: an image and sensor windows
raw and through the spectral front end in C here; a table in mixed units, a regression, an anomaly detector and
keyword spotting (the MFCC in C, on spoken clips) in the modules that train those runs already
(test_edge_sensor_int8.py, test_regression.py, test_edge_anomaly.py, test_speech_voices.py). The C front ends are
also compiled with the host's gcc and compared with numpy. TFLite Micro's objects are compiled once per session (the
``tflm_objects`` fixture).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge.device.model import EdgeModel
from edge.device.preprocessing import Standardization
from edge.export import export_run
from edge.firmware import write_examples
from edge.front_end_c import MFCC_TOLERANCE, SPECTRAL_TOLERANCE, front_end_source
from recipes.config import resolve_config
from recipes.training import train
from tests.firmware_checks import TFLM_ROOT, assert_runs_like_litert, build_and_run, firmware_model
from tests.helpers import copy_run, require_programs

EXAMPLES = 20


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
    from edge.device.errors import UserError

    run = copy_run(shared.run_dir, tmp_path / "run")
    with pytest.raises(UserError, match="--firmware packages the int8 model"):
        export_run(run, ["float32"], firmware=True)
    with pytest.raises(UserError, match="leave out --float-io"):
        export_run(run, ["int8"], float_io=True, firmware=True)


@pytest.mark.slow
def test_image_digits_runs_bit_exact_on_the_cortex_m4(shared, tmp_path, tflm_objects):
    run = copy_run(shared.run_dir, tmp_path / "run")
    report = export_run(run, ["int8"], firmware=True)
    folder = run / "edge" / "firmware"
    assert report.firmware.folder == folder and report.firmware.examples == 20
    assert report.firmware.operators == ["RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    for name in ("model.h", "model.cc", "model_config.h", "model_data.cc", "front_end.c", "Makefile", "CMakeLists.txt"):
        assert (folder / name).is_file(), name
    assert "#define MODEL_EXAMPLE_COUNT 20" in (folder / "example" / "examples.h").read_text()
    result, sizes = build_and_run(folder, tflm_objects)
    model = firmware_model(run / "edge")
    assert_runs_like_litert(result, model, shared.x_test[:EXAMPLES])
    assert np.mean(result.top == shared.y_test[:EXAMPLES]) >= 0.8
    assert sizes["examples"] == 20 * 64 * 4  # the float test examples
    assert len(model.content) < sizes["flash_without_examples"] < len(model.content) + 400_000  # the model is in flash
    assert sizes["ram"] >= result.arena_reserved
    require_programs("cmake")  # the CMake project compiles the same library with the same toolchain
    cmake = tmp_path / "cmake"
    toolchain = folder / "cortex-m4.cmake"
    configure = [
        "cmake",
        "-S",
        str(folder),
        "-B",
        str(cmake),
        f"-DTFLM_ROOT={TFLM_ROOT}",
        f"-DCMAKE_TOOLCHAIN_FILE={toolchain}",
    ]
    subprocess.run(configure, check=True, capture_output=True)
    subprocess.run(["make", "-C", str(cmake), "model/fast"], check=True, capture_output=True)  # not TFLite Micro again
    assert (cmake / "libmodel.a").stat().st_size > len(model.content)


@pytest.mark.slow
def test_the_cli_exports_firmware_and_benchmarks_it_on_the_cortex_m4(shared, tmp_path, tflm_objects, monkeypatch):
    """As a user: export --firmware prints where the package is; benchmark --target cortex-m4 builds it and prints the
    measured flash, RAM, arena and instructions beside the estimate; a run without the package is one line."""
    import json

    from typer.testing import CliRunner

    import cli

    require_programs("arm-none-eabi-gcc", "qemu-system-arm")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tflm_objects.parent.parent))  # the session's TFLite Micro objects
    runner = CliRunner()
    run = copy_run(shared.run_dir, tmp_path / "run")
    missing = runner.invoke(cli.app, ["benchmark", str(run), "--target", "cortex-m4", "--tflm-root", str(TFLM_ROOT)])
    assert missing.exit_code == 2 and "export" in missing.output and "--firmware" in missing.output
    exported = runner.invoke(cli.app, ["export", str(run), "--quantization", "int8", "--firmware"])
    assert exported.exit_code == 0, exported.output
    assert "firmware: edge/firmware/ (" in exported.output and "TFLM_ROOT=" in exported.output
    measured = runner.invoke(
        cli.app, ["benchmark", str(run), "--target", "cortex-m4", "--tflm-root", str(TFLM_ROOT), "--json"]
    )
    assert measured.exit_code == 0, measured.output
    figures = json.loads(measured.output)
    assert figures["examples"] == 20 and 0 < figures["arena_used"] <= figures["arena_reserved"]
    assert figures["model_bytes"] < figures["flash_bytes"] and figures["ram_bytes"] >= figures["arena_reserved"]
    assert 50_432 < figures["instructions"] < 20 * 50_432  # more than one instruction per MAC, not absurdly more
    table = runner.invoke(cli.app, ["benchmark", str(run), "--target", "cortex-m4", "--tflm-root", str(TFLM_ROOT)])
    assert "instructions / inference" in table.output and "estimated cycles" in table.output
    assert not (run / "edge" / "firmware" / "build").exists()  # the build is kept out of the export


@pytest.mark.slow
def test_sensor_windows_raw_and_spectral_run_bit_exact(tmp_path, tflm_objects):
    """The built-in motion stream's windows (2 s, 6 channels at 50 Hz): a cnn1d on the raw samples, and an MLP on
    the spectral statistics, which the C front end computes from the same raw samples on the Cortex-M4."""
    from edge.device.windows import model_inputs
    from recipes.data import load_dataset

    windows = np.asarray(load_dataset("motion").x[::29][:EXAMPLES], np.float32)
    for front_end, recipe in (("raw", "cnn1d"), ("spectral", "mlp")):
        edge = train_and_export(
            tmp_path / front_end, {"data": "motion", "recipe": recipe, "epochs": 2}, [f"front_end={front_end}"]
        )
        write_examples(edge / "firmware", windows, front_end)
        model = firmware_model(edge)
        result = build_and_run(edge / "firmware", tflm_objects)[0]
        assert_runs_like_litert(result, model, model_inputs(windows, model.front_end), front_end == "raw")


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
    """float32 C against float64 numpy (edge.device.mfcc): within MFCC_TOLERANCE on a chirp, tones, noise, a quiet clip
    and silence, whose features span about -124 to 25."""
    from edge.device.audio import FRONT_END, prepare_clip
    from edge.device.mfcc import mfcc

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
    from edge.device.windows import spectral_features

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
