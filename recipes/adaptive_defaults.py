"""Defaults that follow the size of the training split: batch size, epochs, patience and BatchNorm's momentum.

Tens to a few thousand examples is the common case on a device, and fixed defaults tuned for tens of thousands
fail there: at batch 64, 34 training examples make one gradient step an epoch, early stopping with a patience of
10 epochs ends training after a dozen steps, and BatchNorm's running statistics (an exponentially weighted
average with β = 0.99, which needs a few hundred steps to forget its starting point) are still mostly their
initial values when the run ends, so the evaluated model scores at chance while the epoch log climbs.

A key left at ``auto`` (the default of each of these keys) is set from m, the number of training examples, by
these rules; a value given (``--batch-size``, ``--epochs``, ``--set patience=``...) always wins:

- ``batch_size``: the largest power of two at most m/10 (about ten steps an epoch), between 16 and 64;
- ``epochs``: enough epochs for at least 1,500 gradient steps, and at least 100;
- ``patience``: epochs for at least 300 gradient steps without progress, and at least 10;
- ``batch_norm_momentum``: 1 − 1/s for s steps an epoch (the running statistics average about the last epoch),
  between 0.9 and 0.99.

On digits (1,079 training examples) these give batch 64, 100 epochs, patience 18 and β 0.941; on 34 examples
batch 16, 500 epochs, patience 100 and β 0.9. This module imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recipes.config import TrainConfig

AUTO = "auto"
ADAPTIVE_KEYS = ("batch_size", "epochs", "patience", "batch_norm_momentum")
SMALLEST_BATCH, LARGEST_BATCH = 16, 64
STEPS_PER_EPOCH = 10  # the batch aims at about this many steps an epoch
TRAINING_STEPS = 1500  # epochs give at least this many gradient steps...
LEAST_EPOCHS = 100  # ...and at least this many epochs
LARGEST_EPOCHS = 1000  # ...and at most this many (16 examples or fewer, one step an epoch, reach it)
PATIENCE_STEPS = 300  # early stopping waits at least this many steps without progress...
LEAST_PATIENCE = 10  # ...and at least this many epochs
BATCH_NORM_MOMENTUM = (0.9, 0.99)  # the range of β


def batch_size_rule(num_train: int) -> int:
    """The batch size for ``num_train`` training examples: the largest power of two at most m/10, in 16..64."""
    target = max(num_train / STEPS_PER_EPOCH, 1.0)
    power = 2 ** math.floor(math.log2(target))
    return int(min(max(power, SMALLEST_BATCH), LARGEST_BATCH))


def steps_per_epoch(num_train: int, batch_size: int | str) -> int:
    """Gradient steps an epoch: ⌈m / batch⌉ (one for ``full``)."""
    if batch_size == "full" or num_train <= 0:
        return 1
    return math.ceil(num_train / min(int(batch_size), num_train))


def epochs_rule(steps: int) -> int:
    """Epochs for ``steps`` steps an epoch: at least 1,500 steps and at least 100 epochs, at most 1,000 epochs."""
    return int(min(max(LEAST_EPOCHS, math.ceil(TRAINING_STEPS / steps)), LARGEST_EPOCHS))


def patience_rule(steps: int) -> int:
    """Early stopping's patience for ``steps`` steps an epoch: at least 300 steps and at least 10 epochs."""
    return int(max(LEAST_PATIENCE, math.ceil(PATIENCE_STEPS / steps)))


def batch_norm_momentum_rule(steps: int) -> float:
    """BatchNorm's β for ``steps`` steps an epoch: 1 − 1/s within [0.9, 0.99], to three decimals."""
    low, high = BATCH_NORM_MOMENTUM
    return round(min(max(1.0 - 1.0 / steps, low), high), 3)


def adapt_to_data(config: TrainConfig, num_train: int) -> tuple[TrainConfig, str | None]:
    """``config`` with every ``auto`` key of :data:`ADAPTIVE_KEYS` set by the rules for ``num_train`` training
    examples, and one line saying what was chosen (None when no key was ``auto``). Idempotent."""
    chosen: dict[str, int | float] = {}
    batch = config.batch_size
    if batch == AUTO:
        batch = chosen["batch_size"] = batch_size_rule(num_train)
    steps = steps_per_epoch(num_train, batch)
    if config.epochs == AUTO:
        chosen["epochs"] = epochs_rule(steps)
    if config.patience == AUTO:
        chosen["patience"] = patience_rule(steps)
    if config.batch_norm_momentum == AUTO:
        chosen["batch_norm_momentum"] = batch_norm_momentum_rule(steps)
    if not chosen:
        return config, None
    return dataclasses.replace(config, **chosen), describe(chosen, num_train, steps)


def resolves_to(requested: TrainConfig, resolved: TrainConfig) -> bool:
    """Whether ``resolved`` (a run's ``config.yaml``) is ``requested`` with its ``auto`` keys set from the data:
    equal on every other key."""
    chosen = {key: getattr(resolved, key) for key in ADAPTIVE_KEYS if getattr(requested, key) == AUTO}
    return dataclasses.replace(requested, **chosen) == resolved


def describe(chosen: dict[str, int | float], num_train: int, steps: int) -> str:
    """``defaults for 34 training examples: batch size 16 (3 steps an epoch), up to 1000 epochs, ...``."""
    parts = []
    if "batch_size" in chosen:
        parts.append(f"batch size {chosen['batch_size']} ({steps} step{'s' if steps != 1 else ''} an epoch)")
    if "epochs" in chosen:
        parts.append(f"up to {chosen['epochs']} epochs")
    if "patience" in chosen:
        parts.append(f"patience {chosen['patience']} epochs")
    if "batch_norm_momentum" in chosen:
        parts.append(f"BatchNorm momentum {chosen['batch_norm_momentum']:g}")
    examples = f"{num_train:,} training example{'s' if num_train != 1 else ''}"
    return f"defaults for {examples}: " + ", ".join(parts) + " (set a key to override)"
