"""The supervisor's mode inside a bwrap sandbox (as its PID 1) or a Docker container.

Its config comes on the pipe named by ``BERTH_SANDBOX_CONFIG_FD`` (or, for Docker, in
``BERTH_SANDBOX_CONFIG``, removed before any agent starts). It makes itself
non-dumpable (nothing in the sandbox can read its memory or its ``/proc`` files),
closes what it inherited but the workload cgroup descriptors, starts the sandbox half
of :mod:`.relay` when there is one, and runs :func:`~.supervision.supervise`.
"""

from __future__ import annotations

import json
import os
from typing import Any, cast

from . import CONFIG_ENV, CONFIG_FD_ENV
from .process import close_fds_except, no_dump, read_fd
from .relay import sandbox_relay
from .supervision import block_stop_signals, supervise

__all__ = ["inner"]


def _inner_config() -> dict[str, Any]:
    fd_text = os.environ.pop(CONFIG_FD_ENV, "")
    if fd_text:
        fd = int(fd_text)
        data = read_fd(fd)
        os.close(fd)
        return cast("dict[str, Any]", json.loads(data))
    return cast("dict[str, Any]", json.loads(os.environ.pop(CONFIG_ENV)))


def inner(config: dict[str, Any] | None = None) -> int:
    """Run inside the sandbox or container: the relay (if any) and the agents."""
    no_dump()
    pid1 = os.getpid() == 1
    if pid1:
        block_stop_signals()  # before any thread starts, so that every thread has it blocked
    if config is None:
        config = _inner_config()
    cgroup_fds = [int(fd) for fd in cast("list[Any]", config.get("cgroup_fds") or [])]
    # Nothing the sandbox inherited (bwrap's fds) goes further, but the cgroup doors.
    close_fds_except(set(cgroup_fds))
    if config.get("relay"):
        sandbox_relay(cast("dict[str, Any]", config["relay"]))
    agents = cast("list[dict[str, Any]]", config["agents"])
    return supervise(agents, cgroup_fds, from_outside_only=pid1)
