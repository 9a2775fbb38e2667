"""The smallest TFLite Micro tensor arena a model runs in, found in processes of their own.

Near the smallest working size the TFLite Micro host interpreter can crash in native code instead of
raising (measured: a digits int8 MLP fails cleanly at 6,992 bytes, segfaults at 7,008 and runs at
7,024). So :func:`smallest_arena` runs ``python -m edge.arena`` in a fresh process without TensorFlow,
which tries each size in a forked child: a crash there only marks the size as too small.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ALIGNMENT = 16
TIMEOUT_S = 120


def smallest_arena(content: bytes, example: np.ndarray, low: int, high: int) -> int | None:
    """Binary search, in 16-byte steps, for the smallest arena with which ``content`` allocates and invokes.

    Args:
        content: the ``.tflite`` bytes.
        example: one prepared input, batch dimension first, in the input tensor's dtype.
        low: a size believed too small (the recording allocator's total).
        high: a size that works.

    Returns:
        The size in bytes, or None when the search process failed.
    """
    with tempfile.TemporaryDirectory() as folder:
        model_path, example_path = Path(folder) / "model.tflite", Path(folder) / "example.npy"
        model_path.write_bytes(content)
        np.save(example_path, example)
        environment = {
            **os.environ,
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")]
            ),
        }
        try:
            finished = subprocess.run(
                [sys.executable, "-m", "edge.arena", str(model_path), str(example_path), str(low), str(high)],
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
                env=environment,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None
    lines = finished.stdout.strip().splitlines()
    return int(lines[-1]) if finished.returncode == 0 and lines and lines[-1].isdigit() else None


def _runs_in(model: bytes, example: np.ndarray, size: int) -> bool:
    """Whether the model allocates and invokes with a ``size``-byte arena, tried in a forked child."""
    pid = os.fork()
    if pid == 0:  # the child: exit 0 when it ran; a crash shows as a signal to the parent
        code = 1
        try:
            import tflite_micro

            interpreter = tflite_micro.runtime.Interpreter.from_bytes(model, arena_size=size)
            interpreter.set_input(example, 0)
            interpreter.invoke()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _search(model: bytes, example: np.ndarray, low: int, high: int) -> int:
    failing, working = low // ALIGNMENT, -(-high // ALIGNMENT)
    if _runs_in(model, example, failing * ALIGNMENT):
        return failing * ALIGNMENT
    while working - failing > 1:
        middle = (failing + working) // 2
        if _runs_in(model, example, middle * ALIGNMENT):
            working = middle
        else:
            failing = middle
    return working * ALIGNMENT


def main() -> None:
    """``python -m edge.arena MODEL EXAMPLE_NPY LOW HIGH``: print the smallest working arena size."""
    model_path, example_path, low, high = sys.argv[1:5]
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # the interpreter reports each failed allocation on stderr
    result = _search(Path(model_path).read_bytes(), np.load(example_path), int(low), int(high))
    print(result)


if __name__ == "__main__":
    main()
