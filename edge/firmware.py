"""The firmware package: an exported int8 model as a C/C++ library for a microcontroller, with its front end in C.

:func:`write_firmware` writes ``edge/firmware/``:

- ``model.h`` / ``model.cc``: ``model_init()`` and ``model_predict(raw, out)`` on TFLite Micro (one raw example in,
  class scores, target values or the anomaly score out, in the units ``predict`` prints);
- ``model_config.h``: this model's sizes, task, arena and the operators its resolver registers;
- ``model_data.h`` / ``model_data.cc``: the model with its batch fixed to one (:mod:`edge.static_batch`) as a
  16-byte-aligned C array;
- ``front_end.c``: the features training computed, the z-score and quantization, the output mapping
  (:mod:`edge.front_end_c`);
- ``example/main.cc``, ``example/startup.c``, ``example/examples.h``: firmware that runs test examples and prints
  the results, for QEMU's Cortex-M4 board or any Cortex-M;
- ``Makefile``, ``CMakeLists.txt``, ``cortex-m4.cmake`` and ``model_kernels.mk`` / ``model_kernels.cmake``: builds
  against a TFLite Micro tree given as ``TFLM_ROOT``, compiling only the kernels this model uses;
- ``README.md``: what to copy where, how to build and run.

The static files live in ``edge/firmware_sources/``; what depends on the model is written here.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.device.errors import UserError
from edge.device.model import EdgeModel
from edge.device.preprocessing import _c_floats
from edge.front_end_c import front_end_kind, front_end_source, raw_values
from edge.micro import c_array_sources
from edge.operators import list_operators
from recipes.rundir import write_atomic

SOURCES = Path(__file__).with_name("firmware_sources")
FOLDER = "firmware"
STATIC_FILES = (
    "model.h",
    "model.cc",
    "Makefile",
    "CMakeLists.txt",
    "cortex-m4.cmake",
    "example/main.cc",
    "example/startup.c",
)
ARENA_MARGIN = (
    1.25  # the default arena: the measured one plus a quarter, for another TFLite Micro version's bookkeeping
)
UNMEASURED_ARENA = 128 * 1024  # the default arena when TFLite Micro's host interpreter did not measure one

# TFLite builtin operator → (MicroMutableOpResolver method, kernel file stem in tensorflow/lite/micro/kernels/).
OPERATORS: dict[str, tuple[str, str]] = {
    "ADD": ("AddAdd", "add"),
    "AVERAGE_POOL_2D": ("AddAveragePool2D", "pooling"),
    "BATCH_MATMUL": ("AddBatchMatMul", "batch_matmul"),
    "BATCH_TO_SPACE_ND": ("AddBatchToSpaceNd", "batch_to_space_nd"),
    "CONCATENATION": ("AddConcatenation", "concatenation"),
    "CONV_2D": ("AddConv2D", "conv"),
    "DEPTHWISE_CONV_2D": ("AddDepthwiseConv2D", "depthwise_conv"),
    "DEQUANTIZE": ("AddDequantize", "dequantize"),
    "DIV": ("AddDiv", "div"),
    "ELU": ("AddElu", "elu"),
    "EXPAND_DIMS": ("AddExpandDims", "expand_dims"),
    "FULLY_CONNECTED": ("AddFullyConnected", "fully_connected"),
    "GATHER": ("AddGather", "gather"),
    "HARD_SWISH": ("AddHardSwish", "hard_swish"),
    "L2_NORMALIZATION": ("AddL2Normalization", "l2norm"),
    "LEAKY_RELU": ("AddLeakyRelu", "leaky_relu"),
    "LOGISTIC": ("AddLogistic", "logistic"),
    "MAX_POOL_2D": ("AddMaxPool2D", "pooling"),
    "MAXIMUM": ("AddMaximum", "maximum_minimum"),
    "MEAN": ("AddMean", "reduce"),
    "MINIMUM": ("AddMinimum", "maximum_minimum"),
    "MUL": ("AddMul", "mul"),
    "PACK": ("AddPack", "pack"),
    "PAD": ("AddPad", "pad"),
    "PADV2": ("AddPadV2", "pad"),
    "PRELU": ("AddPrelu", "prelu"),
    "QUANTIZE": ("AddQuantize", "quantize"),
    "REDUCE_MAX": ("AddReduceMax", "reduce"),
    "RELU": ("AddRelu", "activations"),
    "RELU6": ("AddRelu6", "activations"),
    "RESHAPE": ("AddReshape", "reshape"),
    "RESIZE_NEAREST_NEIGHBOR": ("AddResizeNearestNeighbor", "resize_nearest_neighbor"),
    "SHAPE": ("AddShape", "shape"),
    "SLICE": ("AddSlice", "slice"),
    "SOFTMAX": ("AddSoftmax", "softmax"),
    "SPACE_TO_BATCH_ND": ("AddSpaceToBatchNd", "space_to_batch_nd"),
    "SPLIT": ("AddSplit", "split"),
    "SQUARED_DIFFERENCE": ("AddSquaredDifference", "squared_difference"),
    "SQUEEZE": ("AddSqueeze", "squeeze"),
    "STRIDED_SLICE": ("AddStridedSlice", "strided_slice"),
    "SUB": ("AddSub", "sub"),
    "SUM": ("AddSum", "reduce"),
    "TANH": ("AddTanh", "tanh"),
    "TRANSPOSE": ("AddTranspose", "transpose"),
    "UNPACK": ("AddUnpack", "unpack"),
}
# The firmware (TFLite Micro with CMSIS-NN) gives the bytes of LiteRT's built-in kernels (tests/firmware_checks.py) on
# nearly every row: in the runs of this work, every row of every model but one of 20 spoken keywords, whose saturated
# softmax output was one step apart (127 against 126). The bound the tests assert, on at most 10% of the rows:
CMSIS_NN_STEPS = 1
# LiteRT's default XNNPACK delegate, which the device runtime and 'predict' use, requantizes in float and computes
# softmax its own way: its outputs differ by at most one step, and behind a softmax by up to 10 steps of 1/256 where
# classes are close (measured: 6 on iris, 10 on spoken keywords). The bounds the tests assert:
XNNPACK_STEPS = 1
SOFTMAX_STEPS = 16
KERNELS_NOTE = "# Generated by export: the TFLite Micro kernels of this model's operators."
TASK_MACROS = {"classification": "CLASSIFICATION", "regression": "REGRESSION", "anomaly": "ANOMALY"}


@dataclass
class Firmware:
    """What :func:`write_firmware` wrote.

    Args:
        folder: the package's folder.
        operators: the builtin operators its resolver registers.
        kernels: the TFLite Micro kernel files (stems) it compiles.
        raw_values: values of one raw example (``MODEL_RAW_VALUES``).
        arena_bytes: the tensor arena ``model_config.h`` reserves.
        front_end: ``"none"``, ``"mfcc"`` or ``"spectral"``.
        examples: raw examples in ``example/examples.h``.
    """

    folder: Path
    operators: list[str]
    kernels: list[str]
    raw_values: int
    arena_bytes: int
    front_end: str
    examples: int

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``report.json``."""
        return {
            "folder": self.folder.name,
            "operators": self.operators,
            "kernels": self.kernels,
            "raw_values": self.raw_values,
            "arena_bytes": self.arena_bytes,
            "front_end": self.front_end,
            "examples": self.examples,
        }


