"""Stopping a local sandbox, found by the identity of its processes (see ``_proc``).

The handle records the keeper's and the sandbox init's pid *and* start time plus the
sandbox's PID namespace, so a later server finds them and never signals a reused pid.
Stop sends SIGTERM to every process in that namespace, waits up to ``stop_timeout``,
then SIGKILLs the namespace's init (the kernel then kills the rest), the keeper's
process group and whatever is left in the workspace's cgroups.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, cast

from berth.errors import BuildFailed
from berth.provisioner.backends import _cgroups
from berth.provisioner.backends import _proc as proc
from berth.provisioner.backends._local_run import SANDBOX_FAILED

__all__ = ["ident", "kill_sandbox", "running"]


def ident(handle: dict[str, Any], prefix: str) -> proc.ProcessId | None:
    """The ``keeper`` or ``init`` process of ``handle``, or None if it has none."""
    pid, start = handle.get(f"{prefix}_pid"), handle.get(f"{prefix}_start")
    return None if pid is None or start is None else proc.ProcessId(int(pid), int(start))


def running(handle: dict[str, Any]) -> bool:
    """Whether the sandbox (its init; the keeper for ``isolation: none``) still runs."""
    who = ident(handle, "init" if handle.get("mode") == "bwrap" else "keeper")
    return who is not None and proc.alive(who)


async def kill_sandbox(handle: dict[str, Any], stop_timeout: float) -> None:
    """Stop every process of the sandbox in ``handle``; gently first, then for good."""
    keeper = ident(handle, "keeper")
    init = ident(handle, "init")
    ns = handle.get("pid_ns")

    def in_sandbox() -> list[int]:
        if init is not None and ns is not None and proc.alive(init):
            return proc.processes_in_pid_ns(int(ns))
        return []

    def gone() -> bool:
        alive = [p for p in (keeper, init) if p is not None and proc.alive(p)]
        return not alive and not (keeper and proc.processes_in_group(keeper))

    cgroups = [Path(str(d)) for d in cast("list[Any]", handle.get("cgroups") or [])]
    if not gone():
        proc.kill_pids(in_sandbox(), signal.SIGTERM)
        if keeper is not None and init is None:  # isolation: none: agents share its group
            proc.signal_group(keeper, signal.SIGTERM)
        if not await proc.wait_until(gone, stop_timeout):
            if init is not None:
                proc.signal_process(init, signal.SIGKILL)
            if keeper is not None:
                proc.signal_group(keeper, signal.SIGKILL)
            if not await proc.wait_until(gone, 10.0):
                raise BuildFailed("could not stop the sandbox's processes", code=SANDBOX_FAILED)
    if cgroups:
        await _clear_cgroups(cgroups)


async def _clear_cgroups(dirs: list[Path]) -> None:
    """Kill what is left in the workspace's cgroups (daemons of ``isolation: none``)."""

    def cleared() -> bool:
        _cgroups.kill_all(dirs)
        return not _cgroups.remove(dirs)

    if not await proc.wait_until(cleared, 10.0, interval=0.05):
        raise BuildFailed("could not stop the workspace's processes", code=SANDBOX_FAILED)
