"""Capturing what native libraries write straight to file descriptors 1 and 2.

The TFLite converter and the TFLite Micro interpreter print from C++ (``fully_quantize: 0 ...``,
allocation records), past Python's ``sys.stdout``. :func:`captured_native_output` points both
descriptors at a temporary file for the duration of a block, so the CLI's output stays readable and
the text can be parsed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


class CapturedText:
    """The text written to descriptors 1 and 2 inside the block; read it after the block ends."""

    def __init__(self) -> None:
        self.text = ""


@contextlib.contextmanager
def captured_native_output() -> Iterator[CapturedText]:
    """Redirect descriptors 1 and 2 (Python and C++ writes alike) to a temp file inside the block.

    Yields:
        A :class:`CapturedText` whose ``text`` holds everything written, once the block has ended.
    """
    captured = CapturedText()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for descriptor in saved:
                os.close(descriptor)
            sink.seek(0)
            captured.text = sink.read().decode(errors="replace")
