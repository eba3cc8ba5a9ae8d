"""Time, injected: the real clock for the server, a fake one for tests.

Code that needs "now" takes a :class:`Clock` so tests can move time without sleeping.
All times are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class Clock(Protocol):
    """A source of the current time."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> dt.datetime:
        return utcnow()


class FakeClock:
    """A clock that only moves when a test says so."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        """Move time forward by ``delta`` and return the new now."""
        self._now += delta
        return self._now

    def set(self, when: dt.datetime) -> None:
        """Jump to ``when`` (timezone-aware)."""
        self._now = when
