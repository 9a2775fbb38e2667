"""Checks and tools the test modules share: the one-line error of bad input, folder snapshots, a CLI subprocess."""

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def error_line(result) -> str:
    """The CLI's answer to bad input (a CliRunner result): exit status 2 and exactly one line, ``error: ...``,
    written to stderr, with no traceback. Returns the line."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert result.stderr.strip() == lines[0], result.stderr
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (hidden ones included) with its bytes."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def start_cli(args: list[str], log: Path) -> subprocess.Popen:
    """Start ``python cli.py ARGS`` in its own process group (so a test can kill it and its children), stdout
    and stderr into ``log``."""
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "cli.py"), *args],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@dataclass
class ExportedRun:
    """The session's shared run (the ``shared`` fixture), its export and the Keras model's view of the test split."""

    run_dir: Path
    report: Any
    x_test: np.ndarray
    y_test: np.ndarray
    keras_outputs: np.ndarray
    parameters: int
    class_names: list[str]

    @property
    def edge_dir(self) -> Path:
        return self.run_dir / "edge"

    @property
    def keras_labels(self) -> list[str]:
        return [self.class_names[i] for i in self.keras_outputs.argmax(axis=1)]


def copy_run(run_dir: Path, destination: Path, with_edge: bool = False) -> Path:
    """Copy a run directory (without ``edge/`` unless asked) for tests that export into it."""
    skipped = ("tensorboard",) if with_edge else ("tensorboard", "edge")
    return Path(shutil.copytree(run_dir, destination, ignore=shutil.ignore_patterns(*skipped)))


def device_python(folder: Path) -> Path:
    """A Python that has only the device runtime's packages: a fresh virtual environment (no pip, no
    site-packages of its own) that sees the installed ai-edge-litert, numpy and Pillow and their dependencies,
    linked one by one, and nothing else (no TensorFlow, Keras or scikit-learn, no project). Returns its python."""
    import importlib.metadata
    import re
    import venv

    from packaging.requirements import Requirement

    from edge.bundle import RUNTIME_PACKAGES

    linked = folder / "packages"
    linked.mkdir(parents=True)
    wanted, seen = list(RUNTIME_PACKAGES), set()
    while wanted:
        name = re.split(r"[<>=!~ ;\[(]", wanted.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        distribution = importlib.metadata.distribution(name)
        for line in distribution.requires or []:  # dependencies that apply here (no extras, markers evaluated)
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                wanted.append(requirement.name)
        for top in {Path(str(file)).parts[0] for file in distribution.files or []} - {".."}:
            source = Path(distribution.locate_file(top))
            if source.exists() and not (linked / top).exists():
                (linked / top).symlink_to(source)
    environment = folder / "env"
    venv.create(environment, with_pip=False, symlinks=True)
    site = next((environment / "lib").glob("python3*/site-packages"))
    (site / "device-packages.pth").write_text(str(linked) + "\n")
    return environment / "bin" / "python"


def run_bundle(python: Path, device: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``predict.py ARGS`` of a copied export folder ``device`` with ``python``, in that folder."""
    return subprocess.run([str(python), "predict.py", *args], cwd=device, capture_output=True, text=True, timeout=120)


def assert_bundle_predicts_like_the_cli(python: Path, edge_dir: Path, folder: Path, model: str, *args: str) -> str:
    """A copy of ``edge_dir`` run by ``python`` (see :func:`device_python`) prints with ``predict.py MODEL ARGS``
    exactly what ``cli.py predict`` prints for the same model; returns that output."""
    from typer.testing import CliRunner

    import cli

    device = Path(shutil.copytree(edge_dir, folder / "device"))
    bundle = run_bundle(python, device, model, *args)
    assert bundle.returncode == 0, bundle.stderr
    expected = CliRunner().invoke(cli.app, ["predict", str(device / model), *args])
    assert expected.exit_code == 0, expected.output
    assert bundle.stdout == expected.stdout
    return bundle.stdout


