"""How the local backend runs things: ``prepare``, the keeper, and its files on disk.

Split from :mod:`berth.provisioner.backends.local` (which decides *what* to run) so
each stays small. See that module for the layout of the state dir and the life of a
sandbox, and ``_supervisor`` for the keeper.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import stat
import sys
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from berth.errors import BuildFailed
from berth.provisioner.backends import _supervisor
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
from berth.provisioner.spec import BuildSpec, LogSink

__all__ = [
    "PREPARE_FAILED",
    "SANDBOX_FAILED",
    "Paths",
    "is_uuid",
    "launch",
    "load_json",
    "read_state",
    "remove_tree",
    "run_prepare",
    "write_state",
]

PREPARE_FAILED = "PREPARE_FAILED"
SANDBOX_FAILED = "SANDBOX_FAILED"
_TAIL_LINES = 40
_TAIL_CHARS = 4000


@dataclass(frozen=True, slots=True)
class Paths:
    root: Path
    workspace_id: uuid.UUID

    @property
    def home(self) -> Path:
        return self.root / "homes" / str(self.workspace_id)

    @property
    def run(self) -> Path:
        return self.root / "sandboxes" / str(self.workspace_id)

    @property
    def state(self) -> Path:
        return self.run / "sandbox.json"

    @property
    def log(self) -> Path:
        return self.run / "sandbox.log"


async def run_prepare(spec: BuildSpec, plan: SandboxPlan, bwrap: str | None, log: LogSink) -> None:
    """Run the template's ``prepare`` once, with the sandbox's mounts; fail the build on error."""
    await log("running prepare")
    plan = dataclasses.replace(plan, relay_dir=None)  # prepare has no agent to connect
    env = sandbox_env(plan, {"BERTH_WORKSPACE_NAME": spec.workspace_name})
    script = ["/bin/sh", "-c", spec.template.prepare]
    with MemFiles() as files:
        if bwrap is None:
            env["HOME"] = str(plan.home)
            cmd, cwd = script, plan.home
        else:
            head = bwrap_args(bwrap, plan, files, opt_files={}, die_with_parent=True)
            cmd, cwd = [*head, "--", *drop_privileges(plan), *script], None
        child = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=cwd,
            pass_fds=files.fds,
            start_new_session=True,
        )
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    try:
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


async def launch(
    spec: BuildSpec, paths: Paths, plan: SandboxPlan, bwrap: str | None, start_timeout: float
) -> dict[str, Any]:
    """Start the keeper (and through it the sandbox); return the sandbox handle."""
    with MemFiles() as files:
        if bwrap is None:
            config = await _host_config(spec, paths, plan)
        else:
            config = await _sandbox_config(spec, paths, plan, bwrap, files)
        config.update(log=str(paths.log), fds=list(files.fds))
        report = await _run_keeper(config, files.fds, paths, start_timeout)
    handle: dict[str, Any] = {
        "kind": "sandbox",
        "mode": "none" if bwrap is None else "bwrap",
        "workspace_id": str(spec.workspace_id),
        "build_id": str(spec.build_id),
        "build_number": spec.build_number,
        "run_dir": str(paths.run),
        "home": str(paths.home),
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
    return {"bwrap": None, "agents": agents}


async def _sandbox_config(
    spec: BuildSpec, paths: Paths, plan: SandboxPlan, bwrap: str, files: MemFiles
) -> dict[str, Any]:
    """The keeper runs bwrap; the supervisor inside gets its config in the environment."""
    relay = None if plan.network else plan_relay(spec.server_url)
    url = spec.server_url if relay is None else relay.agent_url
    agents = _agents(spec, plan, ["python3", AGENT_PATH], url, plan.inside_home)
    inner: dict[str, Any] = {"agents": agents, "relay": None}
    config: dict[str, Any] = {"relay": None}
    if relay is not None and plan.relay_dir is not None:
        plan.relay_dir.mkdir(mode=0o755, exist_ok=True)
        inner["relay"] = {"socket": f"{RELAY_DIR}/{RELAY_SOCKET}", "listen": relay.listen_port}
        host_socket = str(plan.relay_dir / RELAY_SOCKET)
        config["relay"] = {"socket": host_socket, "connect": list(relay.connect)}
    opt = {
        AGENT_PATH: await asyncio.to_thread(spec.agent_zipapp.read_bytes),
        SUPERVISOR_PATH: await asyncio.to_thread(Path(_supervisor.__file__).read_bytes),
    }
    head = bwrap_args(bwrap, plan, files, opt_files=opt)
    command = ["python3", "-I", SUPERVISOR_PATH, "inner"]
    config["bwrap"] = [*head, "--", *drop_privileges(plan), *command]
    config["bwrap_env"] = sandbox_env(plan, {_supervisor.CONFIG_ENV: json.dumps(inner)})
    return config


async def _run_keeper(
    config: dict[str, Any], fds: list[int], paths: Paths, start_timeout: float
) -> dict[str, Any]:
    keeper = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        _supervisor.__file__,
        "keeper",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
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
    """The supervisor's agent entries: one per non-external agent, each with its own token."""
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
            BERTH_AGENT_TOKEN=agent.token,
            BERTH_WORKSPACE_NAME=spec.workspace_name,
            BERTH_AGENT_NAME=agent.name,
        )
        agents.append({"name": agent.name, "argv": argv, "env": env, "cwd": home})
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


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def load_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None  # pyright: ignore[reportUnknownVariableType]


def read_state(paths: Paths) -> dict[str, Any] | None:
    return load_json(paths.state)


def write_state(paths: Paths, handle: dict[str, Any]) -> None:
    tmp = paths.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(handle))
    tmp.replace(paths.state)


def remove_tree(path: Path) -> None:
    """``rm -rf``, including files and directories the workspace made read-only."""

    def retry(func: Any, target: str, _exc: object) -> None:
        parent = os.path.dirname(target)
        with contextlib.suppress(OSError):
            os.chmod(parent, stat.S_IRWXU)
        with contextlib.suppress(OSError):
            if not os.path.islink(target):
                os.chmod(target, stat.S_IRWXU)
        func(target)

    if not path.exists() and not path.is_symlink():
        return
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=retry)
    else:
        shutil.rmtree(path, onerror=retry)
