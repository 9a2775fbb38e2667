"""The one place TensorFlow and Keras get imported and seeded."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for a moment.

    TensorFlow 2.21's native code prints INFO lines (oneDNN, CUDA probing) straight to fd 2 before
    its logging is set up, ignoring TF_CPP_MIN_LOG_LEVEL; they would bury our one-line messages.
    Python exceptions are unaffected: they are raised, and printed after fd 2 is restored.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_keras(seed: int | None = None) -> Any:
    """Import Keras 3 on TensorFlow quietly and return the ``keras`` module.

    With ``seed``, seed Python, numpy and Keras and make TensorFlow ops deterministic, so the same
    command on the same machine gives the same numbers.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # native ERROR lines too: real errors raise
    if "tensorflow" not in sys.modules:
        with _quiet_native_stderr():
            import tensorflow as tf

            tf.config.list_physical_devices()  # the device probe prints too: do it while quiet
    import keras
    import tensorflow as tf

    if seed is not None:
        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
    return keras


def quiet_retracing() -> None:
    """Silence TensorFlow's "retracing" warning, for code that builds a new model per step by design (a search's
    trials, the scikit-learn estimator's fits, a benchmark's exports)."""
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
