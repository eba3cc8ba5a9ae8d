"""``berth-agent`` / ``berth agent``: configuration, signals, and the exit code.

The first thing the agent does is to make itself non-dumpable (``PR_SET_DUMPABLE``
0): from then on no process of the workspace, though it runs as the same user, can
read the agent's memory, ``/proc/<pid>/environ`` or its file descriptors, or attach a
debugger to it. Only then does it ask for its token.

Under berth's supervisor (``BERTH_AGENT_CONTROL_FD`` is set) the token arrives on the
control socket, after the supervisor has checked that this process is protected, and
never passes through an environment or a command line; the workload cgroup
descriptors (``BERTH_AGENT_CGROUP_FDS``) confine every child the agent starts. Run by
hand, ``--url``/``--token`` or ``BERTH_AGENT_URL``/``BERTH_AGENT_TOKEN`` configure it
(flags win); the token is removed from the environment as soon as it is read, so the
commands the agent runs for a chat cannot read it back. Exit codes: 0 after
SIGTERM/SIGINT, 2 when the configuration is incomplete or the server refuses the token.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType

from .connection import Agent
from .processes import confine_children
from .protocol import AUTH_FAILED_EXIT_CODE, HEARTBEAT_SECONDS
from .supervisor_link import CGROUP_FDS_ENV, SupervisorLink

USAGE_EXIT_CODE = 2
_PR_SET_DUMPABLE = 4


def protect() -> bool:
    """Make this process non-dumpable; unblock the signals a supervisor may have blocked.

    Returns False if the kernel refused (the token is then not given to it).
    """
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _cgroup_fds() -> list[int]:
    text = os.environ.pop(CGROUP_FDS_ENV, "")
    return [int(fd) for fd in text.split(",") if fd.strip().isdigit()]


class _Stopped(BaseException):
    """Raised by the signal handler to unwind the main thread."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise _Stopped


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="berth-agent",
        description="The berth workspace agent: dials the server and serves it.",
    )
    parser.add_argument("--url", help="server base URL (default: $BERTH_AGENT_URL)")
    parser.add_argument("--token", help="agent token (default: $BERTH_AGENT_TOKEN)")
    parser.add_argument(
        "--heartbeat-seconds", type=float, default=HEARTBEAT_SECONDS, help=argparse.SUPPRESS
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log debug messages")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the agent until it is stopped; returns the process exit code."""
    if not protect():
        print("berth-agent: could not make the agent non-dumpable", file=sys.stderr)
    args = parse_args(argv)
    confine_children(_cgroup_fds())
    try:
        supervisor = SupervisorLink.from_environment()
    except (OSError, ValueError) as err:
        print(f"berth-agent: no configuration from the supervisor: {err}", file=sys.stderr)
        return 1
    url: str = args.url or os.environ.get("BERTH_AGENT_URL", "")
    given = supervisor.token if supervisor is not None else None
    token: str = args.token or given or os.environ.get("BERTH_AGENT_TOKEN", "")
    os.environ.pop("BERTH_AGENT_TOKEN", None)
    if not url or not token:
        missing = "BERTH_AGENT_URL (or --url)" if not url else "BERTH_AGENT_TOKEN (or --token)"
        print(f"berth-agent: {missing} is not set", file=sys.stderr)
        return USAGE_EXIT_CODE
    try:
        agent = Agent(url, token, heartbeat=args.heartbeat_seconds, supervisor=supervisor)
    except ValueError as err:
        print(f"berth-agent: {err}", file=sys.stderr)
        return USAGE_EXIT_CODE
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s berth-agent %(levelname)s %(message)s",
    )
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
    try:
        code = agent.run()
    except (_Stopped, KeyboardInterrupt):
        return 0
    if code == AUTH_FAILED_EXIT_CODE:
        print("berth-agent: the server refused the agent token; giving up", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
