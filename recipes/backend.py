"""The one place TensorFlow and Keras get imported and seeded."""

from __future__ import annotations

import os
from typing import Any


def import_keras(seed: int | None = None) -> Any:
    """Import Keras 3 on TensorFlow quietly and return the ``keras`` module.

    With ``seed``, seed Python, numpy and Keras and make TensorFlow ops deterministic, so the same
    command on the same machine gives the same numbers.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    if seed is not None:
        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
    return keras
