"""How the local backend runs things: ``prepare`` and the keeper.

Split from :mod:`berth.provisioner.backends.local` (which decides *what* to run) so
each stays small. See that module for the layout of the state dir and the life of a
sandbox, and ``_supervisor`` for the keeper, which runs from the supervisor's zipapp
(``_supervisor_zip``): on the host from ``supervisor/`` in the state dir, in a sandbox
from :data:`~berth.provisioner.backends._bwrap.SUPERVISOR_PATH`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import sys
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from berth.errors import BuildFailed
from berth.provisioner.backends._bwrap import (
    AGENT_PATH,
    RELAY_DIR,
    RELAY_SOCKET,
    SUPERVISOR_PATH,
    MemFiles,
    SandboxPlan,
    bwrap_args,
    drop_privileges,
    plan_relay,
    sandbox_env,
)
from berth.provisioner.backends._cgroups import WorkspaceCgroups
from berth.provisioner.backends._local_files import Paths
from berth.provisioner.backends._supervisor_zip import archive_bytes, ensure_archive
from berth.provisioner.spec import BuildSpec, LogSink

__all__ = ["PREPARE_FAILED", "SANDBOX_FAILED", "Extras", "launch", "run_prepare"]

PREPARE_FAILED = "PREPARE_FAILED"
SANDBOX_FAILED = "SANDBOX_FAILED"
_TAIL_LINES = 40
_TAIL_CHARS = 4000


@dataclass(frozen=True, slots=True)
class Extras:
    """What a sandbox gets besides its mounts: its network and its cgroups."""

    net: dict[str, Any] | None = None
    """The keeper's ``net`` config (``network: true`` in a sandbox), or None."""
    cgroups: WorkspaceCgroups | None = None


def _cgroup_config(extras: Extras, *, join: str) -> tuple[dict[str, Any], list[int]]:
    """The ``cgroup`` config of a keeper (``join`` = agent) or a oneshot (workload)."""
    if extras.cgroups is None:
        return {}, []
    if join == "agent":
        fds = extras.cgroups.open_workload()
        return {"join": extras.cgroups.agent_procs, "workload_fds": fds}, fds
    return {"join": extras.cgroups.workload_procs}, []


async def run_prepare(
    spec: BuildSpec,
    paths: Paths,
    plan: SandboxPlan,
    bwrap: str | None,
    log: LogSink,
    extras: Extras,
) -> None:
    """Run the template's ``prepare`` once, with the sandbox's mounts; fail the build on error.

    In a sandbox it runs through the supervisor's ``oneshot``, which puts it in the
    workspace's workload cgroups, gives it the workspace's network, and dies with this
    process (so does the sandbox: a server killed mid-build leaves no prepare behind).
    """
    await log("running prepare")
    plan = dataclasses.replace(plan, relay_dir=None)  # prepare has no agent to connect
    env = sandbox_env(plan, {"BERTH_WORKSPACE_NAME": spec.workspace_name})
    script = ["/bin/sh", "-c", spec.template.prepare]
    stdin: bytes | None = None
    supervisor = str(await asyncio.to_thread(ensure_archive, paths.supervisor_dir))
    with MemFiles() as files:
        if bwrap is None:
            env["HOME"] = str(plan.home)
            cmd, cwd = script, plan.home
            if extras.cgroups is not None:
                join = [sys.executable, "-I", supervisor, "join"]
                cmd = [*join, *extras.cgroups.workload_procs, "--", *cmd]
        else:
            head = bwrap_args(bwrap, plan, files, opt_files={}, die_with_parent=True)
            cgroup, _ = _cgroup_config(extras, join="workload")
            config = {
                "bwrap": [*head, "--", *drop_privileges(plan), *script],
                "bwrap_env": env,
                "net": extras.net,
                "cgroup": cgroup,
                "fds": list(files.fds),
                "parent_pid": os.getpid(),
            }
            stdin = json.dumps(config).encode()
            cmd, cwd = [sys.executable, "-I", supervisor, "oneshot"], None
            env = _keeper_env()
        child = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=cwd,
            pass_fds=files.fds,
            start_new_session=True,
        )
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    try:
        if child.stdin is not None and stdin is not None:
            child.stdin.write(stdin)
            await child.stdin.drain()
            child.stdin.close()
        if child.stdout is None:  # pragma: no cover - started with stdout=PIPE
            raise BuildFailed("the prepare script has no output pipe")
        async for line in _lines(child.stdout):
            tail.append(line)
            await log(line, stage="prepare")
        code = await child.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        await asyncio.shield(child.wait())
        raise
    if code != 0:
        output = "\n".join(tail)[-_TAIL_CHARS:]
        raise BuildFailed(f"prepare exited with status {code}:\n{output}", code=PREPARE_FAILED)


def _keeper_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}


