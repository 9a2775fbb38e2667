"""How a command ends, the same for ``python cli.py`` and a bundle's ``python predict.py``: a mistake is one
``error:`` line and exit status 2; Ctrl-C and SIGTERM end it with one line and 128 + the signal's number (130, 143),
after the same cleanup; a file this user may not read or write, or a full disk, is one line naming it, never a
traceback."""

from __future__ import annotations

import contextlib
import errno
import signal
import sys
from collections.abc import Callable, Iterator

from edge.device.errors import UserError

EXIT_USER_ERROR = 2


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C raises KeyboardInterrupt, so that the same cleanup runs (a staged
    run's folder is removed) and the command ends with one line."""


# The interrupts the signals raised. Code that catches every exception can turn one into another error on its way
# up (TensorFlow does while it traces a function: a TypeError "Failed to convert elements"); the command still ends
# as the signal asked.
SIGNALLED: list[KeyboardInterrupt] = []


def _raise_terminated(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup short
    SIGNALLED.append(Terminated())
    raise SIGNALLED[-1]


def _raise_interrupted(signum: int, frame: object) -> None:
    SIGNALLED.append(KeyboardInterrupt())
    raise SIGNALLED[-1]


def handle_sigterm() -> None:
    """Make SIGTERM end a command as Ctrl-C does (see :class:`Terminated`), and remember either signal in
    :data:`SIGNALLED`, so that an interrupt some library turned into another error still ends the command as
    interrupted. Call it in the main thread, before the command runs."""
    signal.signal(signal.SIGTERM, _raise_terminated)
    signal.signal(signal.SIGINT, _raise_interrupted)


def interruption(interrupt: KeyboardInterrupt) -> str:
    """What ended the command, as a one-line message starts: ``interrupted`` (Ctrl-C) or ``terminated (SIGTERM)``."""
    return "terminated (SIGTERM)" if isinstance(interrupt, Terminated) else "interrupted"


def interrupted_status(interrupt: KeyboardInterrupt) -> int:
    """The exit status of a command ended by a signal: 128 + its number (SIGINT 130, SIGTERM 143)."""
    return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)


def not_permitted(error: BaseException) -> str | None:
    """One line for a file or folder this user may not read or write (a read-only run, a file system mounted
    read-only), naming it; None for any other error."""
    if isinstance(error, OSError) and error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        where = f"{error.filename}: " if error.filename else ""
        return (
            f"{where}{error.strerror or 'permission denied'}; let this user read and write it (its permissions, "
            "or a file system mounted read-write), or work on a copy elsewhere"
        )
    return None


def disk_full(error: BaseException, remedy: str) -> str | None:
    """One line for a full disk (``remedy``: what to do, e.g. ``write elsewhere with --out``); None for any other
    error."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        where = f" writing {error.filename}" if error.filename else ""
        return f"the disk is full{where}; free some space, or {remedy}"
    return None


@contextlib.contextmanager
def one_line_errors(
    exhausted: Callable[[BaseException], str | None] | None = None, after_signal: str = "nothing was written"
) -> Iterator[None]:
    """End the command in one line on stderr (``SystemExit``) for a :class:`UserError` (status 2), a signal (130 or
    143, ``<what ended it>: <after_signal>``), a file this user may not read or write, or what ``exhausted`` names
    (out of memory or disk: status 2). Any other exception is a bug and keeps its traceback."""
    try:
        yield
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
    except Exception as error:
        if SIGNALLED:  # library code (TensorFlow's tracing) turned the signal's KeyboardInterrupt into this error
            print(f"{interruption(SIGNALLED[-1])}: {after_signal}", file=sys.stderr)
            raise SystemExit(interrupted_status(SIGNALLED[-1])) from None
        line = (exhausted(error) if exhausted else None) or not_permitted(error)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
    except KeyboardInterrupt as interrupt:
        print(f"{interruption(interrupt)}: {after_signal}", file=sys.stderr)
        raise SystemExit(interrupted_status(interrupt)) from None
