"""The local backend: one bubblewrap sandbox per workspace on the provisioner's host.

Layout under the state dir (the server's data dir unless ``state_dir`` is given)::

    homes/<workspace_id>/            the persistent home, bound at /home/<owner>
    sandboxes/<workspace_id>/        never visible inside the sandbox
        sandbox.json                 the running sandbox's handle (found after a restart)
        sandbox.log                  output of bwrap, the supervisor and the agents
        relay/relay.sock             network: false only (see below)

What runs where. ``start`` runs ``prepare`` in a one-shot sandbox with the same
mounts (``--die-with-parent``: it belongs to the build), then starts a *keeper* (see
``_supervisor``): a small detached host process, in its own session, that runs one
long-lived ``bwrap`` per workspace. Inside, a supervisor starts one agent process per
non-external agent and restarts a crashed one. The sandbox does not die with the
server (no ``--die-with-parent``): agents reconnect to the next server.

The handle of the sandbox records the keeper's and the sandbox init's pid *and* start
time plus the sandbox's PID namespace, so a later server finds it and never signals a
reused pid. Stop sends SIGTERM to every process in that namespace, waits up to
``stop_timeout``, then SIGKILLs the namespace's init (the kernel then kills the rest)
and the keeper's process group. The home is kept; delete removes it too.

``network: false`` gives the sandbox its own network namespace with only ``lo``; the
agents still reach the server through a relay: the supervisor inside listens on
127.0.0.1 and forwards to a Unix socket that the keeper serves on the host and
forwards to the server (the server's host name is mapped to 127.0.0.1 inside, so TLS
still verifies). ``isolation: none`` runs the agents as plain host processes with
HOME set to the workspace home (no sandbox at all; the log says so). CPU and memory
limits are not enforced by this backend; the log says so when a template sets them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import uuid
from pathlib import Path
from typing import Any

from berth.domain.enums import Isolation, Transition
from berth.errors import BuildFailed
from berth.provisioner.backends import _proc as proc
from berth.provisioner.backends._bwrap import SandboxPlan, find_bwrap, plan_relay, sandbox_user
from berth.provisioner.backends._local_run import (
    PREPARE_FAILED,
    SANDBOX_FAILED,
    Paths,
    is_uuid,
    launch,
    load_json,
    read_state,
    remove_tree,
    run_prepare,
    write_state,
)
from berth.provisioner.spec import BuildSpec, LogSink, ResourceRecord, ResourceState

__all__ = ["BWRAP_MISSING", "PREPARE_FAILED", "SANDBOX_FAILED", "LocalBackend", "remove_tree"]

BWRAP_MISSING = "BWRAP_MISSING"
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
                return [_home_record(paths)] if paths.home.exists() else []
            await asyncio.to_thread(remove_tree, paths.home)
            await asyncio.to_thread(remove_tree, paths.run)
            await log("removed the workspace home")
            return []

    async def inspect(self, handle: dict[str, Any]) -> ResourceState:
        if handle.get("kind") == "home":
            found = await asyncio.to_thread(Path(str(handle["path"])).is_dir)
            return ResourceState(exists=found, running=False, detail=str(handle["path"]))
        running = _running(handle)
        detail = f"keeper pid {handle.get('keeper_pid')}" if running else "not running"
        return ResourceState(exists=running, running=running, detail=detail)

    async def destroy(self, handle: dict[str, Any]) -> None:
        if handle.get("kind") == "home":
            path = Path(str(handle["path"]))
            if path.parent.name == "homes" and is_uuid(path.name):
                await asyncio.to_thread(remove_tree, path)
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
        if current is not None and same_build and _running(current):
            await log("the sandbox of this build is already running")
            return [_sandbox_record(spec, current), _home_record(paths)]
        isolation = spec.template.backend.isolation or Isolation.BWRAP
        bwrap = self._check_prerequisites(isolation)
        if current is not None:
            await log(f"replacing the sandbox of build {current.get('build_number', '?')}")
            await self._kill(current)
            paths.state.unlink(missing_ok=True)
        await asyncio.to_thread(self._make_dirs, paths)
        backend = spec.template.backend
        if backend.cpus is not None or backend.memory is not None:
            await log("the local backend does not enforce cpus/memory limits", level="warn")
        plan = self._plan(spec, paths, network=backend.network if bwrap else True)
        if bwrap is None:
            await log(
                "isolation: none: agents run as host processes, without a sandbox", level="warn"
            )
        if spec.template.prepare.strip():
            await run_prepare(spec, plan, bwrap, log)
        handle = await launch(spec, paths, plan, bwrap, self._start_timeout)
        await asyncio.to_thread(write_state, paths, handle)
        agents = [a.name for a in spec.agents if not a.external]
        where = "bubblewrap sandbox" if bwrap else "host processes"
        await log(f"started {where} (keeper pid {handle['keeper_pid']}), agents: {agents}")
        return [_sandbox_record(spec, handle), _home_record(paths)]

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

    def _plan(self, spec: BuildSpec, paths: Paths, *, network: bool) -> SandboxPlan:
        relay = None if network else plan_relay(spec.server_url)
        return SandboxPlan(
            owner=sandbox_user(spec.owner_name),
            hostname=spec.workspace_name[:63] or "workspace",
            machine_id=spec.workspace_id.hex,
            home=paths.home,
            network=network,
            run_as=self._run_as,
            relay_dir=None if relay is None else paths.run / "relay",
            relay_alias=None if relay is None else relay.host_alias,
        )

    # --- stop ------------------------------------------------------------------

    async def _kill(self, handle: dict[str, Any]) -> None:
        """Stop every process of the sandbox in ``handle``; gently first, then for good."""
        keeper = _ident(handle, "keeper")
        init = _ident(handle, "init")
        ns = handle.get("pid_ns")

        def in_sandbox() -> list[int]:
            if init is not None and ns is not None and proc.alive(init):
                return proc.processes_in_pid_ns(int(ns))
            return []

        def gone() -> bool:
            alive = [p for p in (keeper, init) if p is not None and proc.alive(p)]
            return not alive and not (keeper and proc.processes_in_group(keeper))

        if gone():
            return
        proc.kill_pids(in_sandbox(), signal.SIGTERM)
        if keeper is not None and init is None:  # isolation: none: agents share its group
            proc.signal_group(keeper, signal.SIGTERM)
        if await proc.wait_until(gone, self._stop_timeout):
            return
        if init is not None:
            proc.signal_process(init, signal.SIGKILL)
        if keeper is not None:
            proc.signal_group(keeper, signal.SIGKILL)
        if not await proc.wait_until(gone, 10.0):
            raise BuildFailed("could not stop the sandbox's processes", code=SANDBOX_FAILED)


# --- helpers ----------------------------------------------------------------------


def _ident(handle: dict[str, Any], prefix: str) -> proc.ProcessId | None:
    pid, start = handle.get(f"{prefix}_pid"), handle.get(f"{prefix}_start")
    return None if pid is None or start is None else proc.ProcessId(int(pid), int(start))


def _running(handle: dict[str, Any]) -> bool:
    ident = _ident(handle, "init" if handle.get("mode") == "bwrap" else "keeper")
    return ident is not None and proc.alive(ident)


def _sandbox_record(spec: BuildSpec, handle: dict[str, Any]) -> ResourceRecord:
    return ResourceRecord(type="local_sandbox", name=spec.workspace_name, handle=handle)


def _home_record(paths: Paths) -> ResourceRecord:
    handle = {"kind": "home", "workspace_id": str(paths.workspace_id), "path": str(paths.home)}
    return ResourceRecord(type="local_home", name=str(paths.home), handle=handle)
