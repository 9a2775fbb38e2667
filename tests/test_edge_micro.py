"""The TFLite Micro package: the C array compiles and holds the .tflite bytes; the optional TFLM check."""

import re
import shutil
import subprocess

import numpy as np
import pytest

import edge.micro
from edge.device.model import EdgeModel
from edge.micro import c_array_sources, c_identifier, micro_check

COMPILER = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")

DUMP_MAIN = r"""
#include <cstdint>
#include <cstdio>
#include "model_int8.h"

int main(int argc, char** argv) {
  if (reinterpret_cast<std::uintptr_t>(NAME) % 16 != 0) return 3;
  std::FILE* out = std::fopen(argv[1], "wb");
  if (out == nullptr) return 4;
  std::fwrite(NAME, 1, NAME_len, out);
  return std::fclose(out) == 0 ? 0 : 5;
}
"""


def test_identifier_is_derived_from_the_run():
    assert c_identifier("digits-mlp-1") == "digits_mlp_1_model_int8"
    assert c_identifier("3 runs.v2") == "run_3_runs_v2_model_int8"


def test_array_text_holds_the_tflite_bytes(shared):
    tflite = (shared.edge_dir / "model_int8.tflite").read_bytes()
    header = (shared.edge_dir / "model_int8.h").read_text()
    source = (shared.edge_dir / "model_int8.cc").read_text()
    name = c_identifier(shared.run_dir.name)
    assert f"extern const unsigned char {name}[];" in header
    assert f"extern const unsigned int {name}_len;" in header
    assert f"alignas(16) const unsigned char {name}[] = {{" in source
    assert f"const unsigned int {name}_len = {len(tflite)};" in source
    body = source.split("{", 1)[1].split("}", 1)[0]
    assert bytes(int(value, 16) for value in re.findall(r"0x([0-9a-f]{2})", body)) == tflite


@pytest.mark.skipif(COMPILER is None, reason="no C++ compiler")
def test_c_array_compiles_and_embeds_the_same_bytes(shared, tmp_path):
    for name in ("model_int8.h", "model_int8.cc"):
        shutil.copy(shared.edge_dir / name, tmp_path / name)
    name = c_identifier(shared.run_dir.name)
    (tmp_path / "dump.cc").write_text(DUMP_MAIN.replace("NAME", name))
    subprocess.run(
        [COMPILER, "-std=c++17", "-Wall", "-Werror", "-c", "model_int8.cc", "-o", "model.o"], cwd=tmp_path, check=True
    )
    subprocess.run([COMPILER, "-std=c++17", "dump.cc", "model.o", "-o", "dump"], cwd=tmp_path, check=True)
    subprocess.run([str(tmp_path / "dump"), str(tmp_path / "dumped.bin")], check=True)
    assert (tmp_path / "dumped.bin").read_bytes() == (shared.edge_dir / "model_int8.tflite").read_bytes()


def test_sources_for_any_length():
    header, source = c_array_sources(bytes(range(13)), "tiny_model", "tiny.h", ["note"])
    assert "// note" in header and "#ifndef TINY_MODEL_H_" in header
    assert source.count("0x") == 13 and "tiny_model_len = 13;" in source
    assert "#define TINY_MODEL_FLASH_BYTES 13  //" in header and "ARENA_BYTES" not in header  # arena not measured
    header, _ = c_array_sources(bytes(range(13)), "tiny_model", "tiny.h", ["note"], arena_bytes=2048)
    assert "#define TINY_MODEL_ARENA_BYTES 2048  //" in header


def test_without_tflite_micro_the_arena_is_not_measured(shared, monkeypatch):
    monkeypatch.setattr(edge.micro, "micro_available", lambda: False)
    check = micro_check(EdgeModel.load(shared.edge_dir / "model_int8.tflite"), shared.x_test[:3])
    assert not check.measured and check.arena_bytes is None
    assert check.note.startswith("arena not measured (install the micro extra")


def test_tflite_micro_runs_the_int8_model_like_litert(shared):
    pytest.importorskip("tflite_micro")
    micro = shared.report.micro
    assert micro.measured, micro.note
    assert micro.examples == len(shared.y_test)
    assert micro.agreement >= 0.99 and micro.exact >= 0.95
    model = EdgeModel.load(shared.edge_dir / "model_int8.tflite")
    # TFLM's reference int8 kernels round differently from LiteRT's XNNPACK ones: measured up to 7 steps.
    assert micro.max_abs_diff <= 10 * model.output.scale
    assert 1_000 < micro.arena_bytes < 64_000 and micro.arena_bytes % 16 == 0
    header = (shared.edge_dir / "model_int8.h").read_text()
    assert f"tensor arena {micro.arena_bytes:,} bytes" in header
    name = c_identifier(shared.run_dir.name).upper()
    assert f"#define {name}_ARENA_BYTES {micro.arena_bytes}  //" in header
    assert f"#define {name}_FLASH_BYTES {(shared.edge_dir / 'model_int8.tflite').stat().st_size}  //" in header


def test_the_measured_arena_is_enough_to_run(shared):
    tflite_micro = pytest.importorskip("tflite_micro")
    model = EdgeModel.load(shared.edge_dir / "model_int8.tflite")
    example = model.quantize(model.as_batch(shared.x_test[:1]))
    arena = shared.report.micro.arena_bytes
    interpreter = tflite_micro.runtime.Interpreter.from_bytes(model.content, arena_size=arena)
    interpreter.set_input(example, 0)
    interpreter.invoke()
    assert np.array_equal(np.asarray(interpreter.get_output(0)), model.run(shared.x_test[:1]))


def test_the_measured_arena_is_the_smallest_that_runs(shared):
    """One 16-byte step less and TFLite Micro cannot allocate or invoke: the figure is not padded."""
    pytest.importorskip("tflite_micro")
    from edge.arena import ALIGNMENT, _runs_in

    model = EdgeModel.load(shared.edge_dir / "model_int8.tflite")
    example = model.quantize(model.as_batch(shared.x_test[:1]))
    arena = shared.report.micro.arena_bytes
    assert _runs_in(model.content, example, arena)
    assert not _runs_in(model.content, example, arena - ALIGNMENT)


def test_a_model_tflite_micro_cannot_run_is_reported_and_warned(shared, tmp_path, monkeypatch):
    tflite_micro = pytest.importorskip("tflite_micro")
    from edge.export import export_run
    from tests.helpers import copy_run

    def refuse(*args, **kwargs):
        raise RuntimeError("Didn't find op for builtin opcode 'FULLY_CONNECTED'")

    monkeypatch.setattr(tflite_micro.runtime.Interpreter, "from_bytes", refuse)
    report = export_run(copy_run(shared.run_dir, tmp_path / "run"), ["int8"])
    assert report.micro is not None and not report.micro.measured
    assert "TFLite Micro could not run the model (Didn't find op" in report.micro.note
    assert any(warning.startswith("int8: TFLite Micro could not run the model") for warning in report.warnings)
    assert "TFLite Micro could not run" in (report.edge_dir / "model_int8.h").read_text()
