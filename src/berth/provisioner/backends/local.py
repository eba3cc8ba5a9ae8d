"""The local backend: one bubblewrap sandbox per workspace on the provisioner's host.

Layout under the state dir (the server's data dir unless ``state_dir`` is given)::

    homes/<workspace_id>/            the persistent home, bound at /home/<owner>
    homes/<workspace_id>.img         its file system, when the template sets ``disk``
    supervisor/                      the supervisor's zipapps (``_supervisor_zip``)
    sandboxes/<workspace_id>/        never visible inside the sandbox
        sandbox.json                 the running sandbox's handle (found after a restart)
        sandbox.log                  output of bwrap, the supervisor and the agents
        relay/relay.sock             how the agents reach the server (see below)

What runs where. ``start`` runs ``prepare`` in a one-shot sandbox with the same
mounts, limits and network (it dies with the server: it belongs to the build), then
starts a *keeper* (see ``_supervisor``): a small detached host process, in its own
session, that runs one long-lived ``bwrap`` per workspace. Inside, a supervisor (the
sandbox's PID 1) starts one agent process per non-external agent, hands each its token
on a socket once the agent cannot be read, and restarts an agent that crashed or
stopped answering. The sandbox does not die with the server (no ``--die-with-parent``):
agents reconnect to the next server.

The handle of the sandbox records its processes by identity, so a later server finds
them and never signals a reused pid; stop is ``_local_stop``'s. The home is kept;
delete removes it too.

Network. Every sandbox has its own network namespace. ``network: false`` leaves it
only ``lo``; ``network: true`` adds user-mode networking (slirp4netns) behind a packet
filter that rejects the host's own addresses, its loopback and link-local ranges (see
``_supervisor.network`` and ``.firewall``). Either way the agents reach the server
through a relay: the supervisor inside listens on 127.0.0.1 and forwards to a Unix
socket that the keeper serves on the host and forwards to the server (the server's
host name is mapped to 127.0.0.1 inside, so TLS still verifies).

Limits (``_local_limits``). ``cpus``, ``memory`` and ``pids`` are cgroup limits
(``_cgroups``: v2, or v1 per controller), ``tmp_size`` sizes the ``/tmp`` and
``/dev/shm`` tmpfs, and ``disk`` gives the home an ext4 file system of that size,
loop-mounted (``_local_disk``; the server must run as root). A limit the template sets
that this host cannot enforce fails the build (``LIMITS_UNAVAILABLE``), naming it,
unless the template says ``limits: best-effort``; a default it cannot enforce
(``pids``) only warns. The home's handle reports its disk use (``disk_used_bytes``,
``disk_limit_bytes``); :meth:`LocalBackend.home_usage` and ``inspect`` measure it anew.

``isolation: none`` runs the agents as plain host processes with HOME set to the
workspace home (no sandbox at all; the log says so); cgroup limits still apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from berth.domain.enums import Isolation, Transition
from berth.errors import BuildFailed
from berth.provisioner.backends._bwrap import (
    SandboxPlan,
    find_bwrap,
    find_network_tools,
    plan_relay,
    sandbox_user,
)
from berth.provisioner.backends._local_disk import home_usage, unmount_disk_home
from berth.provisioner.backends._local_files import (
    Paths,
    is_uuid,
    load_json,
    read_state,
    remove_tree,
    write_state,
)
from berth.provisioner.backends._local_limits import (
    LIMITS_UNAVAILABLE,
    decide,
    make_cgroups,
    mount_home,
)
from berth.provisioner.backends._local_run import (
    PREPARE_FAILED,
    SANDBOX_FAILED,
    Extras,
    launch,
    run_prepare,
)
from berth.provisioner.backends._local_stop import kill_sandbox, running
from berth.provisioner.places import host_place
from berth.provisioner.spec import BuildSpec, LogSink, Place, ResourceRecord, ResourceState

__all__ = [
    "BWRAP_MISSING",
    "LIMITS_UNAVAILABLE",
    "NETWORK_UNAVAILABLE",
    "PREPARE_FAILED",
    "SANDBOX_FAILED",
    "LocalBackend",
    "remove_tree",
]

BWRAP_MISSING = "BWRAP_MISSING"
NETWORK_UNAVAILABLE = "NETWORK_UNAVAILABLE"
_LOG_ROTATE_BYTES = 8 << 20


class LocalBackend:
    """Bubblewrap sandboxes on this host (or plain processes with ``isolation: none``)."""

    name = "local"

    def __init__(
        self,
        bwrap_path: str | None = None,
        state_dir: Path | None = None,
        *,
        run_as: tuple[int, int] = (1000, 1000),
        stop_timeout: float = 5.0,
        start_timeout: float = 30.0,
    ) -> None:
        """``run_as``: the host uid/gid sandboxes run as when the server runs as root."""
        self._bwrap_path = bwrap_path
        self._state_dir = state_dir
        self._run_as = run_as if os.geteuid() == 0 else None
        self._stop_timeout = stop_timeout
        self._start_timeout = start_timeout
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._places: dict[Path, Place] = {}

    # --- the protocol ----------------------------------------------------------

    async def apply(
        self, spec: BuildSpec, transition: Transition, log: LogSink
    ) -> list[ResourceRecord]:
        paths = Paths(self._state_dir or spec.state_dir, spec.workspace_id)
        async with self._locks.setdefault(spec.workspace_id, asyncio.Lock()):
            current = read_state(paths)
            if transition is Transition.START:
                return await self._start(spec, paths, current, log)
            if current is not None:
                await log(f"stopping the sandbox of build {current.get('build_number', '?')}")
                await self._kill(current)
                paths.state.unlink(missing_ok=True)
            if transition is Transition.STOP:
                if not paths.home.exists():
                    return []
                # Measured while its own file system is still mounted, if it has one.
                disk = spec.template.backend.disk_bytes
                home = await asyncio.to_thread(_home_record, paths, disk)
                await asyncio.to_thread(unmount_disk_home, paths.home)
                return [home]
            await asyncio.to_thread(unmount_disk_home, paths.home)
            await asyncio.to_thread(_remove_home, paths.home)
            await asyncio.to_thread(remove_tree, paths.run)
            await log("removed the workspace home")
            return []

    async def inspect(self, handle: dict[str, Any]) -> ResourceState:
        if handle.get("kind") == "home":
            path = Path(str(handle["path"]))
            found = await asyncio.to_thread(path.is_dir)
            detail = str(path)
            if found:
                used = await asyncio.to_thread(home_usage, path)
                limit = handle.get("disk_limit_bytes")
                detail += f": {used} bytes used" + (f" of {limit}" if limit else "")
            return ResourceState(exists=found, running=False, detail=detail)
        up = running(handle)
        detail = f"keeper pid {handle.get('keeper_pid')}" if up else "not running"
        return ResourceState(exists=up, running=up, detail=detail)

    async def place(self, state_dir: Path) -> Place:
        """This machine and the state directory: the keepers, pid files and homes are
        there, so only a provisioner on this machine using that directory reaches them."""
        root = self._state_dir or state_dir
        found = self._places.get(root)
        if found is None:
            found = self._places[root] = await asyncio.to_thread(host_place, "local", root)
        return found

    async def home_usage(self, handle: dict[str, Any]) -> int | None:
        """Bytes the home of ``handle`` (a ``local_home`` record's) uses now; None if gone."""
        path = Path(str(handle.get("path", "")))
        if handle.get("kind") != "home" or not await asyncio.to_thread(path.is_dir):
            return None
        return await asyncio.to_thread(home_usage, path)

    async def destroy(self, handle: dict[str, Any]) -> None:
        if handle.get("kind") == "home":
            path = Path(str(handle["path"]))
            if path.parent.name == "homes" and is_uuid(path.name):
                await asyncio.to_thread(_remove_home, path)
            return
        await self._kill(handle)
        state = Path(str(handle["run_dir"])) / "sandbox.json"
        saved = load_json(state)
        if saved is not None and saved.get("keeper_pid") == handle.get("keeper_pid"):
            state.unlink(missing_ok=True)

    # --- start -----------------------------------------------------------------

    async def _start(
        self, spec: BuildSpec, paths: Paths, current: dict[str, Any] | None, log: LogSink
    ) -> list[ResourceRecord]:
        same_build = current is not None and current.get("build_id") == str(spec.build_id)
        if current is not None and same_build and running(current):
            await log("the sandbox of this build is already running")
            home = await asyncio.to_thread(_home_record, paths, spec.template.backend.disk_bytes)
            return [_sandbox_record(spec, current), home]
        isolation = spec.template.backend.isolation or Isolation.BWRAP
        bwrap = self._check_prerequisites(isolation)
        backend = spec.template.backend
        network = backend.network and bwrap is not None
        net = self._network(paths) if network else None
        limits = await decide(backend, bwrap, log)
        if current is not None:
            await log(f"replacing the sandbox of build {current.get('build_number', '?')}")
            await self._kill(current)
            paths.state.unlink(missing_ok=True)
        await asyncio.to_thread(self._make_dirs, paths)
        if limits.disk is not None:
            owner = self._run_as or (os.geteuid(), os.getegid())
            await mount_home(paths, limits.disk, owner, backend.best_effort, log)
        cgroups = await make_cgroups(spec, limits, backend.best_effort, log)
        plan = self._plan(spec, paths, network=network, tmp_size=limits.tmp_size, relay=bwrap)
        if bwrap is None:
            await log(
                "isolation: none: agents run as host processes, without a sandbox", level="warn"
            )
        extras = Extras(net=net, cgroups=cgroups)
        if spec.template.prepare.strip():
            await run_prepare(spec, paths, plan, bwrap, log, extras)
        handle = await launch(spec, paths, plan, bwrap, self._start_timeout, extras)
        await asyncio.to_thread(write_state, paths, handle)
        agents = [a.name for a in spec.agents if not a.external]
        where = "bubblewrap sandbox" if bwrap else "host processes"
        await log(f"started {where} (keeper pid {handle['keeper_pid']}), agents: {agents}")
        home = await asyncio.to_thread(_home_record, paths, limits.disk)
        return [_sandbox_record(spec, handle), home]

    def _network(self, paths: Paths) -> dict[str, Any]:
        """The keeper's ``net`` config; refuse ``network: true`` where it cannot be safe."""
        tools = find_network_tools()
        missing = tools.missing()
        if missing:
            raise BuildFailed(
                "network: true gives the sandbox user-mode networking behind a packet "
                f"filter, and this host lacks {', '.join(missing)}. Install them (Debian/"
                "Ubuntu: `apt-get install slirp4netns iptables`) or set `network: false`.",
                code=NETWORK_UNAVAILABLE,
            )
        if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
            raise BuildFailed(
                "network: true needs /dev/net/tun, which this server's user cannot open "
                "(make it mode 0666, as most distributions do, or run the server as root), "
                "or set `network: false`.",
                code=NETWORK_UNAVAILABLE,
            )
        return {
            "slirp4netns": tools.slirp4netns,
            "iptables_restore": tools.iptables_restore,
            "ip6tables_restore": tools.ip6tables_restore,
            "nsenter": tools.nsenter,
            "unshare": tools.unshare,
            "userns": self._run_as is None,
            "lock_file": str(paths.run / "xtables.lock"),
        }

    def _check_prerequisites(self, isolation: Isolation) -> str | None:
        """The bwrap path for a sandbox, None for ``isolation: none``; refuse what cannot work."""
        if isolation is Isolation.NONE:
            if shutil.which("python3") is None:
                raise BuildFailed(
                    "the agent needs python3 on this host's PATH", code=SANDBOX_FAILED
                )
            return None
        bwrap = find_bwrap(self._bwrap_path)
        if bwrap is None:
            raise BuildFailed(
                "bubblewrap (bwrap) is not installed on this host, so the local backend "
                "cannot sandbox this workspace. Install it (Debian/Ubuntu: "
                "`apt-get install bubblewrap`, Fedora: `dnf install bubblewrap`) or set "
                "`isolation: none` in the template's backend to run without a sandbox.",
                code=BWRAP_MISSING,
            )
        if not any(Path(p).exists() for p in ("/usr/bin/python3", "/usr/local/bin/python3")):
            raise BuildFailed(
                "the sandbox runs the agent with the host's python3 from /usr, and there is none",
                code=SANDBOX_FAILED,
            )
        if self._run_as is not None and not Path("/usr/bin/setpriv").exists():
            raise BuildFailed(
                "the server runs as root, and dropping privileges in the sandbox needs "
                "/usr/bin/setpriv (util-linux)",
                code=SANDBOX_FAILED,
            )
        return bwrap

    def _make_dirs(self, paths: Paths) -> None:
        for path in (paths.root, paths.home.parent, paths.run.parent, paths.run):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):  # keep one older log, of bounded size
            if paths.log.stat().st_size > _LOG_ROTATE_BYTES:
                paths.log.replace(paths.log.with_suffix(".log.1"))
        paths.home.mkdir(mode=0o755, exist_ok=True)
        if self._run_as is not None and paths.home.stat().st_uid != self._run_as[0]:
            os.chown(paths.home, *self._run_as)

    def _plan(
        self,
        spec: BuildSpec,
        paths: Paths,
        *,
        network: bool,
        tmp_size: int | None,
        relay: str | None,
    ) -> SandboxPlan:
        """The sandbox of ``spec``; ``relay``: the bwrap path (a sandbox), or None (no relay)."""
        plan = None if relay is None else plan_relay(spec.server_url)
        return SandboxPlan(
            owner=sandbox_user(spec.owner_name),
            hostname=spec.workspace_name[:63] or "workspace",
            machine_id=spec.workspace_id.hex,
            home=paths.home,
            network=network,
            run_as=self._run_as,
            relay_dir=None if plan is None else paths.run / "relay",
            relay_alias=None if plan is None else plan.host_alias,
            tmp_size=tmp_size,
            workspace_id=str(spec.workspace_id),
        )

    async def _kill(self, handle: dict[str, Any]) -> None:
        await kill_sandbox(handle, self._stop_timeout)


# --- helpers ----------------------------------------------------------------------


def _sandbox_record(spec: BuildSpec, handle: dict[str, Any]) -> ResourceRecord:
    return ResourceRecord(type="local_sandbox", name=spec.workspace_name, handle=handle)


def _home_record(paths: Paths, disk_limit: int | None) -> ResourceRecord:
    """The home's record; its handle reports the disk use when it was made (blocking)."""
    handle: dict[str, Any] = {
        "kind": "home",
        "workspace_id": str(paths.workspace_id),
        "path": str(paths.home),
        "disk_used_bytes": home_usage(paths.home),
        "disk_limit_bytes": disk_limit if os.path.ismount(paths.home) else None,
    }
    return ResourceRecord(type="local_home", name=str(paths.home), handle=handle)


def _remove_home(home: Path) -> None:
    """Remove a home and its file system image (unmounting it first)."""
    unmount_disk_home(home)
    remove_tree(home)
    home.with_name(f"{home.name}.img").unlink(missing_ok=True)
    home.with_name(f"{home.name}.new").unlink(missing_ok=True)
