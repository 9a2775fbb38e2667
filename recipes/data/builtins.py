"""The built-in data sets: scikit-learn's (no download) and the generated ``machine`` and ``motion`` sets."""

from __future__ import annotations

import numpy as np

from recipes.dataset import Dataset, labelled

REGRESSION_BUILTINS = ("diabetes", "linnerud")


def load_builtin(name: str) -> Dataset:
    """Load one of :data:`recipes.data.BUILTIN_DATASETS` from scikit-learn or the synthetic generator (no download)."""
    if name == "machine":
        from recipes.data.machine import machine_dataset

        return machine_dataset()
    if name == "motion":
        from recipes.data.motion import WINDOW_SECONDS
        from recipes.data.streams import WindowSettings, load_motion

        return load_motion(WindowSettings(WINDOW_SECONDS))
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    if name in REGRESSION_BUILTINS:
        names = list(getattr(bunch, "target_names", None) or ["target"])
        features = [str(feature) for feature in bunch.feature_names]
        return labelled(bunch.data.astype(np.float32), bunch.target, names, "tabular", name, feature_names=features)
    y = bunch.target.astype(np.int32)
    class_names = [str(class_name) for class_name in bunch.target_names]
    if name == "digits":
        x = bunch.images.astype(np.float32)[..., np.newaxis]
        return Dataset(x=x, y=y, class_names=class_names, kind="image", name=name)
    x = bunch.data.astype(np.float32)
    feature_names = [str(feature) for feature in bunch.feature_names]
    return Dataset(x=x, y=y, class_names=class_names, kind="tabular", name=name, feature_names=feature_names)
