"""The project's error type for user mistakes.

Library code raises :class:`UserError` (a ``ValueError``) for anything the user can fix: a bad path,
a malformed file, an impossible setting. ``cli.py`` turns it into one line on stderr and exit
status 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(ValueError):
    """A mistake in the user's input: the message names the problem and the fix."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type's name when the message is empty): what a one-line
    error quotes of a library's multi-line message."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def printable(text: str) -> str:
    """``text`` with every control character (newlines, ANSI escapes) written as an escape such as ``\\x1b``:
    labels and names from the user's files can neither forge a line of output nor drive the terminal."""
    return "".join(character if character.isprintable() else repr(character)[1:-1] for character in str(text))


def is_number(text: object) -> bool:
    """Whether ``float(text)`` succeeds: the test every reader of text cells (CSV, ``.ts``) applies before it names a
    cell that is not a number."""
    try:
        float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def closest(name: str, choices: Iterable[str]) -> str:
    """Return a ``"; did you mean 'x'?"`` hint for ``name`` among ``choices``, or ``""``."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""


def unknown_choice(what: str, name: str, choices: Iterable[str]) -> UserError:
    """Build the error for an unknown name, suggesting the closest valid one and listing all."""
    choices = sorted(choices)
    hint = closest(name, choices)
    return UserError(f"unknown {what} '{name}'{hint} (choose from: {', '.join(choices)})")
