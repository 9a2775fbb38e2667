"""Fixtures the test modules share.

``shared``: one small trained run, exported once per test session. Every edge test asks for the same run, so the
whole edge test set trains once (the default digits MLP, 50,826 parameters, 15 epochs, seed 0) and exports all
four variants once. Tests that write into a run work on a copy (:func:`tests.helpers.copy_run`).

``tflm_objects``: the folder TFLite Micro's objects are compiled into for the firmware tests, once per session.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import ExportedRun


@pytest.fixture(scope="session")
def shared(tmp_path_factory) -> ExportedRun:
    """The shared digits run, trained and exported with every variant."""
    from edge.export import export_run
    from edge.variants import VARIANTS
    from recipes.config import resolve_config
    from recipes.data import load_dataset
    from recipes.runs import load_model
    from recipes.splitting import load_split
    from recipes.training import train

    root = tmp_path_factory.mktemp("edge-runs")
    result = train(resolve_config(None, {"epochs": 15, "out": str(root)}, []), report=None)
    report = export_run(result.run_dir, list(VARIANTS))
    model = load_model(result.run_dir)
    dataset = load_dataset("digits")
    test = load_split(result.run_dir / "split.npz").test
    x_test, y_test = dataset.x[test], dataset.y[test]
    return ExportedRun(
        result.run_dir,
        report,
        x_test,
        y_test,
        np.asarray(model.predict(x_test, verbose=0)),
        result.parameters,
        dataset.class_names,
    )


@pytest.fixture(scope="session")
def device_env(tmp_path_factory):
    """A Python with only the device runtime's packages, no TensorFlow (:func:`tests.helpers.device_python`)."""
    from tests.helpers import device_python

    return device_python(tmp_path_factory.mktemp("device-env"))


@pytest.fixture(scope="session")
def tflm_objects(tmp_path_factory):
    """One folder for TFLite Micro's objects, shared by every firmware build of the session: compiled once. It is
    where the CLI's builds keep them too when ``XDG_CACHE_HOME`` is its grandparent (:func:`objects_folder`)."""
    from edge.firmware import SOURCES
    from edge.firmware_build import objects_folder
    from tests.firmware_checks import TFLM_ROOT

    cache = tmp_path_factory.mktemp("cache")
    return objects_folder(TFLM_ROOT.resolve(), SOURCES / "Makefile", cache)
