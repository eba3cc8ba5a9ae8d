"""``berth-agent`` / ``berth agent``: configuration, signals, and the exit code.

The provisioner starts the agent with ``BERTH_AGENT_URL`` and ``BERTH_AGENT_TOKEN`` in
its environment (flags win over the environment, for running one by hand). The token
is removed from the environment as soon as it is read, so the commands the agent runs
for a chat cannot read it back. Exit codes: 0 after SIGTERM/SIGINT, 2 when the
configuration is incomplete or the server refuses the token.
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
from .protocol import AUTH_FAILED_EXIT_CODE, HEARTBEAT_SECONDS

USAGE_EXIT_CODE = 2


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
    args = parse_args(argv)
    url: str = args.url or os.environ.get("BERTH_AGENT_URL", "")
    token: str = args.token or os.environ.get("BERTH_AGENT_TOKEN", "")
    os.environ.pop("BERTH_AGENT_TOKEN", None)
    if not url or not token:
        missing = "BERTH_AGENT_URL (or --url)" if not url else "BERTH_AGENT_TOKEN (or --token)"
        print(f"berth-agent: {missing} is not set", file=sys.stderr)
        return USAGE_EXIT_CODE
    try:
        agent = Agent(url, token, heartbeat=args.heartbeat_seconds)
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
