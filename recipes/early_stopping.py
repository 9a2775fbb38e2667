"""Early stopping that keeps the best epoch by what the task is judged on, not by the dev loss alone.

A classifier's dev loss can rise from the first epoch while its dev accuracy climbs for twenty more (a few
confidently wrong dev examples outweigh many newly right ones in the cross-entropy): watching the loss alone
rolled such runs back to epoch 1, at chance. So the kept epoch is the best by the task's measures in order
(:attr:`recipes.tasks.Task.kept_by`): a classifier's highest dev accuracy, ties broken by the lower dev loss;
an anomaly detector's and a regression's lowest dev loss. A dev-loss decrease counts only beyond ``min_delta``.

Training stops after ``patience`` epochs in which neither a better epoch was found nor the dev loss reached a new
low, and the weights of the kept epoch are restored at the end (whether it stopped early or not). With the dev
loss as the only measure this is exactly Keras's ``EarlyStopping(monitor="val_loss", restore_best_weights=True)``.

The selection rule (:func:`is_better`, :func:`kept_epoch`) imports no TensorFlow; :func:`keep_best` builds the
Keras callback.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

LOSS = "val_loss"


def is_better(
    current: Sequence[float], best: Sequence[float] | None, kept_by: Mapping[str, str], min_delta: float
) -> bool:
    """Whether the measures ``current`` (in the order of ``kept_by``: name → ``"max"``/``"min"``) beat ``best``,
    compared in that order: the first measure that differs decides; a dev-loss difference counts beyond
    ``min_delta``. A non-finite measure never wins; anything beats None."""
    if any(not math.isfinite(value) for value in current):
        return False
    if best is None:
        return True
    for (name, direction), now, then in zip(kept_by.items(), current, best, strict=True):
        margin = min_delta if name == LOSS else 0.0
        if (now > then + margin) if direction == "max" else (now < then - margin):
            return True
        if now != then:
            return False
    return False


def kept_epoch(history: Mapping[str, Sequence[float]], kept_by: Mapping[str, str], min_delta: float) -> int:
    """The epoch (1-based) whose weights :func:`keep_best` keeps, from a history with ``dev_``-named columns
    (``dev_accuracy``, ``dev_loss``): the first epoch that no later epoch beats by :func:`is_better`."""
    columns = [history.get(name.replace("val_", "dev_"), []) for name in kept_by]
    epochs = min((len(column) for column in columns), default=0)
    kept, best = max(epochs, 1), None
    for index in range(epochs):
        current = [float(column[index]) for column in columns]
        if is_better(current, best, kept_by, min_delta):
            kept, best = index + 1, current
    return kept


def keep_best(kept_by: Mapping[str, str], patience: int, min_delta: float, keras_module: ModuleType) -> Any:
    """The Keras callback: keep the best epoch by ``kept_by`` and stop after ``patience`` epochs without progress.

    Its state (``wait``, ``best``, ``best_epoch`` 0-based, ``lowest_loss``, ``best_weights``) is what a checkpoint
    saves (:meth:`state`) and a resumed run restores (:meth:`restore`).
    """
    keras = keras_module
    names = dict(kept_by)

    class KeepBest(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.patience, self.min_delta, self.kept_by = int(patience), float(min_delta), names
            self.reset()

        def reset(self) -> None:
            self.wait, self.best, self.best_epoch = 0, None, 0
            self.lowest_loss, self.best_weights, self.stopped_epoch = math.inf, None, 0

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.reset()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            if any(name not in logs for name in self.kept_by):
                return
            current = [float(logs[name]) for name in self.kept_by]
            if self.best_weights is None:  # as Keras: the first epoch's weights until one is better
                self.best_weights, self.best_epoch = self.model.get_weights(), epoch
            self.wait += 1
            progress = False
            if is_better(current, self.best, self.kept_by, self.min_delta):
                self.best, self.best_epoch, self.best_weights = current, epoch, self.model.get_weights()
                progress = True
            loss = float(logs.get(LOSS, math.nan))
            if math.isfinite(loss) and loss < self.lowest_loss - self.min_delta:
                self.lowest_loss, progress = loss, True
            if progress:
                self.wait = 0
            elif self.wait >= self.patience and epoch > 0:
                self.stopped_epoch = epoch
                self.model.stop_training = True

        def on_train_end(self, logs: dict | None = None) -> None:
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

        def state(self) -> dict[str, Any]:
            """The JSON-able state a checkpoint records (the best weights are saved beside it)."""
            return {
                "wait": int(self.wait),
                "best": None if self.best is None else [float(value) for value in self.best],
                "best_epoch": int(self.best_epoch),
                "lowest_loss": None if not math.isfinite(self.lowest_loss) else float(self.lowest_loss),
            }

        def restore(self, state: dict[str, Any], best_weights: list | None) -> None:
            """Continue from a checkpoint's :meth:`state` and best weights."""
            self.wait, self.best_epoch = int(state["wait"]), int(state["best_epoch"])
            best = state.get("best")
            if isinstance(best, (int, float)):  # a checkpoint written when only the dev loss was watched
                best = [best]
            self.best = None if best is None else [float(value) for value in best]
            lowest = state.get("lowest_loss")
            self.lowest_loss = math.inf if lowest is None else float(lowest)
            self.best_weights = best_weights

    return KeepBest()