def require_programs(*programs: str) -> None:
    """Skip the calling test when a Debian program it needs is missing, with the reason; in CI (``CI`` set, where
    ``.ci/run`` installs them) fail instead, so a missing install step cannot pass as a skip."""
    import os

    import pytest

    missing = [program for program in programs if shutil.which(program) is None]
    if not missing:
        return
    reason = f"{' and '.join(missing)} not installed (Debian: apt-get install {' '.join(missing)})"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; .ci/run installs them")
    pytest.skip(reason)


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)
# Put first in <head> of a copy of the page: records script errors (not failed resources) as they happen, and after
# the load event writes what it found into the DOM, which --dump-dom then prints.
RENDER_PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (event) {
  if (event instanceof ErrorEvent) { window.__errors.push(String(event.message)); }
}, true);
window.addEventListener("load", function () {
  var broken = [];
  for (var i = 0; i < document.images.length; i++) {
    var image = document.images[i];
    if (!(image.complete && image.naturalWidth > 0)) { broken.push(image.alt || image.src.slice(0, 60)); }
  }
  var found = document.createElement("pre");
  found.id = "render-check";
  found.textContent = JSON.stringify({images: document.images.length, broken: broken, errors: window.__errors,
    width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight});
  document.body.appendChild(found);
});
</script>"""


def render_in_chromium(page: Path, folder: Path, width: int = 1280) -> dict[str, Any]:
    """Open ``page`` in headless Chromium twice: a copy with :data:`RENDER_PROBE` in front, whose DOM after the load
    event says how many images there are, which did not load (not complete, or no natural width) and the script
    errors; then the page itself for a screenshot of its whole height. Returns the probe's findings with
    ``screenshot`` (the PNG's path). Each run gets a fresh profile in ``folder``; the test needs ``chromium``
    (:func:`require_programs`)."""
    import html
    import json
    import re

    text = page.read_text(encoding="utf-8")
    probed = folder / f"probed-{page.name}"
    probed.write_text(re.sub(r"<head>", lambda _: "<head>" + RENDER_PROBE, text, count=1), encoding="utf-8")

    def chromium(*args: str, profile: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={folder / profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    dumped = chromium("--virtual-time-budget=10000", "--dump-dom", probed.resolve().as_uri(), profile="profile-dom")
    found = re.search(r'<pre id="render-check">(.*?)</pre>', dumped.stdout, re.S)
    assert found is not None, f"the probe did not report (exit {dumped.returncode}): {dumped.stderr[-2000:]}"
    result = json.loads(html.unescape(found.group(1)))
    screenshot = folder / f"{page.stem}.png"
    height = max(int(result["height"]), 600)
    shot = chromium(
        f"--window-size={width},{height}", f"--screenshot={screenshot}", page.resolve().as_uri(), profile="profile-shot"
    )
    assert screenshot.is_file(), f"no screenshot (exit {shot.returncode}): {shot.stderr[-2000:]}"
    result["screenshot"] = screenshot
    return result


def assert_run_page(run_dir: Path, folder: Path) -> dict[str, Any]:
    """A trained and exported classifier's or anomaly detector's run shows what a user looks at first: per-class
    results of each split in ``metrics.json`` (the test split's confusion matrix summing to its size), the Keras
    confusion figure, each exported variant's per-class results and its figure beside Keras's, and a
    ``report.html`` that renders in headless Chromium with every image loaded and no script error. Returns the
    export's ``report.json``."""
    import json

    metrics = json.loads((run_dir / "metrics.json").read_text())
    for part in ("train", "dev", "test"):
        classes = metrics[part]["classes"]
        assert sum(map(sum, classes["confusion_matrix"])) == metrics["split"][part]
        assert set(classes["per_class"]) == set(classes["names"])
    assert (run_dir / "plots" / "confusion_matrix_test.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((run_dir / "edge" / "report.json").read_text())
    for variant in report["variants"]:
        assert sum(map(sum, variant["classes"]["confusion_matrix"])) == report["test_examples"]
        assert (run_dir / "edge" / "plots" / f"confusion_matrix_{variant['name']}.png").is_file()
    require_programs("chromium")
    found = render_in_chromium(run_dir / "report.html", folder)
    assert found["broken"] == [] and found["errors"] == []
    assert found["images"] == 3 + len(report["variants"])
    return report
