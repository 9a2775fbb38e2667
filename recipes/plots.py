"""The figures of a run: learning curves, the learning rate, and confusion matrices.

Learning curves are drawn raw (bold: turning points are read where they happened) with the bias-corrected EWMA of
:func:`recipes.curves.ewma` as a lighter helper line (it averages about the last ``1 / (1 - β)`` epochs and so lags),
train beside dev, and the epoch whose weights were kept marked. A confusion matrix is coloured by the share of each
true class (rows sum to 1) and holds the counts in its cells; the pair figure puts the Keras model's matrix beside a
converted variant's and outlines the cells where their counts differ. Titles are kept short enough to fit their
canvas (a test renders every figure and checks it). matplotlib is imported inside the functions, with the
non-interactive "Agg" backend, so importing this module stays cheap for the CLI. Files are written atomically: a
reader never sees a half-written PNG.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge.device.errors import UserError
from recipes.curves import ewma
from recipes.rundir import temp_file

DPI = 110
# (panel title, y label, train history key, dev history key)
_PANELS = (
    ("Loss", "loss", "loss", "dev_loss"),
    ("Accuracy", "accuracy", "accuracy", "dev_accuracy"),
    ("Mean absolute error", "MAE (target units)", "mae", "dev_mae"),  # a regression's second panel
)
_SERIES_COLORS = {"train": "tab:blue", "dev": "tab:orange"}


def load_pyplot() -> Any:
    """Import pyplot on the non-interactive Agg backend (no display needed, fast to start)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def save_figure(figure: Any, path: Path) -> None:
    """Save ``figure`` as a PNG at ``path`` atomically, creating parent folders.

    The image goes to a temporary file in the same folder, which then replaces ``path`` in one step;
    on failure the temporary file is removed. The caller closes the figure.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary_name = temp_file(path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as temporary_file:
            figure.savefig(temporary_file, format="png", dpi=DPI)
        os.replace(temporary_name, path)
    except BaseException:
        Path(temporary_name).unlink(missing_ok=True)
        raise


def _numbers(values: Any, name: str) -> list[float]:
    """``values`` as a list of floats (``None`` as empty), or a :class:`UserError` naming ``name``."""
    try:
        return [] if values is None else [float(value) for value in values]
    except (TypeError, ValueError) as error:
        raise UserError(f"{name} must be a list of numbers: {error}") from error


def plot_learning_curves(
    history: dict[str, list[float]], path: Path, beta: float = 0.9, best_epoch: int | None = None
) -> None:
    """Plot loss and accuracy (a regression: mean absolute error) per epoch, train and dev, raw and EWMA-smoothed,
    to a PNG.

    Two panels side by side (loss | accuracy or MAE). In each, every available series is drawn twice: the
    raw values as a bold line and their bias-corrected EWMA as a light dashed one (a helper: it lags). Epochs are
    1-based. The kept epoch is a dotted vertical line with a dot on each raw curve. A panel with no data says so
    instead of staying blank.

    Args:
        history: Per-epoch values under any of ``"loss"``, ``"accuracy"``, ``"mae"``, ``"dev_loss"``,
            ``"dev_accuracy"`` and ``"dev_mae"``; other keys are ignored, missing ones are skipped.
        path: Where to write the PNG; parent folders are created.
        beta: EWMA weight for the smoothed lines, in ``[0, 1)``. Defaults to 0.9.
        best_epoch: the epoch whose weights the model kept (early stopping), marked by a dashed line; None
            marks nothing.

    Raises:
        UserError: If ``history`` holds none of the four series, a series is not numbers, or
            ``beta`` is out of range.
    """
    series = {key: _numbers(history.get(key, ()), key) for panel in _PANELS for key in panel[2:]}
    if not any(series.values()):
        raise UserError("no learning curves to plot: the history has none of loss, accuracy, dev_loss, dev_accuracy")
    smoothed = {key: ewma(values, beta=beta) for key, values in series.items() if values}
    second = next((panel for panel in _PANELS[1:] if series[panel[2]] or series[panel[3]]), _PANELS[1])

    pyplot = load_pyplot()
    figure, axes = pyplot.subplots(1, 2, figsize=(11, 4.2))
    try:
        for axis, (panel_title, y_label, train_key, dev_key) in zip(axes, (_PANELS[0], second), strict=True):
            drawn = False
            for split, key in (("train", train_key), ("dev", dev_key)):
                if not series[key]:
                    continue
                epochs = range(1, len(series[key]) + 1)
                color = _SERIES_COLORS[split]
                axis.plot(epochs, series[key], color=color, linewidth=1.9, label=f"{split} (raw)")
                axis.plot(
                    epochs,
                    smoothed[key],
                    color=color,
                    linewidth=1.1,
                    alpha=0.45,
                    linestyle="--",
                    label=f"{split} (EWMA)",
                )
                if best_epoch is not None and 1 <= best_epoch <= len(series[key]):
                    axis.plot(best_epoch, series[key][best_epoch - 1], "o", color=color, markersize=6, label="_kept")
                drawn = True
            if best_epoch is not None:
                axis.axvline(best_epoch, color="0.3", linestyle=":", linewidth=1.3, label=f"kept: epoch {best_epoch}")
            axis.set_title(panel_title)
            axis.set_xlabel("epoch")
            axis.set_ylabel(y_label)
            axis.xaxis.get_major_locator().set_params(integer=True)
            axis.grid(alpha=0.3)
            if drawn:
                axis.legend()
            else:
                axis.text(0.5, 0.5, f"no {y_label} recorded", ha="center", va="center", transform=axis.transAxes)
        lag = round(1 / (1 - beta)) if beta < 1 else 0
        figure.suptitle(
            f"Learning curves: raw per epoch (bold); EWMA β = {beta:g} (light, lags about {lag} epochs)", fontsize=12
        )
        figure.tight_layout()
        save_figure(figure, path)
    finally:
        pyplot.close(figure)


def plot_learning_rate(learning_rates: list[float], path: Path) -> None:
    """Plot the learning rate per epoch to a PNG, on a log y-axis when it spans more than 10x.

    Args:
        learning_rates: The learning rate used in each epoch, first epoch first.
        path: Where to write the PNG; parent folders are created.

    Raises:
        UserError: If ``learning_rates`` is empty or holds a value that is not a finite number.
    """
    rates = _numbers(learning_rates, "learning rates")
    if not rates:
        raise UserError("no learning rates to plot: the list is empty")
    if not all(math.isfinite(rate) for rate in rates):
        raise UserError(f"learning rates must be finite numbers, got {rates}")
    log_scale = min(rates) > 0 and max(rates) / min(rates) > 10

    pyplot = load_pyplot()
    figure, axis = pyplot.subplots(figsize=(6, 4))
    try:
        axis.plot(range(1, len(rates) + 1), rates, marker="o" if len(rates) <= 30 else None, linewidth=1.5)
        if log_scale:
            axis.set_yscale("log")
        axis.set_title("Learning rate per epoch")
        axis.set_xlabel("epoch")
        axis.set_ylabel("learning rate (log scale)" if log_scale else "learning rate")
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.grid(alpha=0.3, which="both" if log_scale else "major")
        figure.tight_layout()
        save_figure(figure, path)
    finally:
        pyplot.close(figure)


# Confusion matrices: the side of one cell in inches, the longest class name shown whole, the most classes whose
# cells still get their counts written.
CELL_INCHES = 0.42
NAME_CHARACTERS = 18
MAX_WRITTEN_CELLS = 45


def _short(name: str) -> str:
    """A class name cut to :data:`NAME_CHARACTERS` characters (an ellipsis marks the cut), control characters
    escaped."""
    from edge.device.errors import printable

    text = printable(name)
    return text if len(text) <= NAME_CHARACTERS else text[: NAME_CHARACTERS - 1] + "…"


def _panel_inches(classes: int) -> float:
    """The side of one matrix panel in inches: a fixed cell size, with room for rotated class names."""
    return max(4.2, CELL_INCHES * classes + 1.8)


def _counts(matrix: Any, classes: int) -> np.ndarray:
    """A square matrix of counts, refused when its shape does not match the classes."""
    from edge.device.errors import UserError

    counts = np.asarray(matrix, dtype=np.int64)
    if counts.shape != (classes, classes):
        raise UserError(f"a confusion matrix of {classes} classes must be {classes}x{classes}, got {counts.shape}")
    return counts


def _draw_confusion(axis: Any, counts: np.ndarray, names: Sequence[str], differs: np.ndarray | None = None) -> Any:
    """One confusion matrix on ``axis``: colour the share of each true class (row), write the counts, outline the
    ``differs`` cells in red; returns the image (for a colour bar)."""
    from matplotlib.patches import Rectangle

    classes = len(names)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape, np.float64), where=totals > 0)
    image = axis.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    size = max(5.0, min(10.0, 150.0 / max(classes, 1)))
    if classes <= MAX_WRITTEN_CELLS:
        for row in range(classes):
            for column in range(classes):
                marked = differs is not None and differs[row, column]
                if counts[row, column] == 0 and not marked:
                    continue
                color = "white" if shares[row, column] > 0.55 else "black"
                axis.text(
                    column,
                    row,
                    str(counts[row, column]),
                    ha="center",
                    va="center",
                    fontsize=size,
                    color="tab:red" if marked and shares[row, column] <= 0.55 else color,
                    fontweight="bold" if marked else "normal",
                )
    if differs is not None:
        for row, column in zip(*np.nonzero(differs), strict=True):
            axis.add_patch(
                Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="tab:red", linewidth=2.0, zorder=3)
            )
    labels = [_short(name) for name in names]
    few = classes <= 8
    axis.set_xticks(range(classes), labels, rotation=45 if few else 90, ha="right" if few else "center")
    axis.set_yticks(range(classes), labels)
    axis.tick_params(labelsize=max(6.0, min(10.0, 170.0 / max(classes, 1))))
    if few:
        for label in axis.get_xticklabels():
            label.set_rotation_mode("anchor")
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    return image


def plot_confusion_matrix(matrix: Any, class_names: Sequence[str], path: Path, title: str) -> None:
    """One confusion matrix to a PNG: each row (a true class) coloured by its shares, the counts in the cells.

    Args:
        matrix: counts, rows the true class and columns the predicted one, in the order of ``class_names``.
        class_names: the classes; names longer than :data:`NAME_CHARACTERS` characters are cut.
        path: where to write the PNG; parent folders are created.
        title: the figure's title (keep it short: it must fit the figure at any class count).

    Raises:
        UserError: ``matrix`` is not square with one row per class.
    """
    counts = _counts(matrix, len(class_names))
    side = _panel_inches(len(class_names))
    pyplot = load_pyplot()
    figure, axis = pyplot.subplots(figsize=(side + 1.2, side + 0.4), layout="constrained")
    try:
        image = _draw_confusion(axis, counts, class_names)
        axis.set_title(f"{int(counts.sum())} examples; colour: share of the true class", fontsize=9)
        figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
        figure.suptitle(title, fontsize=11)
        save_figure(figure, path)
    finally:
        pyplot.close(figure)


def plot_confusion_pair(
    reference: Any, variant: Any, class_names: Sequence[str], path: Path, names: tuple[str, str], title: str
) -> int:
    """Two confusion matrices of the same examples side by side (e.g. Keras and int8), the cells where their counts
    differ outlined in red in both, to a PNG.

    Args:
        reference: the first model's counts (rows: true class).
        variant: the second model's counts, same shape.
        class_names: the classes, in the matrices' order.
        path: where to write the PNG; parent folders are created.
        names: the two models' names, e.g. ``("Keras", "int8")``.
        title: the figure's title (short: it must fit).

    Returns:
        How many cells differ.
    """
    first, second = _counts(reference, len(class_names)), _counts(variant, len(class_names))
    differs = first != second
    side = _panel_inches(len(class_names))
    pyplot = load_pyplot()
    figure, axes = pyplot.subplots(1, 2, figsize=(2 * side + 0.6, side + 0.6), layout="constrained")
    try:
        for axis, counts, name in zip(axes, (first, second), names, strict=True):
            image = _draw_confusion(axis, counts, class_names, differs)
            accuracy = np.trace(counts) / max(int(counts.sum()), 1)
            axis.set_title(f"{name}: accuracy {accuracy:.1%}", fontsize=10)
        axes[1].tick_params(labelleft=False)  # the same classes as the left panel's
        axes[1].set_ylabel("")
        figure.colorbar(image, ax=list(axes), fraction=0.025, pad=0.02)
        cells = int(differs.sum())
        figure.suptitle(
            f"{title}\n{cells} cell(s) differ (outlined in red)" if cells else f"{title}\nno cell differs", fontsize=11
        )
        save_figure(figure, path)
    finally:
        pyplot.close(figure)
    return cells


MOST_TARGETS_DRAWN = 6  # a regression's predicted-vs-true figure draws at most this many targets


def plot_predicted_vs_true(
    truth: Any, predicted: Any, names: Sequence[str], path: Path, title: str = "Predicted against true, test split"
) -> None:
    """A regression's predictions against the true values, one panel per target (the first
    :data:`MOST_TARGETS_DRAWN`), with the line of perfect predictions and each target's R² and MAE.

    Args:
        truth: true values, ``(examples,)`` or ``(examples, targets)``, in target units.
        predicted: the model's values, the same shape.
        names: the targets' names.
        path: where to write the PNG; parent folders are created.
        title: the figure's title.
    """
    truth = np.asarray(truth, np.float64).reshape(len(truth), -1)
    predicted = np.asarray(predicted, np.float64).reshape(len(truth), -1)
    targets = min(truth.shape[1], MOST_TARGETS_DRAWN)
    pyplot = load_pyplot()
    figure, axes = pyplot.subplots(1, targets, figsize=(3.6 * targets + 0.4, 3.8), layout="constrained", squeeze=False)
    try:
        for column, axis in enumerate(axes[0]):
            true, guess = truth[:, column], predicted[:, column]
            low, high = float(min(true.min(), guess.min())), float(max(true.max(), guess.max()))
            axis.plot([low, high], [low, high], color="0.5", linestyle="--", linewidth=1, label="perfect")
            axis.scatter(true, guess, s=12, alpha=0.7, color="tab:blue", label="test examples")
            spread = float(np.sum((true - true.mean()) ** 2))
            r2 = 1.0 - float(np.sum((guess - true) ** 2)) / spread if spread > 0 else float("nan")
            mae = float(np.mean(np.abs(guess - true)))
            axis.set_title(f"{_short(str(names[column]))}\nR² {r2:.3f}, MAE {mae:.4g}", fontsize=9)
            axis.set_xlabel("true")
            axis.set_ylabel("predicted")
            axis.legend(fontsize=7, loc="upper left")
        figure.suptitle(title, fontsize=11)
        save_figure(figure, path)
    finally:
        pyplot.close(figure)
