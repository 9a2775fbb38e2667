"""Capturing what native libraries write straight to file descriptors 1 and 2.

The TFLite converter, LiteRT and the TFLite Micro interpreter print from C++ past Python's
``sys.stdout`` (``fully_quantize: 0 ...``, the CPU delegate notice, allocation records).
:func:`captured_native_output` points both descriptors at a temporary file for the duration of a
block, so the CLI's output stays readable and the text can be parsed.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
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
    """Redirect descriptors 1 and 2 and Python's ``sys.stdout``/``sys.stderr`` inside the block.

    Python's streams are redirected too because a test runner or Typer's ``CliRunner`` may have
    replaced them with objects that write to no descriptor. The descriptors belong to the whole
    process, so other threads' output inside the block is captured as well.

    Yields:
        A :class:`CapturedText` whose ``text`` holds everything written, once the block has ended.
    """
    captured = CapturedText()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # no descriptors 1 and 2 (a detached process): nothing to capture
        yield captured
        return
    python_text = io.StringIO()
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with contextlib.redirect_stdout(python_text), contextlib.redirect_stderr(python_text):
                yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            _flush_c_streams()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for descriptor in saved:
                os.close(descriptor)
            sink.seek(0)
            captured.text = python_text.getvalue() + sink.read().decode(errors="replace")


def _flush_c_streams() -> None:
    """Flush the C library's stdio buffers, so text a native library buffered lands in the capture."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)
