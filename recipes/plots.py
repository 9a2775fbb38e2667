"""Learning-curve and learning-rate plots for a run's ``plots/`` folder.

Curves are drawn raw (thin, faint) and smoothed with the bias-corrected EWMA of
:func:`recipes.curves.ewma` (solid), train beside dev, so the point where the dev cost parts from the
train cost (the seed's cue for early stopping) is easy to see. matplotlib is imported inside the
functions, with the non-interactive "Agg" backend, so importing this module stays cheap for the CLI.
Files are written atomically: a reader never sees a half-written PNG.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from recipes.curves import ewma
from recipes.errors import UserError
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
    raw values as a thin faint line and their bias-corrected EWMA as a solid line. Epochs are 1-based.
    A panel with no data says so instead of staying blank.

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
                axis.plot(epochs, series[key], color=color, linewidth=0.8, alpha=0.35, label=f"{split} (raw)")
                axis.plot(epochs, smoothed[key], color=color, linewidth=1.8, label=f"{split} (EWMA)")
                drawn = True
            if best_epoch is not None:
                axis.axvline(best_epoch, color="0.4", linestyle="--", linewidth=1, label=f"kept: epoch {best_epoch}")
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
            f"Learning curves (bias-corrected EWMA, β = {beta:g}: it averages about the last {lag} epochs and "
            "lags the raw curves; read turning points on the raw ones)"
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
