"""The project's error type for user mistakes.

Library code raises :class:`UserError` (a ``ValueError``) for anything the user can fix: a bad path,
a malformed file, an impossible setting. ``cli.py`` turns it into one line on stderr and exit
status 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

# A number as a data file writes it: ASCII digits, an optional sign, decimal point and exponent, or inf/infinity/nan.
# Python's float() also takes '1_000' and digits of other scripts ('١٢٣'), which no CSV writer means as a number.
_PLAIN_NUMBER = re.compile(
    r"\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|inf(?:inity)?|nan)\s*", re.IGNORECASE | re.ASCII
)
# Longest user text (a cell, a name) quoted whole in an error line; longer ones are cut (see :func:`quoted`).
QUOTED_CHARS = 60


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
    """Whether a text cell is a plain number (:data:`_PLAIN_NUMBER`; a number object always is): the test every
    reader of text cells (CSV, ``.ts``) applies before it names a cell that is not a number."""
    if not isinstance(text, str):
        try:
            float(text)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
        return True
    return _PLAIN_NUMBER.fullmatch(text) is not None


def plain_floats(cells: list, dtype: str = "float64") -> Any:
    """Text cells (a list, or a list of rows) as a numpy array, refusing what only Python's ``float`` reads
    ('1_000', other scripts' digits) as numpy does what it cannot read at all: with a ``ValueError``, after which
    the caller names the cell (:func:`is_number`)."""
    import numpy as np

    values = np.asarray(cells, dtype=dtype)
    flat = np.asarray(cells, dtype=object).reshape(-1)
    if any(isinstance(cell, str) and ("_" in cell or not cell.isascii()) for cell in flat):
        raise ValueError("not a plain number")
    return values


def quoted(text: object) -> str:
    """User text for an error line: :func:`printable`, cut to :data:`QUOTED_CHARS` characters with the length said,
    so a 400-digit cell cannot make the line unreadable."""
    text = printable(str(text))
    if len(text) <= QUOTED_CHARS:
        return text
    return f"{text[: QUOTED_CHARS - 20]}...({len(text)} characters)"


def closest(name: str, choices: Iterable[str]) -> str:
    """Return a ``"; did you mean 'x'?"`` hint for ``name`` among ``choices``, or ``""``."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""


def unknown_choice(what: str, name: str, choices: Iterable[str]) -> UserError:
    """Build the error for an unknown name, suggesting the closest valid one and listing all."""
    choices = sorted(choices)
    hint = closest(name, choices)
    return UserError(f"unknown {what} '{name}'{hint} (choose from: {', '.join(choices)})")
