"""Building a firmware package for the emulated Cortex-M4 and checking what it computed against LiteRT.

Used by tests/test_firmware.py and tests/test_speech_voices.py. What :func:`assert_runs_like_litert` checks, on the
raw examples a package's example firmware ran:

- the int8 input tensor the C front end and z-score computed equals the Python runtime's, byte for byte for the exact
  front ends and within one step on at least 99% of the values for the MFCC (float32 C against float64 numpy);
- the int8 output tensor equals LiteRT's, run with its built-in kernels on that same input tensor, byte for byte on
  90% of the rows and within CMSIS_NN_STEPS output steps on the others (measured: every row but one of 20 spoken
  keywords, one step apart);
  the device runtime's LiteRT with its XNNPACK delegate (what ``predict`` prints) rounds differently, by at most
  XNNPACK_STEPS output steps, SOFTMAX_STEPS behind a softmax (edge/firmware.py);
- the values model_predict returns are the ones the Python runtime computes from those output bytes, and the top
  class is the runtime's on every example (on 90% where an MFCC or a softmax leaves room for a near tie to fall
  either way; measured: every example);
- the 32-bit arena TFLite Micro used fits the one model_config.h reserves.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edge.device.errors import UserError
from edge.device.model import EdgeModel
from edge.firmware import CMSIS_NN_STEPS, SOFTMAX_STEPS, XNNPACK_STEPS
from edge.firmware_build import (
    ARM_PROGRAMS,
    QemuRun,
    build,
    check_tree,
    image_sizes,
    model_array_bytes,
    run_on_qemu,
)
from edge.operators import list_operators
from tests.helpers import require_programs

REPOSITORY = Path(__file__).resolve().parents[1]
TFLM_ROOT = REPOSITORY.parent / "shared" / "third_party" / "tflite-micro"


def require_tree() -> None:
    """Skip (fail in CI) when the TFLite Micro tree is not beside the repository (:func:`check_tree`)."""
    try:
        check_tree(TFLM_ROOT)
        return
    except UserError as error:
        reason = str(error)
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def build_and_run(folder: Path, tflm_objects: Path) -> tuple[QemuRun, dict[str, int]]:
    """Build the firmware (Cortex-M4, CMSIS-NN) and run it on QEMU; what it printed and the image's sizes."""
    require_programs(*ARM_PROGRAMS)
    require_tree()
    elf = build(folder, TFLM_ROOT, folder / "build", tflm_objects)
    return run_on_qemu(elf), image_sizes(elf)


def firmware_model(edge_dir: Path) -> EdgeModel:
    """The firmware's model (batch 1) with the int8 variant's manifest: z-score, front end, threshold, names."""
    exported = EdgeModel.load(edge_dir / "model_int8.tflite")
    return exported.with_content(model_array_bytes(edge_dir / "firmware" / "model_data.cc"), "model_data.cc")


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
    builtin = litert_builtin_outputs(model.content, run.inputs.reshape(count, *model.input_shape))
    apart = np.abs(run.outputs.astype(int) - builtin.astype(int)).max(axis=1)
    differing = np.count_nonzero(apart)
    assert apart.max() <= CMSIS_NN_STEPS and differing <= count // 10, (
        f"{differing} of {count} output rows differ from LiteRT's built-in kernels, by up to {apart.max()} steps"
    )
    delegated = model.run(run.inputs.reshape(count, *model.input_shape)).reshape(count, -1)
    softmax = "SOFTMAX" in list_operators(model.content)[0]
    steps = np.abs(run.outputs.astype(int) - delegated.astype(int)).max()
    assert steps <= (SOFTMAX_STEPS if softmax else XNNPACK_STEPS), steps
    values = model.dequantize(run.outputs)
    if model.output_standardization is not None:
        values = model.output_standardization.invert(values)
    assert np.array_equal(run.values, values.astype(np.float32))
    runtime = model.dequantize(model.run(features).reshape(count, -1))
    same_top = np.mean(run.top == runtime.argmax(axis=1))
    # Exact inputs and no softmax: the top class is the runtime's everywhere. Otherwise two classes within the stated
    # bounds of each other may fall either way: 18 of 20 (measured: all).
    assert same_top == 1.0 if exact_inputs and not softmax else same_top >= 0.9, same_top
    assert run.arena_used <= run.arena_reserved
    assert run.instructions.min() > 0


def litert_builtin_outputs(content: bytes, inputs: np.ndarray) -> np.ndarray:
    """LiteRT's outputs with its built-in kernels (no XNNPACK delegate), one example at a time."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=content, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    rows = []
    for example in inputs:
        interpreter.set_tensor(source, example[np.newaxis])
        interpreter.invoke()
        rows.append(interpreter.get_tensor(target).reshape(-1).copy())
    return np.array(rows)