async def launch(
    spec: BuildSpec,
    paths: Paths,
    plan: SandboxPlan,
    bwrap: str | None,
    start_timeout: float,
    extras: Extras,
) -> dict[str, Any]:
    """Start the keeper (and through it the sandbox); return the sandbox handle."""
    cgroup, cgroup_fds = _cgroup_config(extras, join="agent")
    try:
        with MemFiles() as files:
            if bwrap is None:
                config = await _host_config(spec, paths, plan)
            else:
                config = await _sandbox_config(spec, paths, plan, bwrap, files)
                config["inner"]["cgroup_fds"] = cgroup_fds
                config["net"] = extras.net
            config.update(log=str(paths.log), fds=list(files.fds), cgroup=cgroup)
            report = await _run_keeper(config, [*files.fds, *cgroup_fds], paths, start_timeout)
    finally:
        for fd in cgroup_fds:
            os.close(fd)
    handle: dict[str, Any] = {
        "kind": "sandbox",
        "mode": "none" if bwrap is None else "bwrap",
        "workspace_id": str(spec.workspace_id),
        "build_id": str(spec.build_id),
        "build_number": spec.build_number,
        "run_dir": str(paths.run),
        "home": str(paths.home),
        "cgroups": [] if extras.cgroups is None else [str(d) for d in extras.cgroups.dirs],
    }
    for key in ("keeper_pid", "keeper_start", "init_pid", "init_start", "pid_ns"):
        handle[key] = report.get(key)
    return handle


async def _host_config(spec: BuildSpec, paths: Paths, plan: SandboxPlan) -> dict[str, Any]:
    """``isolation: none``: the keeper runs the agents itself, from a private copy."""
    zipapp = paths.run / "berth-agent.pyz"
    await asyncio.to_thread(shutil.copyfile, spec.agent_zipapp, zipapp)
    argv = [shutil.which("python3") or "python3", str(zipapp)]
    agents = _agents(spec, plan, argv, spec.server_url, str(paths.home))
    return {"bwrap": None, "agents": agents, "relay": None}


async def _sandbox_config(
    spec: BuildSpec, paths: Paths, plan: SandboxPlan, bwrap: str, files: MemFiles
) -> dict[str, Any]:
    """The keeper runs bwrap; the supervisor inside gets its config on a pipe (``inner``)."""
    relay = plan_relay(spec.server_url)
    agents = _agents(spec, plan, ["python3", AGENT_PATH], relay.agent_url, plan.inside_home)
    inner: dict[str, Any] = {"agents": agents, "relay": None}
    config: dict[str, Any] = {"relay": None, "inner": inner}
    if plan.relay_dir is not None:
        plan.relay_dir.mkdir(mode=0o755, exist_ok=True)
        inner["relay"] = {"socket": f"{RELAY_DIR}/{RELAY_SOCKET}", "listen": relay.listen_port}
        host_socket = str(plan.relay_dir / RELAY_SOCKET)
        config["relay"] = {"socket": host_socket, "connect": list(relay.connect)}
    opt = {
        AGENT_PATH: await asyncio.to_thread(spec.agent_zipapp.read_bytes),
        SUPERVISOR_PATH: await asyncio.to_thread(archive_bytes),
    }
    head = bwrap_args(bwrap, plan, files, opt_files=opt, as_pid_1=True)
    command = ["python3", "-I", SUPERVISOR_PATH, "inner"]
    config["bwrap"] = [*head, "--", *drop_privileges(plan), *command]
    config["bwrap_env"] = sandbox_env(plan)
    return config


async def _run_keeper(
    config: dict[str, Any], fds: list[int], paths: Paths, start_timeout: float
) -> dict[str, Any]:
    supervisor = await asyncio.to_thread(ensure_archive, paths.supervisor_dir)
    keeper = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        str(supervisor),
        "keeper",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_keeper_env(),
        cwd=paths.run,
        pass_fds=fds,
    )
    try:
        async with asyncio.timeout(start_timeout):
            out, err = await keeper.communicate(json.dumps(config).encode())
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            keeper.kill()
        raise BuildFailed(
            f"the sandbox did not start within {start_timeout:g}s", code=SANDBOX_FAILED
        ) from None
    try:
        report: dict[str, Any] = json.loads(out.decode().strip().splitlines()[0])
    except (ValueError, IndexError):
        detail = (out + err).decode(errors="replace").strip()[-_TAIL_CHARS:]
        raise BuildFailed(f"could not start the sandbox: {detail}", code=SANDBOX_FAILED) from None
    if not report.get("ok"):
        error = str(report.get("error"))[-_TAIL_CHARS:]
        raise BuildFailed(f"could not start the sandbox: {error}", code=SANDBOX_FAILED)
    return report


def _agents(
    spec: BuildSpec, plan: SandboxPlan, argv: list[str], url: str, home: str
) -> list[dict[str, Any]]:
    """The supervisor's agent entries: one per non-external agent, each with its own token.

    The token is not in the agent's environment: the supervisor hands it over on the
    agent's control socket once the agent has made itself non-dumpable.
    """
    agents: list[dict[str, Any]] = []
    for agent in spec.agents:
        if agent.external:
            continue
        env = sandbox_env(plan)
        env.update(agent.env)
        env.update(
            HOME=home,
            USER=plan.owner,
            BERTH_AGENT_URL=url,
            BERTH_WORKSPACE_NAME=spec.workspace_name,
            BERTH_AGENT_NAME=agent.name,
        )
        env.pop("BERTH_AGENT_TOKEN", None)
        entry = {"name": agent.name, "argv": argv, "env": env, "cwd": home, "token": agent.token}
        agents.append(entry)
    return agents


async def _lines(stream: asyncio.StreamReader) -> AsyncIterator[str]:
    """Yield decoded lines of any length (a long line must not break the build)."""
    pending = b""
    while chunk := await stream.read(65536):
        pending += chunk
        *done, pending = pending.split(b"\n")
        for raw in done:
            yield raw.decode(errors="replace").rstrip("\r")
    if pending:
        yield pending.decode(errors="replace")
