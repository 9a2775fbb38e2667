"""The seed's formulas inside a real training run (not only on hand-built specs): the z-score statistics come
from the training split alone, and the m of lambda/(2m) is the training split's size."""

import numpy as np
import pytest

from recipes.config import resolve_config
from recipes.data import load_dataset
from recipes.runs import load_model
from recipes.splitting import load_split
from recipes.training import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    config = resolve_config(
        None, {"data": "wine", "epochs": 2, "out": str(tmp_path_factory.mktemp("formulas"))}, ["l2=0.5", "l1=0.25"]
    )
    return train(config, report=None).run_dir


def test_zscore_statistics_are_the_training_splits_alone(run):
    model = load_model(run)
    zscore = model.get_layer("zscore").get_config()
    x = load_dataset("wine").x
    train_rows = x[load_split(run / "split.npz").train]
    mean, variance = np.asarray(zscore["mean"]).reshape(-1), np.asarray(zscore["variance"]).reshape(-1)
    assert np.allclose(mean, train_rows.mean(axis=0), rtol=1e-5)
    assert np.allclose(variance, train_rows.var(axis=0), rtol=1e-4)
    # The whole data set's statistics differ measurably on wine: a leak from dev and test would show.
    assert np.abs(mean - x.mean(axis=0)).max() / x.std(axis=0).max() > 1e-3
    assert not np.allclose(mean, x.mean(axis=0), rtol=1e-5)


def test_regularization_m_is_the_training_split_size(run):
    model = load_model(run)
    m = len(load_split(run / "split.npz").train)
    assert m != len(load_dataset("wine").y)
    kernels = [layer for layer in model.layers if getattr(layer, "kernel_regularizer", None) is not None]
    assert kernels
    for layer in kernels:
        regularizer = layer.kernel_regularizer.get_config()
        assert regularizer["l2"] == pytest.approx(0.5 / (2 * m), rel=1e-6)
        assert regularizer["l1"] == pytest.approx(0.25 / (2 * m), rel=1e-6)
