"""Failed logins are limited per username and per address, on a sliding window."""

from __future__ import annotations

import datetime as dt

import pytest

from berth.clock import FakeClock
from berth.services import login_limits
from berth.services.login_limits import LoginLimiter


def test_a_username_is_held_off_after_its_failures_until_the_window_slides() -> None:
    clock = FakeClock()
    limits = LoginLimiter(clock, per_user=3, per_address=100, window=60)
    for _ in range(3):
        assert limits.retry_after("Alice", "10.0.0.1") == 0
        limits.failed("alice", "10.0.0.1")
    assert limits.retry_after("ALICE", "10.0.0.2") == 60  # any case, any address
    assert limits.retry_after("bob", "10.0.0.1") == 0  # another user is not held off
    clock.advance(dt.timedelta(seconds=59.5))
    assert limits.retry_after("alice", "10.0.0.1") == 1
    clock.advance(dt.timedelta(seconds=1))
    assert limits.retry_after("alice", "10.0.0.1") == 0


def test_an_address_is_held_off_after_failures_for_many_usernames() -> None:
    clock = FakeClock()
    limits = LoginLimiter(clock, per_user=100, per_address=4, window=60)
    for i in range(4):
        limits.failed(f"user{i}", "10.0.0.9")
    assert limits.retry_after("someone-else", "10.0.0.9") == 60
    assert limits.retry_after(None, "10.0.0.9") == 60  # token logins count there too
    assert limits.retry_after("someone-else", "10.0.0.10") == 0


def test_a_success_clears_the_username_but_not_the_address() -> None:
    clock = FakeClock()
    limits = LoginLimiter(clock, per_user=2, per_address=3, window=60)
    limits.failed("alice", "10.0.0.1")
    limits.failed("alice", "10.0.0.1")
    assert limits.retry_after("alice", "10.0.0.2") > 0
    limits.succeeded("alice")
    assert limits.retry_after("alice", "10.0.0.2") == 0
    limits.failed("carol", "10.0.0.1")
    assert limits.retry_after("alice", "10.0.0.1") > 0  # the address still counts 3


def test_the_counts_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(login_limits, "MAX_KEYS", 10)
    limits = LoginLimiter(FakeClock(), per_user=1, per_address=10**9, window=60)
    for i in range(50):
        limits.failed(f"made-up-{i}", f"10.0.0.{i}")
    assert len(limits._failures) <= 10  # pyright: ignore[reportPrivateUsage]
