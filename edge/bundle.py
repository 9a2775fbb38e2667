"""The export's device bundle: everything a device with Python needs to run the models of ``edge/``.

Beside the models and ``manifest.json``, export writes

- ``lib/``: the project's device package, :mod:`edge.device`, copied whole (:func:`runtime_files`): one source of
  truth, no second implementation; it imports nothing else of the project (``tests/test_house.py`` checks every
  import statement);
- ``predict.py``: ``python predict.py MODEL --input FILE [--json]`` run from a copy of ``edge/`` alone prints
  what ``python cli.py predict`` prints (both run :mod:`edge.device.predictions`);
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
DEVICE_PACKAGE = "edge/device"


def runtime_files() -> list[str]:
    """The files ``lib/`` holds, relative to the project: ``edge/__init__.py`` and every module of the device
    package."""
    modules = sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / DEVICE_PACKAGE).glob("*.py"))
    return ["edge/__init__.py", *modules]


RUNTIME_PACKAGES = ("ai-edge-litert", "numpy", "pillow")
PREDICT_SCRIPT = '''"""Run a model of this export without TensorFlow: python predict.py MODEL --input FILE [--json].

Needs only the packages of requirements.txt (pip install -r requirements.txt); the runtime is in lib/.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))

from edge.device.cli import main  # noqa: E402  (lib/ first on the path)

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
    for relative in runtime_files():
        target = folder / LIB / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, (ROOT / relative).read_text())
        written.append(f"{LIB}/{relative}")
    write_atomic(folder / "predict.py", PREDICT_SCRIPT)
    write_atomic(folder / "requirements.txt", requirements())
    return [*written, "predict.py", "requirements.txt"]
