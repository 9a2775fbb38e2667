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