def check_firmware_model(model: EdgeModel) -> list[str]:
    """Refuse a model the firmware package cannot run: int8 input and output are required, and every operator
    needs a TFLite Micro kernel this package knows.

    Returns:
        The builtin operators of the model, in order of first use.

    Raises:
        UserError: float input or output (``--float-io``), or an operator without a kernel mapping.
    """
    if model.input.dtype != "int8" or model.output.dtype != "int8":
        raise UserError(
            "the firmware package runs the int8 model with int8 input and output; export without --float-io"
        )
    operators = list(list_operators(model.content)[0])
    unknown = [name for name in operators if name not in OPERATORS]
    if unknown:
        raise UserError(
            f"the firmware package has no TFLite Micro kernel for {', '.join(unknown)}; change the model or "
            "export without --firmware"
        )
    return operators


def write_firmware(
    folder: Path,
    model: EdgeModel,
    task: str,
    output_names: list[str],
    run_name: str,
    arena_bytes: int | None,
    examples: np.ndarray,
) -> Firmware:
    """Write the firmware package of ``model`` into ``folder`` (created; an existing one is replaced).

    Args:
        folder: where to write, e.g. ``edge/firmware`` in the export's staging folder.
        model: the int8 model with batch 1 (:func:`edge.static_batch.batch_of_one`), loaded with its front end,
            z-score, threshold and output statistics.
        task: ``"classification"``, ``"regression"`` or ``"anomaly"``.
        output_names: a name per output value (class names, target names, ``["score"]``).
        run_name: the source run's name, for the comments.
        arena_bytes: the arena TFLite Micro's host interpreter measured, or None.
        examples: raw examples for ``example/examples.h`` (``(n, raw values)`` or any shape with that many values
            per example; int16 PCM for an MFCC front end).

    Returns:
        What was written.

    Raises:
        UserError: a model :func:`check_firmware_model` refuses.
    """
    operators = check_firmware_model(model)
    kernels = sorted({OPERATORS[name][1] for name in operators})
    input_values = int(np.prod(model.input_shape, dtype=np.int64))
    output_values = int(np.prod(model.output.shape[1:], dtype=np.int64)) or 1
    kind = front_end_kind(model.front_end)
    raw = raw_values(model.front_end, input_values)
    arena = _arena(arena_bytes)
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "example").mkdir(parents=True)
    for name in STATIC_FILES:
        shutil.copyfile(SOURCES / name, folder / name)
    notes = [
        f"Source run: {run_name}. The int8 model with batch 1: input {list(model.input.shape)}, output "
        f"{list(model.output.shape)}."
    ]
    header, source = c_array_sources(model.content, "model_data", "model_data.h", notes, arena_bytes=arena_bytes)
    write_atomic(folder / "model_data.h", header)
    write_atomic(folder / "model_data.cc", source)
    write_atomic(
        folder / "model_config.h",
        _config(model, task, operators, input_values, output_values, raw, arena, arena_bytes, kind),
    )
    write_atomic(
        folder / "front_end.c",
        front_end_source(
            model.front_end,
            input_values,
            model.standardization,
            (model.input.scale, model.input.zero_point),
            (model.output.scale, model.output.zero_point),
            model.output_standardization,
        )
        + _names_array(output_names),
    )
    write_atomic(
        folder / "model_kernels.mk",
        f"{KERNELS_NOTE}\nMODEL_KERNELS := {' '.join(kernels)}\n",
    )
    write_atomic(
        folder / "model_kernels.cmake",
        f"{KERNELS_NOTE}\nset(MODEL_KERNELS {' '.join(kernels)})\n",
    )
    count = write_examples(folder, examples, kind)
    write_atomic(folder / "README.md", _readme(run_name, task, kind, raw, output_names, arena))
    return Firmware(folder, operators, kernels, raw, arena, kind, count)


