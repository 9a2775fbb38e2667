"""The export's device bundle: everything a device with Python needs to run the models of ``edge/``.

Beside the models and ``manifest.json``, export writes

- ``lib/``: the project's own device runtime, copied file by file (``edge/runtime.py`` and the modules it
  imports, :data:`RUNTIME_FILES`): one source of truth, no second implementation;
- ``predict.py``: ``python predict.py MODEL --input FILE [--json]`` run from a copy of ``edge/`` alone prints
  what ``python cli.py predict`` prints (both call :func:`edge.runtime.main`'s code);
- ``requirements.txt``: the runtime's packages only (ai-edge-litert and numpy, Pillow for image inputs), pinned
  as the project pins them; never TensorFlow or Keras.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

from recipes.rundir import write_atomic

ROOT = Path(__file__).resolve().parents[1]
LIB = "lib"
# The device runtime and every module it imports (tests/test_house.py checks the list against a real import).
RUNTIME_FILES = (
    "edge/__init__.py",
    "edge/runtime.py",
    "edge/native_output.py",
    "edge/preflight.py",
    "edge/preprocessing.py",
    "edge/mfcc.py",
    "recipes/__init__.py",
    "recipes/audio.py",
    "recipes/dataset.py",
    "recipes/errors.py",
    "recipes/limits.py",
    "recipes/series_files.py",
    "recipes/suffixes.py",
    "recipes/windows.py",
)
RUNTIME_PACKAGES = ("ai-edge-litert", "numpy", "pillow")
PREDICT_SCRIPT = '''"""Run a model of this export without TensorFlow: python predict.py MODEL --input FILE [--json].

Needs only the packages of requirements.txt (pip install -r requirements.txt); the runtime is in lib/.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))

from edge.runtime import main  # noqa: E402  (lib/ first on the path)

sys.exit(main())
'''


def requirements() -> str:
    """``requirements.txt``: the runtime's packages with the project's own version ranges."""
    try:
        declared = importlib.metadata.requires("edge-recipes") or []
    except importlib.metadata.PackageNotFoundError:  # running from a source tree that was never installed
        declared = []
    pins = {}
    for line in declared:
        if ";" in line:
            continue
        name = re.split(r"[<>=!~ \[]", line, maxsplit=1)[0].lower()
        pins[name] = line
    lines = [pins.get(name, name) for name in RUNTIME_PACKAGES]
    return (
        "# The device runtime's packages (pillow only for image inputs); no TensorFlow, no Keras.\n"
        + "\n".join(lines)
        + "\n"
    )


def write_bundle(folder: Path) -> list[str]:
    """Write ``lib/``, ``predict.py`` and ``requirements.txt`` into an export folder; returns their paths relative
    to it."""
    written = []
    for relative in RUNTIME_FILES:
        target = folder / LIB / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, (ROOT / relative).read_text())
        written.append(f"{LIB}/{relative}")
    write_atomic(folder / "predict.py", PREDICT_SCRIPT)
    write_atomic(folder / "requirements.txt", requirements())
    return [*written, "predict.py", "requirements.txt"]
