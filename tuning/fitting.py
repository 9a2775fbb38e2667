"""Training helpers for tuner trials and the scikit-learn estimator.

Trials train through ``recipes.training.fit_keras``, the same ``model.fit`` call as ``train``: the
recipe's pipeline, schedule and early stopping, plus a start epoch and keras-tuner's callbacks.
"""

from __future__ import annotations


def quiet_retracing() -> None:
    """Silence TensorFlow's "retracing" warning: a search builds a new model per trial by design."""
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
