"""A time budget that every device call respects.

Pacemaker kills an action that overruns its timeout with SIGKILL, so every
request is bounded by its own timeout *and* by what is left of the action's
budget.  The clock is injectable so that code using deadlines is testable.
"""

from __future__ import annotations

__all__ = ["Deadline"]

import time


class Deadline:
    """A point on a monotonic clock; ``Deadline(None)`` never expires."""

    __slots__ = ("_clock", "_end")

    def __init__(self, seconds: float | None, *, clock=time.monotonic) -> None:
        self._clock = clock
        self._end = None if seconds is None else clock() + seconds

    def remaining(self) -> float:
        """Seconds left (never negative); infinity for an unbounded deadline."""
        if self._end is None:
            return float("inf")
        return max(0.0, self._end - self._clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def expire(self) -> None:
        """End the budget now: whoever asks next finds no time left."""
        self._end = self._clock()

    def bound(self, seconds: float) -> float:
        """``seconds``, or less if the budget ends sooner."""
        return min(seconds, self.remaining())

    def __repr__(self) -> str:
        return f"Deadline(remaining={self.remaining():.3f})"
