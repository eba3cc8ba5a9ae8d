"""The one way tests wait for a condition that no event announces.

Most waits in these tests wake on an event (a bus subscription, an SSE stream, a
task). What is left — a file another process writes, a process that exits, a row a
heartbeat updates, an HTTP resource that disappears — is re-checked here, every
``every`` seconds, and the test fails with ``what`` once ``within`` seconds pass.
:func:`until` is for async tests, :func:`until_sync` for tests that drive a server
from a thread or another process.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

import anyio

T = TypeVar("T")

WITHIN = 30.0
"""The default bound: far above what any of these conditions normally takes."""


def _accepted(value: object) -> bool:
    return bool(value)


async def until(
    probe: Callable[[], T | Awaitable[T]],
    accept: Callable[[T], bool] = _accepted,
    *,
    within: float = WITHIN,
    every: float = 0.01,
    what: str = "",
) -> T:
    """Re-run ``probe`` (sync or async) until ``accept`` holds for its result; return it."""
    last: object = None
    try:
        with anyio.fail_after(within):
            while True:
                value = probe()
                if inspect.isawaitable(value):
                    value = await cast("Awaitable[T]", value)
                last = value
                if accept(cast("T", value)):
                    return cast("T", value)
                await anyio.sleep(every)
    except TimeoutError:
        raise AssertionError(_message(what or _name(probe), within, last)) from None


def until_sync(
    probe: Callable[[], T],
    accept: Callable[[T], bool] = _accepted,
    *,
    within: float = WITHIN,
    every: float = 0.02,
    what: str = "",
) -> T:
    """:func:`until` for synchronous code (a thread driving a server over HTTP)."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if accept(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(_message(what or _name(probe), within, value))
        time.sleep(every)


def _name(probe: Callable[..., object]) -> str:
    return getattr(probe, "__qualname__", repr(probe))


def _message(what: str, within: float, last: object) -> str:
    return f"timed out after {within:g}s waiting for {what}; last seen: {last!r}"
