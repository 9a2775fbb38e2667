"""Run directories that never overwrite and files written atomically.

A run is assembled in a hidden staging folder beside its final place and renamed into
``<root>/<kind>/<name>-<n>/`` only when everything in it is written, so a failed or killed run
leaves no run directory behind and an existing run is never touched. Single files written later
(``diagnose``, export) go through :func:`write_atomic`: temp file, then rename.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from recipes.errors import UserError

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """``name`` with anything but letters, digits, '.', '_' and '-' replaced by '-'."""
    cleaned = _SAFE_NAME.sub("-", name).strip("-.")
    return cleaned or "run"


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data.encode() if isinstance(data, str) else data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return path


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    return write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def _next_number(parent: Path, name: str) -> int:
    pattern = re.compile(rf"^{re.escape(name)}-(\d+)$")
    numbers = [int(m.group(1)) for p in parent.iterdir() if (m := pattern.match(p.name))] if parent.is_dir() else []
    return max(numbers, default=0) + 1


def check_writable(folder: str | Path, flag: str = "--out") -> None:
    """Refuse, in one line and before any work, a folder that is a file or that this process cannot create or
    write into (its nearest existing parent is checked when it does not exist yet).

    Raises:
        UserError: naming the folder and the fix.
    """
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not a folder; give a folder for the runs, e.g. {flag} runs")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path} cannot be written ({existing} is read-only for this user); give another folder")


@contextlib.contextmanager
def staged_run(root: str | Path, kind: str, name: str) -> Iterator[StagedRun]:
    """Stage a new run under ``root/kind``; on success it becomes ``<name>-<n>``, on error it vanishes.

    Usage::

        with staged_run("runs", "train", "digits-mlp") as run:
            (run.path / "model.keras").write_bytes(...)
        print(run.final_path)   # runs/train/digits-mlp-3
    """
    parent = Path(root) / kind
    parent.mkdir(parents=True, exist_ok=True)
    name = safe_name(name)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}.staging-"))
    run = StagedRun(staging, parent, name)
    try:
        yield run
        run.commit()
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


class StagedRun:
    """A run being written: ``path`` while staging, ``final_path`` once committed."""

    def __init__(self, path: Path, parent: Path, name: str) -> None:
        self.path = path
        self.parent = parent
        self.name = name
        self.final_path: Path | None = None

    def commit(self) -> Path:
        """Rename the staging folder to the next free ``<name>-<n>``; never replaces a run."""
        while True:
            target = self.parent / f"{self.name}-{_next_number(self.parent, self.name)}"
            try:
                if target.exists():
                    continue  # an empty folder someone made: skip its number rather than take it
                os.rename(self.path, target)
            except OSError as error:
                if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    continue  # another process took that number in between: try the next
                raise
            self.final_path = target
            return target


def installed_versions(packages: Iterable[str]) -> dict[str, str]:
    """Python's version and the installed version of each of ``packages`` (those not installed are left out):
    what a run or an export records of the stack that made it."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found
