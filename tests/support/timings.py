"""The time bounds and intervals of the chat-tool tests.

Every wait is bounded (:data:`WAIT`); the tools run with :data:`FAST` (every interval
50 ms) unless a test asks for other :func:`timings`, and the world's provisioner with
:data:`WORKER_TIMING` and :data:`REAP_TIMING`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from berth.provisioner.worker import WorkerTiming
from berth.services.runtime import ReapTiming
from berth.tools.context import ToolTimings

WAIT = 20.0
"""Seconds: the bound of every wait in these tests (they finish in milliseconds)."""

MS = dt.timedelta(milliseconds=1)

LONG = dt.timedelta(seconds=60)
"""Longer than any test may take: a wait that returns did not get there by re-checking."""

FAST = ToolTimings(
    build_timeout=dt.timedelta(seconds=30),
    build_poll_interval=50 * MS,
    agent_connect_timeout=dt.timedelta(seconds=30),
    agent_retry_interval=50 * MS,
    agent_attempt_timeout=dt.timedelta(seconds=2),
    startup_script_timeout=dt.timedelta(seconds=30),
    startup_script_poll_interval=50 * MS,
    chat_lock_lease=dt.timedelta(seconds=30),
    chat_lock_retry=50 * MS,
)
"""Every interval 50 ms; the timeouts long, so only tests that want a timeout get one."""

WORKER_TIMING = WorkerTiming(
    acquire_wait=0.05,
    heartbeat_wait=5.0,  # cancellation is noticed through the job's events anyway
)
REAP_TIMING = ReapTiming(
    stale_after=dt.timedelta(days=365),  # the fake clock moves in some tests: never reap
    interval=3600.0,
)


def timings(**changes: dt.timedelta) -> ToolTimings:
    return dataclasses.replace(FAST, **changes)
