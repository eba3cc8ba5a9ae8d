"""A real server and a real workspace agent for the workspace tools' tests (spec §13).

:func:`serving` runs a berth server (the real app: provisioner workers with the fake
backend, the agent WebSocket endpoint, the real :class:`~berth.agentconn.AgentGateway`)
as a task in the test's own event loop, so the test can use its runtime — the database,
the bus and the gateway — directly. (The ``live_server`` fixture runs the server in a
thread with its own loop, whose engine and gateway cannot be awaited from the test.)

:func:`live_workspace` creates a workspace through the services on a template whose
backend is ``fake``, waits for its build, binds the chat to it, inserts an agent row
with a token the test chose (tokens are stored hashed, so a built agent's token cannot
be read back) and runs the built ``berth-agent.pyz`` as a subprocess with that token.
Every wait is bounded by :data:`WAIT`; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import sys
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from berth.agent.build import ensure_zipapp
from berth.api.app import create_app
from berth.domain.actors import Actor, as_provisioner, as_system
from berth.domain.credentials import hash_secret as hash_token
from berth.records import Workspace, WorkspaceAgent
from berth.services.accounts import actor_for_user, add_user, authenticate
from berth.services.base import Ctx
from berth.services.chats import create_chat
from berth.services.runtime import Runtime
from berth.services.templates import push_template
from berth.services.workspaces import create_workspace
from berth.settings import Settings
from berth.tools.chats import bind_workspace
from berth.tools.context import ChatContext
from berth.tools.registry import call_tool
from berth.tools.result import ToolResult
from berth.tools.waits import wait_for_build

WAIT = 30.0
"""Seconds: the bound of every wait here (each normally takes milliseconds)."""

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
"""The agent runs on the system Python, outside the venv, as in a workspace."""

TEMPLATE_YAML = """\
name: fake-dev
display_name: Fake dev
description: A workspace on the fake backend; the test runs its agent.
default_ttl: 2h
backend:
  type: fake
"""


@dataclass
class Server:
    url: str
    runtime: Runtime
    admin_token: str


@contextlib.asynccontextmanager
async def serving(database_url: str, data_dir: Path) -> AsyncGenerator[Server]:
    """A berth server on a loopback port, served by a task of the running loop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        address=url.removeprefix("http://"),
        install_examples=False,
        fake_backend=True,
    )
    started = asyncio.Event()
    state: dict[str, Runtime] = {}

    def on_started(runtime: Runtime) -> None:
        state["runtime"] = runtime
        started.set()

    config = uvicorn.Config(
        create_app(settings, on_started=on_started), log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        waiter = asyncio.create_task(started.wait())
        done, _ = await asyncio.wait(
            {task, waiter}, timeout=60, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            waiter.cancel()
            raise RuntimeError("the test server did not start")
        runtime = state["runtime"]
        assert runtime.bootstrapped is not None
        yield Server(url, runtime, runtime.bootstrapped.token)
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)
        sock.close()


@dataclass
class Live:
    """A chat bound to a running workspace whose chat agent is a real agent process."""

    server: Server
    ctx: ChatContext
    owner: Actor
    workspace: Workspace
    agent: WorkspaceAgent
    project: Path
    process: asyncio.subprocess.Process
    log: Path

    async def call(self, tool: str, arguments: dict[str, Any] | None = None) -> ToolResult:
        return await call_tool(self.ctx, tool, arguments or {})

    async def read_workspace(self) -> Workspace:
        async with self.ctx.db.read(as_system()) as raw:
            workspace = await raw.get_workspace_by_id(self.workspace.id)
        assert workspace is not None
        return workspace

    async def stop_agent(self) -> None:
        """Terminate the agent process and wait until the gateway has let it go."""
        gateway, channel = self.server.runtime.gateway, f"agent:{self.agent.id}"
        async with self.server.runtime.bus.subscribe(channel) as events:
            self.process.terminate()
            async with asyncio.timeout(WAIT):
                await self.process.wait()
                while gateway.holds(self.agent.id):
                    await events.get(timeout=WAIT)


async def _owner(server: Server) -> tuple[Actor, uuid.UUID]:
    runtime = server.runtime
    async with runtime.db.write(as_system()) as store:
        org = await store.get_default_organization()
        assert org is not None
        user = await add_user(store, username="dev", name="Dev", organization_id=org.id)
        actor = await actor_for_user(store, user)
    return actor, org.id


async def _insert_agent(
    runtime: Runtime,
    workspace: Workspace,
    token: str,
    project: Path,
    *,
    name: str,
    chat: bool,
    scripts: Sequence[Mapping[str, Any]] = (),
) -> WorkspaceAgent:
    """An agent row (with ``scripts``: ``display_name``, ``run_on``, ``script``,
    ``timeout_seconds``) on the workspace's sandbox resource, as a start build makes it."""
    async with runtime.db.write(as_system()) as raw:
        store = raw.acting_as(as_provisioner())
        build = await store.get_latest_workspace_build_by_workspace_id(workspace.id)
        assert build is not None
        (resource,) = await store.list_workspace_resources_by_job(build.job_id)
        agent = await store.insert_workspace_agent(
            resource_id=resource.id,
            name=name,
            display_order=0,
            chat=chat,
            external=False,
            directory=str(project),
            env={"FROM_MANIFEST": "yes"},
            auth_token_hash=hash_token(token),
            connection_timeout_seconds=120,
        )
        await store.insert_workspace_agent_scripts(
            [
                {"agent_id": agent.id, "blocks_login": False, "display_order": i, **script}
                for i, script in enumerate(scripts)
            ]
        )
        return agent


async def _spawn_agent(
    runtime: Runtime, url: str, agent: WorkspaceAgent, token: str, tmp_path: Path
) -> tuple[asyncio.subprocess.Process, Path]:
    """Run the built agent; return once it is connected and has started (``ready``, or
    ``start_error`` for a failing start script).

    The zipapp is built once per test process and only written into each test's
    directory (as a workspace gets its copy).
    """
    zipapp = await asyncio.to_thread(ensure_zipapp, tmp_path / "dist")
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    log = tmp_path / "agent.log"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    argv = [PYTHON, str(zipapp), "--url", url, "--token", token, "--heartbeat-seconds", "1"]
    async with runtime.bus.subscribe(f"agent:{agent.id}") as events:
        out = _log_fd(log)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdout=out, stderr=out, env=env, cwd=home
            )
        finally:
            os.close(out)
        try:
            async with asyncio.timeout(WAIT):
                while not await _started(runtime, agent):
                    await events.get(timeout=WAIT)
        except BaseException:
            await stop_process(process)
            raise RuntimeError(f"the agent did not start:\n{log.read_text()}") from None
    return process, log


