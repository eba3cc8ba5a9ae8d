"""This process and the others, as ``/proc`` and ``prctl`` show and change them."""

from __future__ import annotations

import contextlib
import os
import signal
import sys

__all__ = [
    "become_subreaper",
    "close_fds_except",
    "die_with_parent",
    "no_dump",
    "prctl",
    "read_fd",
    "say",
    "start_time",
    "stat_fields",
    "state",
]

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36


def say(message: str) -> None:
    """One line for the workspace's log (stderr goes there)."""
    sys.stderr.write(f"berth-supervisor: {message}\n")
    sys.stderr.flush()


def stat_fields(pid: int) -> list[str]:
    """``/proc/<pid>/stat`` after the command name (``state`` is field 0); raises OSError."""
    with open(f"/proc/{pid}/stat") as f:
        raw = f.read()
    return raw[raw.rindex(")") + 2 :].split()


def start_time(pid: int) -> int:
    return int(stat_fields(pid)[19])


def state(pid: int) -> str:
    """The process state letter (``T``: stopped), or ``?`` if it cannot be read."""
    try:
        return stat_fields(pid)[0]
    except (OSError, IndexError, ValueError):
        return "?"


def prctl(option: int, value: int) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def no_dump() -> None:
    """Make this process non-dumpable: its memory and /proc files are root's alone."""
    if not prctl(_PR_SET_DUMPABLE, 0):
        say("could not make the supervisor non-dumpable")


def die_with_parent() -> None:
    """Be SIGKILLed when the process that started this one dies (the server, mid-build)."""
    prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


def become_subreaper() -> None:
    """Orphans of this process's descendants come to it, not to the host's PID 1."""
    prctl(_PR_SET_CHILD_SUBREAPER, 1)


def read_fd(fd: int) -> bytes:
    """Everything ``fd`` yields until EOF."""
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return data
        data += chunk


def close_fds_except(keep: set[int]) -> None:
    """Close every inherited descriptor above stderr that is not in ``keep``."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)
