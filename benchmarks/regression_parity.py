"""Regression: the mlp against a Ridge regression on the same split, and int8 parity in target units.

Usage::

    python benchmarks/regression_parity.py

Trains the mlp recipe as a regression on

- ``diabetes`` (scikit-learn's 442 patients; one 32-unit layer, L2 10), seeds 0-3;
- ``friedman``: Friedman #1 (1,500 rows, noise 1, features rescaled to span nine orders of magnitude), seed 0;
- ``friedman x2``: the same inputs with two targets in different units (y and 1000·y + 50,000), seed 0,

and prints per run: the test R² of the Keras model and of a Ridge regression fitted on the same training split
(its alpha chosen on dev from 1e-3..10), then per full-integer layout the int8 R², its drop from Keras's, and the
mean absolute difference from Keras's values in units of each target's deviation (the largest over the
outputs). Layouts: ``z-out`` (the export's: the int8 model outputs z-scores, mapped back in float by the
runtime) and ``units-out`` (the value layer kept inside the int8 graph: one output scale for every target).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import common  # puts the project on the import path
import numpy as np

DIABETES = {"hidden_units": [32], "l2": 10.0, "dropout": 0.0, "learning_rate": 0.003, "epochs": 400, "patience": 40}
FRIEDMAN = {"hidden_units": [64, 32], "dropout": 0.0, "learning_rate": 0.003, "epochs": 400, "patience": 40}
SCALES = np.array([1e-3, 1.0, 1e3, 1e6, 1.0, 10.0, 1e-2, 1.0, 1.0, 100.0])


def friedman_csv(folder: Path, outputs: int) -> tuple[str, str]:
    """Friedman #1 as a CSV in mixed units, with one or two targets; returns (path, --label)."""
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=1500, n_features=10, noise=1.0, random_state=0)
    x = x * SCALES
    targets = y[:, None] if outputs == 1 else np.column_stack([y, 1000 * y + 5e4])
    labels = ["y"] if outputs == 1 else ["y", "y_milli"]
    path = folder / f"friedman{outputs}.csv"
    lines = [",".join([*(f"x{i}" for i in range(10)), *labels])]
    lines += [",".join(f"{v:.7g}" for v in [*row, *target]) for row, target in zip(x, targets, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return str(path), ",".join(labels)


def ridge_r2(x: np.ndarray, y: np.ndarray, split) -> float:
    """Test R² of a Ridge regression on the training split, alpha chosen on dev."""
    from sklearn.linear_model import Ridge

    fits = [Ridge(alpha=alpha).fit(x[split.train], y[split.train]) for alpha in (1e-3, 1e-2, 1e-1, 1.0, 10.0)]
    best = max(fits, key=lambda fit: fit.score(x[split.dev], y[split.dev]))
    return float(best.score(x[split.test], y[split.test]))


def int8_layouts(model, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, seed: int):
    """(layout, int8 R², mean |diff| from Keras in target deviations) for both layouts."""
    from edge.convert import calibration_samples, convert_model, split_standardization
    from edge.device.model import EdgeModel
    from edge.variants import VARIANTS
    from recipes.tasks import Regression, regression_metrics

    core, inputs, outputs = split_standardization(model)
    import keras

    keep_units = keras.Model(model.get_layer("zscore").output, model.output)
    calibration = calibration_samples(x_train, 300, seed, Regression().strata(y_train))
    keras_values = np.asarray(model.predict(x_test, verbose=0), np.float64)
    std = y_test.reshape(len(y_test), -1).std(axis=0)
    names = [f"y{i}" for i in range(keras_values.shape[1])]
    rows = []
    for layout, graph, output in (("z-out", core, outputs), ("units-out", keep_units, None)):
        content = convert_model(graph, VARIANTS["int8"], inputs.apply(calibration))
        edge = EdgeModel(content, standardization=inputs, output_standardization=output, target_names=names)
        values = edge.predict(x_test)
        r2 = regression_metrics(y_test, values, names)["r2"]
        rows.append((layout, r2, float((np.abs(values - keras_values).mean(axis=0) / std).max())))
    return rows


def main() -> None:
    from recipes.config import TrainConfig
    from recipes.data import load_dataset
    from recipes.runs import Run
    from recipes.training import train

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        runs = [("diabetes", "diabetes", "label", seed, DIABETES) for seed in range(4)]
        for outputs, name in ((1, "friedman"), (2, "friedman x2")):
            path, labels = friedman_csv(folder, outputs)
            runs.append((name, path, labels, 0, FRIEDMAN))
        print(
            f"{'data':<12} {'seed':>4} {'Keras R²':>9} {'Ridge R²':>9}  "
            f"{'int8 R² (z-out)':>16} {'drop':>7} {'diff/σ':>7}  {'int8 R² (units-out)':>20} {'drop':>7} {'diff/σ':>7}"
        )
        for name, data, label, seed, settings in runs[:1] if common.smoke() else runs:
            settings = {**settings, "epochs": 1} if common.smoke() else settings
            config = TrainConfig(data=data, label=label, seed=seed, out=str(folder), task="regression", **settings)
            result = train(config, report=None)
            split = Run(result.run_dir).split()
            dataset = load_dataset(data, label)
            x, y = dataset.x, dataset.targets if dataset.targets.shape[1] > 1 else dataset.targets[:, 0]
            keras_r2 = result.metrics["test"]["r2"]
            layouts = int8_layouts(result.model, x[split.train], y[split.train], x[split.test], y[split.test], seed)
            cells = "  ".join(f"{r2:>16.4f} {keras_r2 - r2:>+7.4f} {diff:>7.3f}" for _, r2, diff in layouts)
            print(f"{name:<12} {seed:>4} {keras_r2:>9.4f} {ridge_r2(x, y, split):>9.4f}  {cells}", flush=True)


if __name__ == "__main__":
    main()