def write_examples(folder: Path, examples: np.ndarray, front_end: str) -> int:
    """Write ``example/examples.h``: ``model_examples[n][MODEL_RAW_VALUES]`` (at least one; a zero example when
    ``examples`` is empty). Returns how many examples it holds."""
    rows = np.asarray(examples).reshape(len(examples), -1) if len(examples) else np.zeros((0, 0))
    if front_end == "mfcc":
        text_rows = [", ".join(str(int(value)) for value in row) for row in np.clip(np.rint(rows), -32768, 32767)]
    else:
        text_rows = [_c_floats(row.astype(np.float32)) for row in rows]
    body = ",\n".join(f"    {{{row}}}" for row in text_rows) if text_rows else "    {0}"
    count = max(len(text_rows), 1)
    write_atomic(
        folder / "example" / "examples.h",
        "// Raw test examples for the example firmware. Generated by export; replace with your own samples.\n"
        '#ifndef MODEL_EXAMPLES_H_\n#define MODEL_EXAMPLES_H_\n\n#include "model.h"\n\n'
        f"#define MODEL_EXAMPLE_COUNT {count}\n"
        f"static const model_raw_t model_examples[MODEL_EXAMPLE_COUNT][MODEL_RAW_VALUES] = {{\n{body}\n}};\n\n"
        "#endif  // MODEL_EXAMPLES_H_\n",
    )
    return len(text_rows)


