"""The pre-flight: a model from elsewhere is loaded and run once in a separate process before the runtime opens it.

LiteRT checks much of a model but not everything, and on what it misses it crashes natively (a segmentation fault or
an abort), which would end a command with no message at all. Measured with ai-edge-litert 2.3.0: a float32 or int8
depthwise convolution without its optional bias input passes LiteRT's own checks and crashes when invoked; a damaged
file whose subgraph table is missing crashes it while loading. :func:`preflight` therefore loads a model the toolkit
did not export (no ``manifest.json`` beside it lists it with the same sha256) in a child Python process, allocates
its tensors and invokes it once on zeros, under an address-space limit (:data:`ADDRESS_SPACE_LIMIT`) and a timeout
(:data:`TIMEOUT_S`). A crash, a hang or a memory bomb there becomes one line naming the model; a model that fails
there with an ordinary LiteRT error is left to the runtime, which words that error itself. The verdict is kept per
sha256 for the life of the process, so predicting many files checks a model once. Measured cost: about 0.25 s per
model (a Python start, the imports of numpy and LiteRT, one load and invoke).

This module imports only the standard library and :mod:`edge.device.errors`; the child imports numpy and LiteRT
(:func:`child`).
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

from edge.device.errors import UserError

TIMEOUT_S = 60.0  # a model of the sizes the runtime runs loads and invokes in well under a second
ADDRESS_SPACE_LIMIT = 4 << 30  # bytes of address space the child may map (LiteRT and numpy take about 0.2 GiB)
REPORT_PREFIX = "edge-preflight-report: "  # the child's last stdout line: this prefix, then JSON
FIX = (
    "re-convert it from its source model (or export it with 'python cli.py export'), or run it with the runtime "
    "it was made for"
)
_verdicts: dict[str, str | None] = {}  # sha256 -> None (the runtime may open it) or the reason it may not


def preflight(content: bytes, source: str, num_threads: int | None = None) -> None:
    """Load ``content`` and invoke it once on zeros in a child process; refuse it if LiteRT crashes there.

    The runtime calls this before opening a model the toolkit did not export. An empty file is left to the
    runtime (it refuses it without LiteRT). Each model is checked once per process (by sha256).

    Args:
        content: the ``.tflite`` bytes the runtime is about to open.
        source: how to name the model in the error (its path).
        num_threads: the LiteRT CPU threads the runtime will use.

    Raises:
        UserError: LiteRT crashed (a signal, or an exit without a Python error), did not finish within
            :data:`TIMEOUT_S`, or ran out of the :data:`ADDRESS_SPACE_LIMIT` while loading or running the model.
    """
    if not content:
        return
    digest = hashlib.sha256(content).hexdigest()
    if digest not in _verdicts:
        _verdicts[digest] = _verdict(content, num_threads)
    reason = _verdicts[digest]
    if reason is not None:
        raise UserError(f"{source}: {reason}")


def _verdict(content: bytes, num_threads: int | None) -> str | None:
    """Run :func:`child` on ``content``: None when the runtime may open the model, else why it may not."""
    root = str(Path(__file__).resolve().parents[1])  # the folder holding the edge package (the bundle's lib/)
    # The user's working directory ('' on the path of ``python -c``) may hold data files from elsewhere: drop it.
    code = (
        f"import sys; sys.path = [{root!r}] + [p for p in sys.path if p not in ('', '.')]; "
        "from edge.device.preflight import child; child()"
    )
    command = [sys.executable, "-c", code, str(num_threads or 0), str(ADDRESS_SPACE_LIMIT)]
    try:
        completed = subprocess.run(command, input=content, capture_output=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return (
            f"LiteRT did not finish loading it and running it once within {TIMEOUT_S:g} s in a separate process, "
            f"so it is not opened here; {FIX}"
        )
    except OSError:  # no Python executable to start (an embedded interpreter): the runtime opens the model as before
        return None
    report = _report(completed.stdout)
    if report is None:
        how = (
            f"signal {_signal_name(-completed.returncode)}"
            if completed.returncode < 0
            else f"exit status {completed.returncode}"
        )
        return (
            f"LiteRT crashed ({how}) while a separate process loaded it and ran it once, so it is not opened here: "
            f"the file is damaged or uses an operator in a way this LiteRT cannot run; {FIX}"
        )
    if "memory" in report:
        declared = report["memory"]
        tensors = f" (its tensors declare {declared:,} bytes)" if isinstance(declared, int) and declared > 0 else ""
        return (
            f"LiteRT could not load and run it within {ADDRESS_SPACE_LIMIT >> 30} GiB of memory{tensors}, the most "
            f"a model from elsewhere is given; {FIX}"
        )
    return None  # it ran, or failed with an error the runtime words itself


def _report(stdout: bytes) -> dict | None:
    """The child's report (its last line that starts with :data:`REPORT_PREFIX`), or None when it wrote none."""
    for line in reversed(stdout.decode(errors="replace").splitlines()):
        if line.startswith(REPORT_PREFIX):
            try:
                report = json.loads(line[len(REPORT_PREFIX) :])
            except ValueError:
                return None
            return report if isinstance(report, dict) else None
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def child() -> None:
    """The child process's side of :func:`preflight` (run there, never in the runtime's own process).

    Reads the model from stdin and the thread count and address-space limit from ``sys.argv``; limits its own
    address space, then, as the runtime does, builds an interpreter with LiteRT's default CPU delegate, allocates
    its tensors and invokes it once on zeros, and on a Python error tries again on LiteRT's built-in kernels. Prints
    one report line: ``{"ok": true}``, or the error's first line, with ``memory`` (the bytes its tensors declare)
    when the failure was a lack of memory. A native crash prints nothing: the parent sees the signal.
    """
    num_threads, limit = int(sys.argv[1]) or None, int(sys.argv[2])
    _limit_address_space(limit)
    content = sys.stdin.buffer.read()
    report: dict = {"ok": True}
    try:
        from ai_edge_litert.interpreter import OpResolverType

        for resolver in (OpResolverType.AUTO, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES):
            report = _run_once(content, num_threads, resolver, limit)
            if report.get("ok"):
                break
    except BaseException as error:  # any Python error is a report; only a native crash is not
        report = {"error": str(error).strip().split("\n")[0] or type(error).__name__}
        if isinstance(error, MemoryError):
            report["memory"] = 0
    print(REPORT_PREFIX + json.dumps(report), flush=True)


