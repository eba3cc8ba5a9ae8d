"""What a local workspace is limited to, decided before anything of it starts.

``cpus``, ``memory`` and ``pids`` become cgroup limits (``_cgroups``), ``tmp_size``
the size of the ``/tmp`` and ``/dev/shm`` tmpfs, ``disk`` a home of bounded size
(``_local_disk``). A limit the template sets that this host cannot enforce fails the
build (``LIMITS_UNAVAILABLE``), naming it, unless the template says ``limits:
best-effort``; a default it cannot enforce (``pids``, ``tmp_size``) only warns.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from berth.domain.template import BackendDoc
from berth.errors import BuildFailed
from berth.provisioner.backends import _cgroups
from berth.provisioner.backends._bwrap import bwrap_supports
from berth.provisioner.backends._local_disk import (
    DiskError,
    disk_tools_missing,
    mount_disk_home,
    unmount_disk_home,
)
from berth.provisioner.backends._local_files import Paths
from berth.provisioner.spec import BuildSpec, LogSink

__all__ = ["LIMITS_UNAVAILABLE", "Limits", "decide", "make_cgroups", "mount_home", "unenforced"]

LIMITS_UNAVAILABLE = "LIMITS_UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class Limits:
    """What this host will enforce for one build, decided before anything starts."""

    cgroups: _cgroups.LimitsAsked | None
    tmp_size: int | None
    disk: int | None


async def decide(backend: BackendDoc, bwrap: str | None, log: LogSink) -> Limits:
    """Decide what to enforce; fail the build on a set limit this host cannot hold."""
    problems: list[str] = []
    warnings: list[str] = []
    asked = _cgroups.LimitsAsked(
        memory=backend.memory_bytes, pids=backend.pids_limit, cpus=backend.cpus
    )
    host = await asyncio.to_thread(_cgroups.detect)
    for problem in _cgroups.unenforceable(host, asked):
        explicit = not problem.startswith("pids:") or backend.pids is not None
        (problems if explicit else warnings).append(problem)
    tmp_size: int | None = backend.tmp_size_bytes
    if bwrap is None:
        if backend.tmp_size is not None:
            problems.append("tmp_size: with isolation: none there is no private /tmp")
        tmp_size = None
    elif not bwrap_supports(bwrap, "--size"):
        problem = f"tmp_size: {bwrap} is too old to size a tmpfs (bubblewrap >= 0.5 can)"
        (problems if backend.tmp_size is not None else warnings).append(problem)
        tmp_size = None
    disk = backend.disk_bytes
    if disk is not None:
        missing = disk_tools_missing()
        if os.geteuid() != 0:
            problems.append("disk: a home of bounded size needs the server to run as root")
            disk = None
        elif missing:
            problems.append(f"disk: the host lacks {', '.join(missing)} (e2fsprogs)")
            disk = None
    await unenforced(problems, warnings, backend.best_effort, log)
    usable = asked if any(h.base is not None for h in host.hierarchies) else None
    return Limits(cgroups=usable, tmp_size=tmp_size, disk=disk)


async def unenforced(
    problems: list[str], warnings: list[str], best_effort: bool, log: LogSink
) -> None:
    """Fail the build on ``problems`` (unless best effort); log them and ``warnings``."""
    if problems and not best_effort:
        raise BuildFailed(
            "this host cannot enforce the template's limits: "
            + "; ".join(problems)
            + ". Remove them, or set `limits: best-effort` in the template's backend "
            "to run without them.",
            code=LIMITS_UNAVAILABLE,
        )
    for text in [*problems, *warnings]:
        await log(f"not enforced: {text}", level="warn")


async def mount_home(
    paths: Paths, size: int, owner: tuple[int, int], best_effort: bool, log: LogSink
) -> None:
    """Give the home its file system of ``size`` bytes (see ``_local_disk``)."""
    try:
        notes, problem = await asyncio.to_thread(mount_disk_home, paths, size, owner)
    except DiskError as err:
        await unenforced([str(err)], [], best_effort, log)
        return
    for note in notes:
        await log(note)
    if problem is not None:
        if not best_effort:
            await asyncio.to_thread(unmount_disk_home, paths.home)
        await unenforced([problem], [], best_effort, log)


async def make_cgroups(
    spec: BuildSpec, limits: Limits, best_effort: bool, log: LogSink
) -> _cgroups.WorkspaceCgroups | None:
    """The workspace's cgroups with ``limits`` written, or None where there are none."""
    if limits.cgroups is None:
        return None
    host = await asyncio.to_thread(_cgroups.detect)
    try:
        return await asyncio.to_thread(_cgroups.setup, host, str(spec.workspace_id), limits.cgroups)
    except OSError as err:
        asked = spec.template.backend
        explicit = asked.memory or asked.cpus or asked.pids is not None
        problem = f"cgroups: {err}"
        await unenforced([problem] if explicit else [], [problem], best_effort, log)
        return None