def _names_array(names: list[str]) -> str:
    quoted = ", ".join(_c_string(str(name)) for name in names)
    return f"\nconst char* const model_output_names[MODEL_OUTPUTS] = {{{quoted}}};\n"


def _arena(measured: int | None) -> int:
    if measured is None:
        return UNMEASURED_ARENA
    return int(-(-int(measured * ARENA_MARGIN) // 16) * 16)


def _c_string(text: str) -> str:
    return '"' + re.sub(r'([\\"])', r"\\\1", text).encode("ascii", "backslashreplace").decode().replace("\n", " ") + '"'


def _config(
    model: EdgeModel,
    task: str,
    operators: list[str],
    input_values: int,
    output_values: int,
    raw: int,
    arena: int,
    measured: int | None,
    kind: str,
) -> str:
    adds = " ".join(f"(resolver).{OPERATORS[name][0]}();" for name in operators)
    arena_note = (
        f"the {measured:,} bytes TFLite Micro's host interpreter used, plus a quarter"
        if measured is not None
        else "not measured (install the micro extra and export again); shrink it to model_arena_used_bytes() + a margin"
    )
    lines = [
        "// This model's sizes, task and operators. Generated by 'python cli.py export --firmware'; do not edit.",
        "#ifndef EDGE_MODEL_CONFIG_H_",
        "#define EDGE_MODEL_CONFIG_H_",
        "",
        "#include <stdint.h>",
        "",
        f"// One raw example: {'16-bit PCM samples' if kind == 'mfcc' else 'float values'}.",
        f"typedef {'int16_t' if kind == 'mfcc' else 'float'} model_raw_t;",
        f"#define MODEL_RAW_VALUES {raw}",
        f"#define MODEL_FEATURES {input_values}  // values of the int8 input tensor {list(model.input_shape)}",
        f"#define MODEL_OUTPUTS {output_values}",
        f"#define MODEL_FRONT_END_{kind.upper()} 1",
        *(f"#define MODEL_TASK_{macro} {int(task == name)}" for name, macro in TASK_MACROS.items()),
    ]
    if task == "anomaly":
        lines.append(f"#define MODEL_ANOMALY_THRESHOLD {float(model.threshold)!r}  // anomaly when score >= threshold")
    lines += [
        "#ifndef MODEL_ARENA_BYTES",
        f"#define MODEL_ARENA_BYTES {arena}  // {arena_note}",
        "#endif",
        f"#define MODEL_OPERATOR_KINDS {len(operators)}",
        f"#define MODEL_ADD_OPERATORS(resolver) {adds}",
        "",
        "#endif  // EDGE_MODEL_CONFIG_H_",
        "",
    ]
    return "\n".join(lines)


def _readme(run_name: str, task: str, kind: str, raw: int, output_names: list[str], arena: int) -> str:
    raw_text = {
        "mfcc": f"{raw} 16-bit PCM samples (one second at 16 kHz, any level: the clip is normalized to its peak)",
        "spectral": f"{raw} sensor samples, sample by sample with the channels last (one window as in training)",
        "none": f"{raw} float values, laid out as one training example (a table row; an image or window row by row, "
        "channels last)",
    }[kind]
    out_text = {
        "classification": f"{len(output_names)} class scores (softmax): {', '.join(output_names[:12])}",
        "regression": f"{len(output_names)} target value(s) in their units: {', '.join(output_names)}",
        "anomaly": "the anomaly score; model_is_anomaly(score) applies the threshold training chose",
    }[task]
    return f"""# Firmware package of run {run_name}

A C/C++ library that runs this model on a microcontroller with TFLite Micro (CMSIS-NN kernels on a Cortex-M), and
an example firmware. Generated by `python cli.py export --firmware`.

## API (`model.h`)
```c
int model_init(void);                                   // once; 0 when the {arena:,}-byte arena suffices
int model_predict(const model_raw_t* raw, float* out);  // one raw example -> MODEL_OUTPUTS values
```
- `raw`: {raw_text}.
- `out`: {out_text}; the same numbers `python cli.py predict` prints for the int8 model.
- The front end (`front_end.c`) computes in C what training computed in Python; the z-score and quantization give the
  same input bytes as the device runtime.

## Build
```sh
make TFLM_ROOT=/path/to/tflite-micro-tree         # build/firmware.elf and build/libmodel.a, Cortex-M4 by default
make TFLM_ROOT=/path/to/tflite-micro-tree run     # run the example on QEMU (qemu-system-arm -M mps2-an386)
make TFLM_ROOT=/path/to/tflite-micro-tree size    # flash and RAM of the image
```
`TFLM_ROOT` is a tree generated by TFLite Micro's `create_tflm_tree.py` with `OPTIMIZED_KERNEL_DIR=cmsis_nn`.
With CMake: `cmake -B build -DTFLM_ROOT=... -DCMAKE_TOOLCHAIN_FILE=cortex-m4.cmake && cmake --build build`.

## In your project (STM32Cube, Zephyr, Arduino, plain CMake)
Copy `model.h`, `model_config.h`, `model.cc`, `model_data.h`, `model_data.cc` and `front_end.c`, add TFLite Micro
with the kernels listed in `model_kernels.mk`, call `model_init()` once and `model_predict()` per window or clip.
`example/startup.c` is for QEMU only; a board brings its own startup file and linker script.
"""


EXAMPLES = 20  # raw test examples in the firmware's example/examples.h


def write_run_firmware(
    edge_dir: Path,
    run_name: str,
    model: EdgeModel,
    task: str,
    front_end: dict[str, Any] | None,
    x_test: np.ndarray,
    test_sources: list[str] | None,
    checked_examples: int,
) -> Firmware:
    """Write ``<edge_dir>/firmware/`` for a run's int8 model: the model with batch 1 (checked to give LiteRT's outputs
    on ``checked_examples`` test examples byte for byte), its arena measured on TFLite Micro's host interpreter when
    the micro extra is installed, and raw test examples for the example firmware (:func:`raw_examples`).

    Raises:
        UserError: the batch-1 rewrite changed an output.
    """
    from edge.micro import measure_arena
    from edge.static_batch import batch_of_one

    one = model.with_content(batch_of_one(model.content), "the firmware model")
    x = x_test[:checked_examples]
    if not np.array_equal(one.run(x), model.run(x)):
        raise UserError("the batch-1 model does not reproduce the int8 model's outputs; export without --firmware")
    arena = measure_arena(one.content, one.quantize(one.as_batch(x[:1])))
    names = list(model.class_names) if task == "classification" else list(model.target_names or ["score"])
    examples = raw_examples(front_end or {}, x_test, test_sources, EXAMPLES)
    return write_firmware(edge_dir / FOLDER, one, task, names, run_name, arena, examples)


def raw_examples(
    front_end: dict[str, Any], x_test: np.ndarray, test_sources: list[str] | None, count: int
) -> np.ndarray:
    """The first ``count`` test examples as a device reads them: the inputs themselves, or for a folder of 16 kHz
    clips their 16-bit PCM samples (first second, padded) read from ``test_sources``. A spectral window's samples
    are not kept by training: none then (the firmware's example holds one zero example to be replaced)."""
    kind = front_end_kind(front_end)
    if kind == "mfcc":
        from edge.device.audio import read_wav

        clips = []
        for source in (test_sources or [])[:count]:
            samples, rate = read_wav(source)
            if rate != front_end["sample_rate"]:
                continue
            clip = np.zeros(front_end["clip_samples"], np.float64)
            clip[: min(len(samples), len(clip))] = samples[: len(clip)]
            clips.append(np.rint(clip * 32768.0).clip(-32768, 32767).astype(np.int16))
        return np.asarray(clips, np.int16).reshape(len(clips), -1)
    if kind == "spectral":
        return np.zeros((0, 0), np.float32)
    return np.asarray(x_test[:count], np.float32)
