"""Run directories that never overwrite and files written atomically.

A run is assembled in a hidden staging folder beside its final place and renamed into
``<root>/<kind>/<name>-<n>/`` only when everything in it is written, so a failed or killed run
leaves no run directory behind and an existing run is never touched; a staging folder a kill (SIGKILL) left
behind names its host and process and is removed by the next run of that name (:func:`remove_stale`). Single
files written later (``diagnose``, export) go through :func:`write_atomic`: temp file, then rename. Temp files
and folders get the modes the umask gives ordinary new ones (:func:`temp_file`, :func:`temp_folder`), not
mkstemp's private 0o600/0o700, so a run can be shared as any other file.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import platform
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from edge.device.errors import UserError

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """``name`` with anything but letters, digits, '.', '_' and '-' replaced by '-'."""
    cleaned = _SAFE_NAME.sub("-", name).strip("-.")
    return cleaned or "run"


def process_umask() -> int:
    """The process's file-mode creation mask, read without changing it where the system tells it (Linux's
    ``/proc/self/status``); elsewhere by setting and restoring it once, under a lock, and remembered."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    global _UMASK
    with _UMASK_LOCK:
        if _UMASK is None:
            _UMASK = os.umask(0o077)  # for that instant files made by other threads are private, never more open
            os.umask(_UMASK)
        return _UMASK


_UMASK: int | None = None
_UMASK_LOCK = threading.Lock()


def temp_file(folder: str | Path, prefix: str, suffix: str = ".tmp") -> tuple[int, str]:
    """``tempfile.mkstemp`` in ``folder``, with the mode an ordinary new file gets (0o666 less the umask) instead
    of mkstemp's 0o600, which a rename into place would keep. Returns the open descriptor and the path."""
    handle, name = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=suffix)
    try:
        os.fchmod(handle, 0o666 & ~process_umask())
    except BaseException:
        os.close(handle)
        os.unlink(name)
        raise
    return handle, name


def temp_folder(folder: str | Path, prefix: str) -> Path:
    """``tempfile.mkdtemp`` in ``folder``, with the mode an ordinary new folder gets (0o777 less the umask) instead
    of mkdtemp's 0o700, which a rename into place would keep."""
    path = Path(tempfile.mkdtemp(dir=folder, prefix=prefix))
    try:
        os.chmod(path, 0o777 & ~process_umask())
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path


# A hidden temp folder another host's process may still be writing is left alone for this long.
FOREIGN_STALE_SECONDS = 24 * 3600
_MKDTEMP_SUFFIX = r"[a-z0-9_]{8}"  # what tempfile.mkdtemp appends to the prefix


def owned_prefix(prefix: str) -> str:
    """``prefix`` followed by this host's name and this process's id: a temp folder named with it can be recognised
    by :func:`remove_stale` as left behind once that process is gone (killed before it could clean up)."""
    return f"{prefix}{_host()}-{os.getpid()}-"


def _host() -> str:
    """This host's name as an owner tag holds it: letters, digits and '_' only."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", socket.gethostname()) or "host"


def remove_stale(folder: str | Path, prefix: str) -> list[Path]:
    """Remove the hidden temp folders in ``folder`` named ``prefix`` + :func:`owned_prefix`'s owner that no live
    process owns: this host's whose process has ended, another host's unchanged for :data:`FOREIGN_STALE_SECONDS`
    (a copy of the folder carries them too), and unowned ones of the form ``prefix`` + mkdtemp's eight characters
    (made before their names carried an owner). Returns those removed."""
    folder = Path(folder)
    host = _host()
    owned = re.compile(rf"{re.escape(prefix)}(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-{_MKDTEMP_SUFFIX}")
    unowned = re.compile(rf"{re.escape(prefix)}{_MKDTEMP_SUFFIX}")
    removed = []
    try:
        children = [child for child in folder.iterdir() if child.name.startswith(prefix)]
    except OSError:
        return removed
    for child in children:
        if child.is_symlink() or not child.is_dir():
            continue
        match = owned.fullmatch(child.name)
        if match is None and not unowned.fullmatch(child.name):
            continue
        if match is not None and match["host"] == host and _alive(int(match["pid"])):
            continue
        if match is not None and match["host"] != host:
            with contextlib.suppress(OSError):
                if time.time() - child.stat().st_mtime < FOREIGN_STALE_SECONDS:
                    continue
        shutil.rmtree(child, ignore_errors=True)
        removed.append(child)
    return removed


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (one of another user counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Linux renameat2(2): the current directory as base, and the flag that swaps two existing paths atomically.
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(first: str | Path, second: str | Path) -> bool:
    """Swap two existing paths (files or folders, on one filesystem) in one atomic step, with Linux's
    ``renameat2(RENAME_EXCHANGE)``: at every instant each name holds one of the two. Returns False, changing
    nothing, where that is not available (another system, a C library or kernel without it, a filesystem that
    refuses it).

    Raises:
        OSError: the exchange was refused for another reason (a path missing, permissions).
    """
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


@functools.cache
def _renameat2() -> Any:
    """The C library's ``renameat2``, or None where it has none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def replace_folder(new: str | Path, target: str | Path) -> Path:
    """Put folder ``new`` in the place of ``target`` (an existing ``target`` is replaced whole, then deleted).

    With :func:`exchange` the two swap atomically, so a kill at any instant leaves ``target`` holding the old
    content or the new; elsewhere ``target`` is first renamed aside to a hidden ``.<target>-old-...`` folder (which
    :func:`remove_stale` removes should a kill come between the two renames).
    """
    new, target = Path(new), Path(target)
    if not os.path.lexists(target):
        os.rename(new, target)
        return target
    if exchange(new, target):
        _remove(new)  # it now holds the old content
        return target
    old = target.with_name(owned_prefix(f".{target.name}-old-") + uuid.uuid4().hex[:8])
    os.rename(target, old)
    try:
        os.rename(new, target)
    except OSError:
        with contextlib.suppress(OSError):
            os.rename(old, target)
        raise
    _remove(old)
    return target


def _remove(path: Path) -> None:
    """Delete a folder with its content, or a link or file (what a replaced ``target`` may have been)."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def held_lock(path: str | Path, busy: str) -> Iterator[None]:
    """Hold an exclusive lock on file ``path`` (``fcntl.flock``) while the block runs; the file records this
    process's id. The system releases the lock when the process ends, killed or not, so none is ever stale.

    Args:
        path: the lock file (created if needed).
        busy: the one-line refusal when another process holds it; ``{pid}`` is replaced by that process's id.

    Raises:
        UserError: ``busy``, when another process holds the lock.
    """
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise UserError(busy.replace("{pid}", handle.read().strip() or "?")) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and an atomic rename (the file gets the
    mode the umask gives a new file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = temp_file(path.parent, prefix=f".{path.name}.")
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
    remove_stale(parent, f".{name}.staging-")  # left by a process killed while it staged a run of this name
    staging = temp_folder(parent, prefix=owned_prefix(f".{name}.staging-"))
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
