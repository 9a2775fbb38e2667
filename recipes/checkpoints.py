"""Checkpoints of a training run in progress, so that ``train --resume`` continues it after a crash or a kill.

While a run trains, ``<out>/train/.<name>.resume/`` holds its last checkpoint: the model with its optimizer state
(``model.keras``: weights, moments, step count), the early-stopping state (the best epoch's measures, its epoch, the
epochs waited, the lowest dev loss and the best weights), the history rows so far and the config. A checkpoint is
written into a folder of its own and then named current by an atomic rename of ``current.json``, so a kill leaves
the previous checkpoint or the new one. It is written after an epoch once ``checkpoint_seconds`` have passed since
the last one (every epoch when 0), and removed when the run is complete.

What a resumed run restores exactly: weights, optimizer state, the learning-rate schedule's position (it is a
function of the epoch), the early-stopping state, the history, and the order of the batches (a function of the
seed and the epoch: :func:`recipes.input_pipeline.training_dataset`). What it does not: the random streams of dropout
and augmentation start again from the seed, so with either a resumed run differs from an uninterrupted one as two
seeds would, not more.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.device.errors import UserError
from recipes.rundir import safe_name, temp_folder, write_json

CURRENT = "current.json"
# Config keys a resumed run may change: how long it trains and where progress goes, not what it learns.
RESUMABLE_CHANGES = ("epochs", "checkpoint_seconds", "cache_dir", "in_memory_mb")


def folder_for(out: str | Path, name: str) -> Path:
    """Where the checkpoint of run ``name`` under ``out`` lives."""
    return Path(out) / "train" / f".{safe_name(name)}.resume"


@dataclass
class Checkpoint:
    """The last checkpoint of an interrupted run.

    Args:
        folder: the checkpoint's own folder (holds ``model.keras`` and, with early stopping, ``best.npz``).
        epochs_done: epochs completed.
        history: the history rows so far, as :func:`recipes.training.fit` returns them.
        early_stopping: the early-stopping callback's state (:mod:`recipes.early_stopping`), or None.
        config: the run's config as a dict.
    """

    folder: Path
    epochs_done: int
    history: dict[str, list[float]]
    early_stopping: dict[str, Any] | None
    config: dict[str, Any]

    def model(self) -> Any:
        """The checkpoint's compiled model with its optimizer state."""
        from recipes.runs import load_keras_file

        return load_keras_file(self.folder / "model.keras")

    def best_weights(self) -> list[np.ndarray] | None:
        """The weights of the best epoch so far, or None."""
        path = self.folder / "best.npz"
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as arrays:
            return [arrays[f"w{index}"] for index in range(len(arrays.files))]


