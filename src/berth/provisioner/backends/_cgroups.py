"""Resource limits of local workspaces: cgroups, v2 or v1 (one hierarchy per controller).

Each workspace gets, in every hierarchy that holds a controller berth uses (``memory``,
``pids``, ``cpu``)::

    <hierarchy>/<base>/<workspace_id>/     cpu: the whole workspace's CPU quota
        agent/                             the keeper, bwrap, the supervisor, the agents
        workload/                          what the agents start: memory and pids limits

The agents live beside their workload, not in it, so a memory hog is killed by the
workload's own OOM killer while the agent (in ``agent/``, no memory limit) answers on,
and a fork storm that fills ``workload/``'s ``pids.max`` cannot stop the agent from
making threads. The keeper moves itself into ``agent/`` before it starts bwrap, so
everything of the sandbox starts there; the agents move each child into ``workload/``
before it executes (see ``berth.agent.processes``), through ``cgroup.procs`` file
descriptors that the server opens here and the sandbox inherits. The kernel checks the
right to move a process with the credentials of whoever *opened* the file, so the
workspace user needs no write access to the cgroup file system, and the descriptors
only ever lead into ``workload/``: a process that got hold of one could only confine
itself (or the agent) further.

``base`` is ``berth`` at the top of each hierarchy when the server runs as root. An
unprivileged server on cgroup v2 uses ``berth-workspaces`` beside its own cgroup when
systemd delegated that subtree to it (the usual case for a user session); otherwise,
or on v1 without root, no limit is enforceable here and :func:`unenforceable` says so.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CONTROLLERS",
    "CgroupHost",
    "Hierarchy",
    "LimitsAsked",
    "WorkspaceCgroups",
    "detect",
    "kill_all",
    "remove",
    "setup",
    "unenforceable",
]

CONTROLLERS = ("memory", "pids", "cpu")
_CPU_PERIOD_US = 100_000
_ROOT_BASE = "berth"
_USER_BASE = "berth-workspaces"


@dataclass(frozen=True, slots=True)
class Hierarchy:
    """One mounted cgroup hierarchy and the controllers berth may use in it."""

    mount: Path
    version: int
    controllers: frozenset[str]
    base: Path | None
    """Where workspace cgroups go (``None``: nowhere this process may write)."""


@dataclass(frozen=True, slots=True)
class CgroupHost:
    """What this host offers: the hierarchies, by controller."""

    hierarchies: tuple[Hierarchy, ...]

    def for_controller(self, name: str) -> Hierarchy | None:
        for hierarchy in self.hierarchies:
            if name in hierarchy.controllers:
                return hierarchy
        return None

    def describe(self) -> str:
        if not self.hierarchies:
            return "no cgroup file system is mounted"
        parts = [
            f"v{h.version} {','.join(sorted(h.controllers)) or '-'} at {h.mount}"
            for h in self.hierarchies
        ]
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class LimitsAsked:
    """The cgroup limits of one workspace (``None``: no limit)."""

    memory: int | None
    pids: int | None
    cpus: float | None

    def controllers(self) -> list[str]:
        wanted = {"memory": self.memory, "pids": self.pids, "cpu": self.cpus}
        return [name for name in CONTROLLERS if wanted[name]]


@dataclass(frozen=True, slots=True)
class WorkspaceCgroups:
    """The cgroups made for one workspace (paths on the host)."""

    dirs: tuple[Path, ...]
    """``<base>/<workspace_id>``, one per hierarchy used."""

    @property
    def agent_procs(self) -> list[str]:
        return [str(d / "agent" / "cgroup.procs") for d in self.dirs]

    @property
    def workload_procs(self) -> list[str]:
        return [str(d / "workload" / "cgroup.procs") for d in self.dirs]

    def open_workload(self) -> list[int]:
        """``workload/cgroup.procs`` of each hierarchy, opened for writing (inheritable)."""
        fds: list[int] = []
        try:
            for path in self.workload_procs:
                fd = os.open(path, os.O_WRONLY)
                os.set_inheritable(fd, True)
                fds.append(fd)
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        return fds


# --- finding the hierarchies ------------------------------------------------------


def _unescape(field: str) -> str:
    """Mount points in mountinfo escape space, tab, newline and backslash as octal."""
    out: list[str] = []
    i = 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mounts(mountinfo: str) -> list[tuple[Path, int, frozenset[str]]]:
    found: list[tuple[Path, int, frozenset[str]]] = []
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        if not sep:
            continue
        fields, rest = head.split(), tail.split()
        if len(fields) < 5 or len(rest) < 3:
            continue
        mount = Path(_unescape(fields[4]))
        if rest[0] == "cgroup":
            options = set(rest[2].split(","))
            found.append((mount, 1, frozenset(options & set(CONTROLLERS))))
        elif rest[0] == "cgroup2":
            try:
                names = (mount / "cgroup.controllers").read_text().split()
            except OSError:
                names = []
            found.append((mount, 2, frozenset(set(names) & set(CONTROLLERS))))
    return found


def _own_cgroup_v2(proc_cgroup: str) -> str | None:
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


def _base(mount: Path, version: int, *, root: bool, proc_cgroup: str) -> Path | None:
    if root:
        return mount / _ROOT_BASE
    if version == 1:  # only an administrator can delegate a v1 hierarchy: use it if so
        base = mount / _ROOT_BASE
        return base if os.access(base, os.W_OK) else None
    own = _own_cgroup_v2(proc_cgroup)
    if not own or own == "/":
        return None
    parent = mount / own.strip("/") / ".."
    parent = parent.resolve()
    base = parent / _USER_BASE
    if base.is_dir():
        return base if os.access(base / "cgroup.procs", os.W_OK) else None
    writable = os.access(parent, os.W_OK) and os.access(parent / "cgroup.procs", os.W_OK)
    return base if writable else None


def detect(
    mountinfo: str | None = None, proc_cgroup: str | None = None, *, root: bool | None = None
) -> CgroupHost:
    """The cgroup hierarchies of this host as this process sees them."""
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    if proc_cgroup is None:
        try:
            proc_cgroup = Path("/proc/self/cgroup").read_text()
        except OSError:
            proc_cgroup = ""
    is_root = os.geteuid() == 0 if root is None else root
    hierarchies: list[Hierarchy] = []
    claimed: set[str] = set()
    mounts = _mounts(mountinfo)
    # A controller bound to a v1 hierarchy is not available in v2 (hybrid hosts).
    for mount, version, controllers in sorted(mounts, key=lambda m: m[1]):
        usable = frozenset(controllers - claimed)
        if not usable:
            continue
        claimed |= usable
        base = _base(mount, version, root=is_root, proc_cgroup=proc_cgroup)
        hierarchies.append(Hierarchy(mount, version, usable, base))
    return CgroupHost(tuple(hierarchies))


def unenforceable(host: CgroupHost, limits: LimitsAsked) -> list[str]:
    """Each asked-for limit this host cannot enforce, and why, in a template author's words."""
    field = {"memory": "memory", "pids": "pids", "cpu": "cpus"}
    problems: list[str] = []
    for name in limits.controllers():
        hierarchy = host.for_controller(name)
        if hierarchy is None:
            problems.append(
                f"{field[name]}: the host has no {name} cgroup controller ({host.describe()})"
            )
        elif hierarchy.base is None:
            problems.append(
                f"{field[name]}: this server may not create cgroups in {hierarchy.mount} "
                "(run it as root, or from a systemd unit with Delegate=yes)"
            )
    return problems


