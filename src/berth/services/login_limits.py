"""Rate limits on failed logins, per username and per client address.

Passwords are guessable, so each guess must be scarce: after :attr:`LoginLimiter.per_user`
failures for one username within :attr:`~LoginLimiter.window` seconds, further attempts
for that username are refused without checking the password; after
:attr:`~LoginLimiter.per_address` failures from one address, its attempts are. Both
limits count failures only and slide (an old failure stops counting once it is a window
old). A successful login clears its username's count, not its address's (one right
password must not reset a spray of guesses at other names).

The counts live in this process (a server replica), which is enough to turn an online
guessing attack from thousands of guesses a second into a handful a minute: replicas
multiply the limit by their number, and a restart forgets it. The per-username limit
lets an attacker lock a user out of password login for a window; that user can still
log in with an API token.
"""

from __future__ import annotations

import collections
import math
import threading
from dataclasses import dataclass, field

from berth.clock import Clock

MAX_KEYS = 100_000
"""Counts kept at most; beyond it the oldest key is dropped (a flood of made-up
usernames cannot grow the server's memory without bound)."""


@dataclass
class LoginLimiter:
    """Failed-login counts per username and per address, on a monotonic clock."""

    clock: Clock
    per_user: int = 5
    per_address: int = 30
    window: float = 300.0
    _failures: collections.OrderedDict[str, collections.deque[float]] = field(
        default_factory=lambda: collections.OrderedDict()
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def retry_after(self, username: str | None, address: str) -> int:
        """Seconds until another attempt is allowed; 0 when it is allowed now."""
        keys = [(_address_key(address), self.per_address)]
        if username:
            keys.append((_user_key(username), self.per_user))
        now = self.clock.monotonic()
        wait = 0.0
        with self._lock:
            for key, limit in keys:
                times = self._recent(key, now)
                if len(times) >= limit:
                    wait = max(wait, times[len(times) - limit] + self.window - now)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, username: str | None, address: str) -> None:
        """Count a failed attempt for the address and, when given, the username."""
        now = self.clock.monotonic()
        keys = [_address_key(address)] + ([_user_key(username)] if username else [])
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                times.append(now)
                self._failures[key] = times
                self._failures.move_to_end(key)
            while len(self._failures) > MAX_KEYS:
                self._failures.popitem(last=False)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(_user_key(username), None)

    def _recent(self, key: str, now: float) -> collections.deque[float]:
        times = self._failures.get(key)
        if times is None:
            times = collections.deque[float](maxlen=max(self.per_user, self.per_address))
        while times and times[0] <= now - self.window:
            times.popleft()
        return times


def _user_key(username: str) -> str:
    return "user:" + username.strip().lower()


def _address_key(address: str) -> str:
    return "addr:" + address