def read(root: Path) -> Checkpoint | None:
    """The current checkpoint under ``root`` (from :func:`folder_for`), or None when there is none."""
    try:
        current = json.loads((root / CURRENT).read_text())
        state = json.loads((root / current["folder"] / "state.json").read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Checkpoint(
        root / current["folder"], int(state["epochs_done"]), state["history"], state["early_stopping"], state["config"]
    )


def check_resumable(checkpoint: Checkpoint, config: dict[str, Any], root: Path) -> None:
    """Refuse, in one line, to resume with a config that differs in what the model learns."""
    for key, value in config.items():
        if key not in RESUMABLE_CHANGES and checkpoint.config.get(key) != value:
            raise UserError(
                f"the interrupted run in {root} was trained with {key}={checkpoint.config.get(key)!r}, not {value!r}; "
                "resume it with the same settings, or delete that folder to start over"
            )
    if checkpoint.epochs_done >= int(config["epochs"]):
        raise UserError(
            f"the interrupted run in {root} has already trained {checkpoint.epochs_done} epochs; "
            f"pass --epochs above {checkpoint.epochs_done} to train it further"
        )


def callback(
    root: Path,
    config: dict[str, Any],
    every_seconds: float,
    history: dict[str, list[float]],
    early_stopping: Any,
    history_names: dict[str, str],
) -> Any:
    """A Keras callback that writes a checkpoint after an epoch once ``every_seconds`` have passed since the last.

    Args:
        root: the run's checkpoint folder (:func:`folder_for`).
        config: the run's config as a dict.
        every_seconds: the least time between checkpoints; 0 for every epoch.
        history: history rows from before this fit (a resumed run's), to which this fit's are appended.
        early_stopping: the run's early-stopping callback, whose state is saved; or None.
        history_names: Keras's log names → the history's column names.
    """
    import keras

    class Checkpointer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.rows = {key: list(values) for key, values in history.items()}
            self.last = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            for old, new in history_names.items():
                if old in logs:
                    self.rows.setdefault(new, []).append(float(logs[old]))
            self.rows.setdefault("epoch", []).append(epoch + 1)
            if time.monotonic() - self.last >= every_seconds:
                write(root, epoch + 1, self.model, self.rows, early_stopping, config)
                self.last = time.monotonic()

    return Checkpointer()


def write(root: Path, epochs_done: int, model: Any, history: dict, early_stopping: Any, config: dict) -> None:
    """Write a checkpoint into a new folder under ``root``, name it current, and remove the previous one."""
    root.mkdir(parents=True, exist_ok=True)
    folder = temp_folder(root, prefix=f"epoch-{epochs_done}-")
    model.save(folder / "model.keras")
    state = None
    if early_stopping is not None:
        state = early_stopping.state()
        if early_stopping.best_weights is not None:
            arrays = {f"w{index}": weights for index, weights in enumerate(early_stopping.best_weights)}
            np.savez(folder / "best.npz", **arrays)
    write_json(
        folder / "state.json",
        {"epochs_done": epochs_done, "history": history, "early_stopping": state, "config": config},
    )
    previous = read(root)
    write_json(root / CURRENT, {"folder": folder.name})
    if previous is not None and previous.folder != folder:
        shutil.rmtree(previous.folder, ignore_errors=True)
    for stale in root.iterdir():  # folders of checkpoints a kill interrupted before they became current
        if stale.is_dir() and stale != folder:
            shutil.rmtree(stale, ignore_errors=True)


def remove(root: Path) -> None:
    """Remove a run's checkpoints (the run is complete)."""
    if root.exists():
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Plan:
    """How one training run checkpoints, and what it resumes from.

    Args:
        root: the run's checkpoint folder (:func:`folder_for`).
        config: the run's config as a dict.
        every_seconds: the least time between checkpoints; 0 for every epoch.
        resumed: the checkpoint the run continues, or None for a new run.
    """

    root: Path
    config: dict[str, Any]
    every_seconds: float
    resumed: Checkpoint | None = None

    @property
    def initial_epoch(self) -> int:
        """Epochs already done."""
        return 0 if self.resumed is None else self.resumed.epochs_done

    @property
    def history(self) -> dict[str, list[float]]:
        """History rows already written."""
        return {} if self.resumed is None else self.resumed.history

    def callbacks(self, early_stopping: Any, history_names: dict[str, str]) -> list[Any]:
        """The Keras callbacks: restore the early-stopping state (after Keras resets it as training begins), then
        write checkpoints."""
        import keras

        resumed = self.resumed

        class Restore(keras.callbacks.Callback):
            def on_train_begin(self, logs: dict | None = None) -> None:
                state = resumed.early_stopping if resumed is not None else None
                if early_stopping is None or state is None:
                    return
                early_stopping.restore(state, resumed.best_weights())

        return [
            Restore(),
            callback(self.root, self.config, self.every_seconds, self.history, early_stopping, history_names),
        ]


def describe(root: Path, checkpoint: Checkpoint) -> str:
    """``after epoch 30 of 50, in <folder>``."""
    return f"after epoch {checkpoint.epochs_done} of {checkpoint.config.get('epochs')}, in {os.fspath(root)}"
