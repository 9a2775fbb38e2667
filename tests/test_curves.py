"""EWMA smoothing (the seed's formula, with bias correction) and the PNG plots built on it."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.device.errors import UserError
from recipes import plots
from recipes.curves import ewma

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]


# --- ewma ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.9, 0.98])
def test_bias_corrected_ewma_of_a_constant_is_the_constant_from_the_first_step(beta):
    smoothed = ewma([3.7] * 50, beta=beta)
    np.testing.assert_allclose(smoothed, np.full(50, 3.7), rtol=0, atol=1e-12)


@pytest.mark.parametrize("beta", [0.9, 0.98])
def test_uncorrected_first_value_is_one_minus_beta_times_theta(beta):
    smoothed = ewma([5.0, 5.0, 5.0], beta=beta, bias_correction=False)
    assert smoothed[0] == pytest.approx((1 - beta) * 5.0, abs=1e-15)
    # Without correction a constant is approached from below: v_t = (1 - beta**t) * theta.
    np.testing.assert_allclose(smoothed, [(1 - beta**step) * 5.0 for step in (1, 2, 3)], atol=1e-12)


def test_three_steps_by_hand():
    # beta = 0.9 on 10, 20, 30:  v1 = 1.0, v2 = 0.9 * 1.0 + 2.0 = 2.9, v3 = 0.9 * 2.9 + 3.0 = 5.61.
    uncorrected = ewma([10.0, 20.0, 30.0], beta=0.9, bias_correction=False)
    np.testing.assert_allclose(uncorrected, [1.0, 2.9, 5.61], atol=1e-12)
    # Corrected: divide by 1 - 0.9**t = 0.1, 0.19, 0.271.
    corrected = ewma([10.0, 20.0, 30.0], beta=0.9)
    np.testing.assert_allclose(corrected, [10.0, 290 / 19, 5610 / 271], atol=1e-12)
    # beta = 0.5 on 1, 2, 3: 0.5, 1.25, 2.125, corrected 1, 5/3, 17/7.
    np.testing.assert_allclose(ewma([1, 2, 3], beta=0.5), [1.0, 5 / 3, 17 / 7], atol=1e-12)


def test_beta_zero_returns_the_values():
    np.testing.assert_array_equal(ewma([4.0, -1.0, 2.5], beta=0.0), [4.0, -1.0, 2.5])


def test_nan_is_skipped_and_the_last_smoothed_value_carried_forward():
    smoothed = ewma([float("nan"), 2.0, float("nan"), 2.0, 4.0], beta=0.5)
    assert math.isnan(smoothed[0])
    # The NaN does not advance t, so the constant stays exact across the gap.
    np.testing.assert_allclose(smoothed[1:4], [2.0, 2.0, 2.0], atol=1e-12)
    # Third real value: v = 0.5 * 1.5 + 0.5 * 4 = 2.75, corrected by 1 - 0.5**3 = 0.875.
    assert smoothed[4] == pytest.approx(2.75 / 0.875, abs=1e-12)


def test_empty_input_gives_an_empty_array():
    assert ewma([]).shape == (0,)


@pytest.mark.parametrize("beta", [1.0, -0.1, 1.5, float("nan"), True])
def test_beta_out_of_range_is_a_user_error(beta):
    with pytest.raises(UserError, match="beta"):
        ewma([1.0, 2.0], beta=beta)


def test_two_dimensional_input_is_a_user_error():
    with pytest.raises(UserError, match="one-dimensional"):
        ewma(np.ones((2, 3)))


# --- plots ---------------------------------------------------------------------------------------


def _assert_png(path: Path) -> None:
    assert path.is_file()
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert width > 0 and height > 0


def _leftovers(folder: Path, expected: set[str]) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name not in expected)


def test_learning_curves_png_is_written_atomically(tmp_path):
    history = {
        "loss": [1.2, 0.8, 0.6, 0.5, 0.45, 0.42],
        "accuracy": [0.55, 0.7, 0.8, 0.85, 0.87, 0.9],
        "dev_loss": [1.3, 0.9, 0.75, 0.7, 0.72, 0.8],
        "dev_accuracy": [0.5, 0.66, 0.74, 0.78, 0.79, 0.78],
        "learning_rate": [0.01] * 6,
    }
    path = tmp_path / "plots" / "learning_curves.png"  # parent folder does not exist yet
    plots.plot_learning_curves(history, path)
    _assert_png(path)
    assert _leftovers(path.parent, {"learning_curves.png"}) == []


def test_learning_curves_with_only_some_series(tmp_path):
    path = tmp_path / "loss_only.png"
    plots.plot_learning_curves({"loss": [0.9, 0.5, 0.3]}, path, beta=0.5)
    _assert_png(path)


def test_learning_curves_without_any_series_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no learning curves"):
        plots.plot_learning_curves({"lr": [0.1]}, tmp_path / "empty.png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("rates", "log_scale"),
    [([0.1 * 0.5**epoch for epoch in range(8)], True), ([0.01, 0.008, 0.006], False)],
)
def test_learning_rate_png_and_its_scale(tmp_path, monkeypatch, rates, log_scale):
    pyplot = plots.load_pyplot()
    scales = []
    original_save = plots.save_figure

    def recording_save(figure, path):
        scales.append(figure.axes[0].get_yscale())
        original_save(figure, path)

    monkeypatch.setattr(plots, "save_figure", recording_save)
    path = tmp_path / "nested" / "learning_rate.png"
    plots.plot_learning_rate(rates, path)
    _assert_png(path)
    assert scales == ["log" if log_scale else "linear"]
    assert _leftovers(path.parent, {"learning_rate.png"}) == []
    assert pyplot.get_fignums() == []  # the figure was closed


def test_learning_rate_rejects_empty_and_non_finite(tmp_path):
    with pytest.raises(UserError, match="empty"):
        plots.plot_learning_rate([], tmp_path / "lr.png")
    with pytest.raises(UserError, match="finite"):
        plots.plot_learning_rate([0.1, float("inf")], tmp_path / "lr.png")


def test_failed_save_leaves_no_temporary_file_and_keeps_the_old_image(tmp_path, monkeypatch):
    path = tmp_path / "learning_rate.png"
    plots.plot_learning_rate([0.1, 0.05], path)
    before = path.read_bytes()

    figure_class = type(plots.load_pyplot().figure())
    plots.load_pyplot().close("all")

    def broken_savefig(self, *arguments, **keywords):
        raise OSError("disk full")

    monkeypatch.setattr(figure_class, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        plots.plot_learning_rate([0.1, 0.01, 0.001], path)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path, {"learning_rate.png"}) == []
    assert plots.load_pyplot().get_fignums() == []


def test_importing_the_modules_loads_neither_matplotlib_nor_tensorflow():
    code = (
        "import sys, recipes.plots, recipes.curves, recipes.diagnosis; "
        "heavy = [name for name in ('matplotlib', 'tensorflow', 'keras') if name in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_learning_curves_draw_the_bias_corrected_ewma(tmp_path, monkeypatch):
    """The plotted smooth line is v_t / (1 - beta^t), not the raw average that starts near zero."""
    drawn = {}

    def keep(figure, path):
        for axis in figure.axes:
            for line in axis.get_lines():
                drawn[(axis.get_title(), line.get_label())] = np.asarray(line.get_ydata(), float)

    monkeypatch.setattr(plots, "save_figure", keep)
    losses = [2.0, 1.0, 0.5, 0.4]
    plots.plot_learning_curves({"loss": losses, "dev_loss": [2.2, 1.4, 0.9, 0.8]}, tmp_path / "c.png", beta=0.9)
    smooth = next(values for (_, label), values in drawn.items() if label == "train (EWMA)")
    raw = next(values for (_, label), values in drawn.items() if label == "train (raw)")
    assert raw.tolist() == losses
    expected, average = [], 0.0
    for step, value in enumerate(losses, 1):
        average = 0.9 * average + 0.1 * value
        expected.append(average / (1 - 0.9**step))
    assert smooth == pytest.approx(expected)
    assert smooth[0] == pytest.approx(2.0)  # uncorrected it would be 0.2


def test_learning_curves_mark_the_kept_epoch(tmp_path, monkeypatch):
    labels = []
    monkeypatch.setattr(
        plots,
        "save_figure",
        lambda figure, path: labels.extend(line.get_label() for axis in figure.axes for line in axis.lines),
    )
    plots.plot_learning_curves({"loss": [1.0, 0.5, 0.6], "dev_loss": [1.1, 0.7, 0.9]}, tmp_path / "c.png", best_epoch=2)
    assert labels.count("kept: epoch 2") == 2  # one dashed line per panel


# --- every figure's titles fit its canvas -----------------------------------------------------------------------


def _figures_the_project_writes(folder: Path) -> dict[str, callable]:
    """name → a call writing one figure as the project writes it, at its largest titles and class counts."""
    from edge.analyze import CycleCosts, ModelAnalysis, OperatorCost, plot_analysis
    from tuning.hardware import Budget
    from tuning.pareto import plot_pareto
    from tuning.report import TrialRecord, plot_importance, plot_trials
    from tuning.spaces import Dimension

    epochs = 60
    rng = np.random.default_rng(0)
    classification = {
        "loss": list(np.linspace(2.3, 0.2, epochs)),
        "dev_loss": list(np.linspace(2.3, 0.4, epochs)),
        "accuracy": list(np.linspace(0.1, 0.99, epochs)),
        "dev_accuracy": list(np.linspace(0.1, 0.95, epochs)),
    }
    regression = {
        "loss": [1.0, 0.5, 0.4],
        "dev_loss": [1.1, 0.7, 0.6],
        "mae": [40.0, 30.0, 28.0],
        "dev_mae": [42, 35, 33],
    }
    names = [f"keyword_{index}_with_a_long_name" for index in range(40)]

    def matrix(classes):
        return np.diag(rng.integers(20, 40, classes)) + rng.integers(0, 3, (classes, classes))

    space = {
        "learning_rate": Dimension("learning_rate", "float", 1e-4, 1e-1, log=True),
        "units": Dimension("units", "int", 8, 64),
    }
    records = [
        TrialRecord(
            1 + index % 2,
            f"{index:02d}",
            "COMPLETED",
            {"learning_rate": 10 ** -rng.uniform(1, 4), "units": int(rng.integers(8, 64))},
            score=float(rng.uniform(0.5, 0.99)),
            epochs=5,
            seconds=1.0,
            metrics={"int8_kb": float(rng.uniform(5, 300)), "est_latency_ms": float(rng.uniform(1, 400))},
        )
        for index in range(12)
    ]
    costs = CycleCosts("cortex-m7-280mhz-x-cube-ai", 280e6, 1.0, 2.0, 1.5)
    operators = [
        OperatorCost(
            index, op, "conv", [1, 25, 5, 64], 100_000 * (index + 1), 4_000, 256, 8_000, 8_000, 16_000, 0.5, 1e5, 0.4
        )
        for index, op in enumerate(["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "FULLY_CONNECTED"])
    ]
    analysis = ModelAnalysis(
        "model_int8_pruned_qat.tflite", operators, 123_456, 100_000, 2_000, 60_000, "measured", 40_000, 1, costs
    )
    budget = Budget(max_int8_kb=64, max_arena_kb=40, max_latency_ms=50, target="cortex-m4-120mhz")
    return {
        "learning curves": lambda: plots.plot_learning_curves(
            classification, folder / "a.png", beta=0.98, best_epoch=44
        ),
        "regression curves": lambda: plots.plot_learning_curves(regression, folder / "b.png", best_epoch=3),
        "learning rate": lambda: plots.plot_learning_rate([0.1 * 0.9**e for e in range(epochs)], folder / "c.png"),
        **{
            f"confusion matrix of {classes} classes": (
                lambda classes=classes: plots.plot_confusion_matrix(
                    matrix(classes), names[:classes], folder / f"d{classes}.png", "Confusion matrix, test split"
                )
            )
            for classes in (2, 12, 40)
        },
        **{
            f"confusion pair of {classes} classes": (
                lambda classes=classes: plots.plot_confusion_pair(
                    matrix(classes),
                    matrix(classes),
                    names[:classes],
                    folder / f"e{classes}.png",
                    ("Keras", "int8_pruned_qat"),
                    "Test split: Keras and int8_pruned_qat",
                )
            )
            for classes in (2, 12, 40)
        },
        **{
            f"predicted against true, {targets} target(s)": (
                lambda targets=targets: plots.plot_predicted_vs_true(
                    rng.normal(size=(50, targets)) * 1e4,
                    rng.normal(size=(50, targets)) * 1e4,
                    names[:targets],
                    folder / f"p{targets}.png",
                )
            )
            for targets in (1, 3)
        },
        "tuning trials": lambda: plot_trials(records, space, "val_accuracy", "max", folder / "f.png"),
        "tuning importance": lambda: plot_importance([("learning_rate", 0.7), ("units", 0.3)], folder / "g.png"),
        "pareto": lambda: plot_pareto(records, records[:3], "val_accuracy", budget, folder / "h.png"),
        "analysis": lambda: plot_analysis(analysis, folder / "i.png"),
    }


def test_every_figure_keeps_its_titles_inside_the_canvas(tmp_path, monkeypatch):
    """Each figure is drawn as it is saved and the bounding box of its title (the figure's and every panel's) must
    lie inside the canvas: a title cut off at the edges is unreadable."""
    from matplotlib.figure import Figure

    checked: list[tuple[str, str, tuple[float, ...], tuple[float, ...]]] = []
    original = Figure.savefig

    def measuring_savefig(figure, *args, **kwargs):
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        canvas = figure.bbox
        titles = [figure._suptitle] if figure._suptitle is not None else []
        for axis in figure.axes:
            titles += [axis.title, axis._left_title, axis._right_title]
        for title in titles:
            if not title.get_text():
                continue
            box = title.get_window_extent(renderer)
            checked.append((current[0], title.get_text(), tuple(box.extents), tuple(canvas.extents)))
        return original(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", measuring_savefig)
    current = [""]
    figures = _figures_the_project_writes(tmp_path)
    for name, draw in figures.items():
        current[0] = name
        draw()
    assert {name for name, *_ in checked} == set(figures)  # every figure has a title and was measured
    outside = [
        f"{name}: '{text}' at {box} on a canvas {canvas}"
        for name, text, box, canvas in checked
        if box[0] < canvas[0] - 0.5 or box[1] < canvas[1] - 0.5 or box[2] > canvas[2] + 0.5 or box[3] > canvas[3] + 0.5
    ]
    assert outside == []
    assert any("Learning curves" in text for _, text, *_ in checked)


def test_predicted_against_true_draws_each_target_with_its_r2(tmp_path):
    """One panel per target (at most six), the title naming each target's R² computed as the seed's formula
    1 - SS_res/SS_tot, and a perfect-prediction line spanning the values."""
    from matplotlib.figure import Figure

    truth = np.column_stack([np.arange(10.0), 100 + np.arange(10.0) * 3])
    guess = truth + np.array([[1.0, -3.0]] * 10)
    titles, lines = [], []
    original = Figure.savefig

    def capture(figure, *args, **kwargs):
        titles.extend(axis.get_title() for axis in figure.axes)
        lines.extend(tuple(axis.lines[0].get_xdata()) for axis in figure.axes)
        return original(figure, *args, **kwargs)

    Figure.savefig = capture
    try:
        plots.plot_predicted_vs_true(truth, guess, ["kwh", "temp"], tmp_path / "p.png")
    finally:
        Figure.savefig = original
    residual, spread = np.sum((guess - truth) ** 2, axis=0), np.sum((truth - truth.mean(axis=0)) ** 2, axis=0)
    r2 = 1 - residual / spread
    assert titles == [f"kwh\nR² {r2[0]:.3f}, MAE 1", f"temp\nR² {r2[1]:.3f}, MAE 3"]
    assert lines == [(0.0, 10.0), (97.0, 127.0)]
    assert (tmp_path / "p.png").stat().st_size > 0


def test_the_default_beta_is_0_9_in_ewma_and_in_the_plotted_curves(tmp_path, monkeypatch):
    """The documented default, β = 0.9 (about the last 10 epochs), both where the average is computed and where
    the learning curves call it."""
    import recipes.plots

    # β = 0.9 on 10, 20, 30, bias-corrected: 1.0 / 0.1, 2.9 / 0.19, 5.61 / 0.271.
    np.testing.assert_allclose(ewma([10.0, 20.0, 30.0]), [10.0, 2.9 / 0.19, 5.61 / 0.271], rtol=1e-12)
    betas = []

    def recording(values, beta=None, bias_correction=True):
        betas.append(beta)
        return ewma(values, beta=beta, bias_correction=bias_correction)

    monkeypatch.setattr(recipes.plots, "ewma", recording)
    history = {"loss": [1.0, 0.8, 0.7], "dev_loss": [1.1, 0.9, 0.85], "accuracy": [0.5, 0.6, 0.7]}
    recipes.plots.plot_learning_curves(history, tmp_path / "curves.png")
    assert betas and set(betas) == {0.9}