def _run_once(content: bytes, num_threads: int | None, resolver: object, limit: int) -> dict:
    """Build, allocate and invoke once on zeros; a report (see :func:`child`)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = None
    try:
        interpreter = Interpreter(
            model_content=content, num_threads=num_threads, experimental_op_resolver_type=resolver
        )
        interpreter.allocate_tensors()
        for tensor in interpreter.get_input_details():
            interpreter.set_tensor(tensor["index"], np.zeros(tensor["shape"], tensor["dtype"]))
        interpreter.invoke()
    except Exception as error:  # reported to the parent
        report: dict = {"error": str(error).strip().split("\n")[0] or type(error).__name__}
        declared = _declared_bytes(interpreter)
        if isinstance(error, MemoryError) or declared > limit // 2:  # with LiteRT's own, more than fits
            report["memory"] = declared
        return report
    return {"ok": True}


def _declared_bytes(interpreter: object) -> int:
    """The bytes all tensors of an interpreter declare (0 when there is no interpreter or it cannot tell)."""
    if interpreter is None:
        return 0
    import numpy as np

    try:
        return sum(
            int(np.prod(tensor["shape"], dtype=np.float64)) * np.dtype(tensor["dtype"]).itemsize
            for tensor in interpreter.get_tensor_details()
        )
    except Exception:  # a damaged model may not describe its tensors
        return 0


def _limit_address_space(limit: int) -> None:
    """Cap this process's address space at ``limit`` bytes (within the hard limit); a no-op where the ``resource``
    module does not exist (Windows)."""
    try:
        import resource
    except ImportError:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
