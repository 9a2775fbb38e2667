"""The aeon side of ``benchmarks/ucr.py``: the data sets inside the aeon wheel and MiniRocket's accuracy on them.

Runs in its own virtual environment, never in the project's (aeon is no dependency of the project)::

    python3 -m venv /work/aeon-venv && /work/aeon-venv/bin/pip install aeon==1.6.0
    /work/aeon-venv/bin/python benchmarks/ucr_aeon.py OUT_FOLDER

``benchmarks/ucr.py`` calls it that way. For every classification set shipped in the wheel
(``aeon/datasets/data/<name>/<name>_TRAIN.ts`` and ``_TEST.ts``; of a set with unequal lengths the equal-length
``<name>_eq`` files the wheel ships beside it) it writes ``<name>.npz`` with the official split as float32
``x_train``/``x_test`` of shape (examples, steps, channels) and the labels as text ``y_train``/``y_test``, and
fits aeon's ``MiniRocketClassifier`` at its defaults (10,000 kernels, ridge regression with cross-validated
regularization; ``random_state`` 0) on the training file and scores it on the test file. The figures go to
``minirocket.json``: per set the test accuracy and the seconds the fit took. Regression sets (a ``@targetlabel``
header) are skipped. It imports aeon and numpy only, not the project.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def classification_sets(root: Path) -> list[str]:
    """Names of the wheel's classification sets with equal-length TRAIN and TEST files, sorted."""
    names = []
    for train in sorted(root.glob("*/*_TRAIN.ts")):
        name = train.name[: -len("_TRAIN.ts")]
        if not (train.parent / f"{name}_TEST.ts").exists() or "TimeStamps" in name:
            continue
        header = train.read_text(errors="replace")[:4000].lower()
        if "@classlabel true" not in header:
            continue  # a regression set
        if "@equallength false" in header:
            continue  # its equal-length twin <name>_eq is used instead
        names.append(name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the cache folder ucr.py reads")
    out = parser.parse_args().out
    import aeon
    from aeon.classification.convolution_based import MiniRocketClassifier
    from aeon.datasets import load_classification

    out.mkdir(parents=True, exist_ok=True)
    root = Path(aeon.__file__).parent / "datasets" / "data"
    figures = {"aeon": aeon.__version__, "sets": {}}
    for name in classification_sets(root):
        x_train, y_train = load_classification(name, split="train")
        x_test, y_test = load_classification(name, split="test")
        np.savez(
            out / f"{name}.npz",
            x_train=np.transpose(x_train, (0, 2, 1)).astype(np.float32),
            y_train=np.asarray(y_train).astype(str),
            x_test=np.transpose(x_test, (0, 2, 1)).astype(np.float32),
            y_test=np.asarray(y_test).astype(str),
        )
        started = time.perf_counter()
        classifier = MiniRocketClassifier(random_state=0).fit(x_train, y_train)
        seconds = time.perf_counter() - started
        accuracy = float(np.mean(classifier.predict(x_test) == y_test))
        figures["sets"][name] = {"accuracy": accuracy, "fit_seconds": round(seconds, 2)}
        print(f"{name:<28} MiniRocket {accuracy:.4f} ({seconds:.1f} s)", flush=True)
    (out / "minirocket.json").write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