# --- making and removing a workspace's cgroups -----------------------------------------


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _enable(directory: Path, controllers: list[str]) -> None:
    """v2: let ``directory``'s children use ``controllers`` (each one that is not yet on)."""
    enabled: set[str] = set()
    with contextlib.suppress(OSError):
        enabled = set((directory / "cgroup.subtree_control").read_text().split())
    for name in controllers:
        if name not in enabled:
            _write(directory / "cgroup.subtree_control", f"+{name}")


def setup(host: CgroupHost, workspace_id: str, limits: LimitsAsked) -> WorkspaceCgroups:
    """Create (or reuse) the workspace's cgroups and write its limits; raise OSError."""
    used: list[Path] = []
    for hierarchy in host.hierarchies:
        if hierarchy.base is None:
            continue
        names = sorted(hierarchy.controllers)
        ws = hierarchy.base / workspace_id
        if hierarchy.version == 2:
            _enable(hierarchy.base.parent, names)
            hierarchy.base.mkdir(exist_ok=True)
            _enable(hierarchy.base, names)
            ws.mkdir(exist_ok=True)
            _enable(ws, names)
        else:
            ws.mkdir(parents=True, exist_ok=True)
        for child in ("agent", "workload"):
            (ws / child).mkdir(exist_ok=True)
        _limit(hierarchy, ws, limits)
        used.append(ws)
    return WorkspaceCgroups(tuple(used))


