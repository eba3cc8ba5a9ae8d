"""Finding and signalling host processes by identity, safely across server restarts.

A sandbox outlives the server that started it, so the local backend remembers its
processes as ``(pid, start time)`` pairs: the start time (field 22 of
``/proc/<pid>/stat``, in clock ticks since boot) tells a live process from a later one
that reused its pid. Every signal goes through a pidfd opened *after* checking the
start time, so a pid recycled between the check and the kill cannot be hit either.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ProcStat",
    "ProcessId",
    "alive",
    "kill_pids",
    "pid_ns",
    "processes_in_group",
    "processes_in_pid_ns",
    "read_stat",
    "signal_group",
    "signal_process",
    "wait_until",
]

_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The few fields of ``/proc/<pid>/stat`` berth needs."""

    pid: int
    state: str
    ppid: int
    pgrp: int
    start_time: int


@dataclass(frozen=True, slots=True)
class ProcessId:
    """A process as it was when it started: pid plus start time."""

    pid: int
    start_time: int

    @classmethod
    def of(cls, pid: int) -> ProcessId | None:
        """The identity of the live process ``pid`` now, or None if there is none."""
        stat = read_stat(pid)
        return None if stat is None or _dead(stat) else cls(pid, stat.start_time)


def read_stat(pid: int) -> ProcStat | None:
    """Parse ``/proc/<pid>/stat``; None if the process does not exist."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return ProcStat(
        pid=pid,
        state=fields[0],
        ppid=int(fields[1]),
        pgrp=int(fields[2]),
        start_time=int(fields[19]),
    )


def _dead(stat: ProcStat) -> bool:
    # A zombie has exited; it only waits for a parent (maybe not us) to reap it.
    return stat.state in ("Z", "X", "x")


def alive(proc: ProcessId) -> bool:
    """True if ``proc`` (that very process, not a reuse of its pid) still runs."""
    stat = read_stat(proc.pid)
    return stat is not None and not _dead(stat) and stat.start_time == proc.start_time


def signal_process(proc: ProcessId, sig: signal.Signals) -> bool:
    """Send ``sig`` to ``proc`` if it is still that process; True if it was sent."""
    try:
        fd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        return False
    try:
        if not alive(proc):
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)


def signal_group(leader: ProcessId, sig: signal.Signals) -> bool:
    """Send ``sig`` to the process group ``leader`` started, if it can still be ours.

    A process group id stays allocated while any member lives, so the group is ours
    unless a *different* process now holds the leader's pid (then our group is gone).
    """
    stat = read_stat(leader.pid)
    if stat is not None and stat.start_time != leader.start_time:
        return False
    try:
        os.killpg(leader.pid, sig)
    except ProcessLookupError:
        return False
    return True


def _live_pids() -> list[int]:
    return [int(p.name) for p in _PROC.iterdir() if p.name.isdigit()]


def processes_in_group(leader: ProcessId) -> list[int]:
    """Live (non-zombie) members of the process group ``leader`` started.

    Empty if another process now holds the leader's pid: then that group is gone (see
    :func:`signal_group`) and a group with the same id is someone else's.
    """
    stat = read_stat(leader.pid)
    if stat is not None and stat.start_time != leader.start_time:
        return []
    found: list[int] = []
    for pid in _live_pids():
        stat = read_stat(pid)
        if stat is not None and stat.pgrp == leader.pid and not _dead(stat):
            found.append(pid)
    return found


def pid_ns(pid: int) -> int | None:
    """The inode of ``pid``'s PID namespace, or None if unreadable."""
    try:
        link = os.readlink(_PROC / str(pid) / "ns" / "pid")
    except OSError:
        return None
    return int(link[link.index("[") + 1 : -1])


def processes_in_pid_ns(ns: int) -> list[int]:
    """Live (non-zombie) host pids of the processes in PID namespace ``ns``.

    Only meaningful while the namespace's init is alive (checked by the caller): once
    a namespace is gone its inode number may be given to a new one.
    """
    found: list[int] = []
    for pid in _live_pids():
        if pid_ns(pid) == ns:
            stat = read_stat(pid)
            if stat is not None and not _dead(stat):
                found.append(pid)
    return found


def kill_pids(pids: list[int], sig: signal.Signals) -> None:
    """Signal each pid, ignoring the ones that are already gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


async def wait_until(check: Callable[[], bool], within: float, interval: float = 0.02) -> bool:
    """Poll ``check()`` until it is true or ``within`` seconds pass; return the last result.

    Process exit of a non-child cannot be awaited, so this bounded poll is the one
    place the backend waits on time.
    """
    deadline = time.monotonic() + within
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)