def _log_fd(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)


async def _started(runtime: Runtime, agent: WorkspaceAgent) -> bool:
    if not runtime.gateway.holds(agent.id):
        return False
    async with runtime.db.read(as_system()) as raw:
        row = await raw.get_workspace_agent_by_id(agent.id)
    return row is not None and row.lifecycle_state not in ("created", "starting")


async def stop_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), WAIT)
    except TimeoutError:
        process.kill()
        await asyncio.wait_for(process.wait(), WAIT)


@contextlib.asynccontextmanager
async def live_workspace(
    server: Server,
    tmp_path: Path,
    *,
    ttl_ms: int | None = None,
    extra_agents: tuple[str, ...] = (),
    scripts: Sequence[Mapping[str, Any]] = (),
) -> AsyncGenerator[Live]:
    """The owner's chat bound to a running workspace with a live chat agent.

    ``extra_agents`` adds root agents (not marked ``chat``, never connected) beside the
    chat agent ``main``, to show which one the tools pick; ``scripts`` are the chat
    agent's (see :func:`_insert_agent`).
    """
    runtime = server.runtime
    admin = await authenticate(runtime.db, server.admin_token)
    owner, org_id = await _owner(server)
    pushed = await push_template(
        Ctx(runtime.db, admin, runtime.bus), {"template.yaml": TEMPLATE_YAML}, None
    )
    owner_ctx = Ctx(runtime.db, owner, runtime.bus)
    started = await create_workspace(
        owner_ctx, template=str(pushed.template.id), name="dev", ttl_ms=ttl_ms
    )
    chat = await create_chat(owner_ctx)
    assert owner.user_id is not None
    ctx = ChatContext(
        db=runtime.db,
        chat_id=chat.id,
        organization_id=org_id,
        owner_id=owner.user_id,
        bus=runtime.bus,
        gateway=runtime.gateway,
    )
    await wait_for_build(ctx, started.build.id)
    await bind_workspace(ctx, started.workspace.id, started.build.id)
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    for name in extra_agents:
        await _insert_agent(
            runtime, started.workspace, secrets.token_hex(8), project, name=name, chat=False
        )
    token = secrets.token_hex(16)
    agent = await _insert_agent(
        runtime, started.workspace, token, project, name="main", chat=True, scripts=scripts
    )
    process, log = await _spawn_agent(runtime, server.url, agent, token, tmp_path)
    try:
        async with runtime.db.read(as_system()) as raw:
            workspace = await raw.get_workspace_by_id(started.workspace.id)
        assert workspace is not None
        yield Live(server, ctx, owner, workspace, agent, project, process, log)
    finally:
        await stop_process(process)


@contextlib.asynccontextmanager
async def live(database_url: str, tmp_path: Path, **kw: Any) -> AsyncGenerator[Live]:
    """:func:`serving` and :func:`live_workspace` in one."""
    async with (
        serving(database_url, tmp_path / "data") as server,
        live_workspace(server, tmp_path, **kw) as workspace,
    ):
        yield workspace


class LivePool:
    """Live workspaces shared by the tests of a module, one per (module, database kind).

    A server start and an agent start per test cost more than most of these tests; a
    module's tests share one and each gets it with an empty project directory
    (:meth:`get`). The workspaces live until the test process ends: with ``pytest-xdist``
    a worker runs a module's tests among others', so a module-scoped fixture would be
    torn down and rebuilt between them.
    """

    def __init__(self, stack: contextlib.AsyncExitStack, databases: Any, root: Path) -> None:
        self._stack = stack
        self._databases = databases
        self._root = root
        self._made: dict[tuple[str, str], Live] = {}

    async def get(self, key: str, kind: str, **kw: Any) -> Live:
        """The shared workspace of ``key`` on a database of ``kind``, emptied for a test."""
        workspace = self._made.get((key, kind))
        if workspace is None:
            directory = self._root / f"{key}-{kind}".replace(".", "-")
            url = self._databases.url(kind)
            workspace = await self._stack.enter_async_context(live(url, directory, **kw))
            self._made[key, kind] = workspace
        if workspace.process.returncode is not None:
            raise RuntimeError(f"the shared agent exited:\n{workspace.log.read_text()}")
        for entry in workspace.project.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        return workspace
