"""Progress of a long step (listing, decoding, caching): counts, rate and time left, a line at a time.

Lines go to the same ``report`` callable as the rest of a command's output, so they show in a terminal and in a
log alike. A step that ends within :data:`QUIET_SECONDS` prints nothing; a longer one prints a line every
:data:`EVERY_SECONDS` and a last line with its total time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

QUIET_SECONDS = 2.0
EVERY_SECONDS = 10.0


class Progress:
    """Counts, rate and time left of one step.

    Args:
        report: called with each line; None for silence.
        verb: what the step does, e.g. ``"decoding"``.
        noun: what it counts, e.g. ``"images"``.
        total: how many there are.
        clock: the time source (seconds); tests pass a fake one.
    """

    def __init__(
        self,
        report: Callable[[str], None] | None,
        verb: str,
        noun: str,
        total: int,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.report, self.verb, self.noun, self.total, self.clock = report, verb, noun, total, clock
        self.done = 0
        self.started = clock()
        self.last: float | None = None  # when the last line was said

    def advance(self, count: int) -> None:
        """Count ``count`` more; say where the step stands once it has run :data:`QUIET_SECONDS`, then every
        :data:`EVERY_SECONDS`."""
        self.done += count
        now = self.clock()
        if self.report is None or now - self.started < QUIET_SECONDS:
            return
        if self.last is not None and now - self.last < EVERY_SECONDS:
            return
        self.last = now
        rate = self.done / max(now - self.started, 1e-9)
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        self.report(f"{self.verb} {self.noun}: {self.done:,}/{self.total:,} ({rate:,.0f}/s, {_duration(left)} left)")

    def finish(self, what: str = "") -> None:
        """Say the step's total time when it was long enough to report on (``what``: e.g. where it went)."""
        seconds = self.clock() - self.started
        if self.report is not None and seconds >= QUIET_SECONDS:
            rate = self.done / max(seconds, 1e-9)
            self.report(
                f"{self.verb} {self.noun}: {self.done:,} in {_duration(seconds)} ({rate:,.0f}/s)"
                + (f"; {what}" if what else "")
            )


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s`` or ``2 h 10 min``."""
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