def _limit(hierarchy: Hierarchy, ws: Path, limits: LimitsAsked) -> None:
    workload = ws / "workload"
    v2 = hierarchy.version == 2
    if "memory" in hierarchy.controllers:
        memory = str(limits.memory) if limits.memory else ("max" if v2 else "-1")
        if v2:
            _write(workload / "memory.max", memory)
            if (workload / "memory.swap.max").exists():
                _write(workload / "memory.swap.max", "0" if limits.memory else "max")
        else:
            memsw = workload / "memory.memsw.limit_in_bytes"
            if memsw.exists() and not limits.memory:  # raise memsw first, then the limit
                _write(memsw, "-1")
            _write(workload / "memory.limit_in_bytes", memory)
            if memsw.exists() and limits.memory:
                _write(memsw, memory)
    if "pids" in hierarchy.controllers:
        _write(workload / "pids.max", str(limits.pids) if limits.pids else "max")
    if "cpu" in hierarchy.controllers:
        quota = int(limits.cpus * _CPU_PERIOD_US) if limits.cpus else None
        if v2:
            _write(ws / "cpu.max", f"{quota or 'max'} {_CPU_PERIOD_US}")
        else:
            _write(ws / "cpu.cfs_period_us", str(_CPU_PERIOD_US))
            _write(ws / "cpu.cfs_quota_us", str(quota or -1))


def _tree(ws: Path) -> list[Path]:
    """``ws`` and every cgroup under it, deepest first."""
    found: list[Path] = []
    with contextlib.suppress(OSError):
        for entry in ws.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                found += _tree(entry)
    return [*found, ws]


def members(ws: Path) -> list[int]:
    """Host pids of every process in ``ws`` and below."""
    pids: list[int] = []
    for group in _tree(ws):
        with contextlib.suppress(OSError, ValueError):
            pids += [int(p) for p in (group / "cgroup.procs").read_text().split()]
    return pids


def kill_all(dirs: list[Path]) -> None:
    """SIGKILL every process in the workspace's cgroups (``cgroup.kill`` where there is one)."""
    for ws in dirs:
        if not ws.is_dir():
            continue
        kill = ws / "cgroup.kill"
        if kill.exists():
            with contextlib.suppress(OSError):
                _write(kill, "1")
                continue
        for pid in members(ws):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def remove(dirs: list[Path]) -> list[Path]:
    """Remove the workspace's cgroups; return those still busy (processes not yet gone)."""
    busy: list[Path] = []
    for ws in dirs:
        for group in _tree(ws):
            try:
                group.rmdir()
            except FileNotFoundError:
                pass
            except OSError as err:
                if err.errno in (errno.EBUSY, errno.ENOTEMPTY):
                    busy.append(group)
    return busy
