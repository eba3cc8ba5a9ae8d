"""Time, injected: the real clock for the server, a fake one for tests.

Code that needs "now" takes a :class:`Clock` so tests can move time without sleeping.
All times are timezone-aware UTC. ``monotonic`` is the time that really passed, which
the wall clock is not when it is set (an NTP step, an admin's ``date -s``): autostop
compares the two so a jump of the wall clock stops no workspace.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class Clock(Protocol):
    """A source of the current time."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds that really passed since some fixed point (never set back or forward)."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> dt.datetime:
        return utcnow()

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that only moves when a test says so."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self._elapsed = 0.0

    def now(self) -> dt.datetime:
        return self._now

    def monotonic(self) -> float:
        return self._elapsed

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        """Let ``delta`` pass (both clocks move) and return the new now."""
        self._now += delta
        self._elapsed += max(delta.total_seconds(), 0.0)
        return self._now

    def set(self, when: dt.datetime) -> None:
        """Set the wall clock to ``when`` (timezone-aware): a jump, no time passes."""
        self._now = when
