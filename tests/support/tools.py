"""Shared helpers of the chat-tool tests: a bootstrapped world with a real provisioner.

Nothing here mocks berth. A :class:`World` is a real database (the ``db`` fixture),
an in-process event bus, the real provisioner running the fake backend, an admin,
a member ``alice`` who owns a chat, and tool contexts with every interval shortened.

The fake backend starts no agent processes; the stand-ins of
:mod:`tests.support.standins` report for the agents a real backend would start.

Every wait is bounded (:data:`~tests.support.timings.WAIT`); no test sleeps to wait for a
condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import uuid
from collections.abc import AsyncGenerator, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import sqlalchemy as sa

from berth.agentconn import AgentGateway
from berth.clock import FakeClock
from berth.db import tables as t
from berth.db.engine import Database
from berth.domain.actors import Actor, as_agent_gateway, as_provisioner, as_system
from berth.domain.enums import JobStatus, Transition
from berth.events import InProcessBus
from berth.provisioner.backends.fake import FakeBackend
from berth.provisioner.jobs import Host
from berth.provisioner.spec import AgentSpec
from berth.records import (
    Chat,
    ProvisionerJob,
    Template,
    Workspace,
    WorkspaceAgent,
)
from berth.services import workspaces
from berth.services.accounts import actor_for_user, create_user
from berth.services.agents import AgentReports
from berth.services.base import Ctx
from berth.services.bootstrap import bootstrap
from berth.services.runtime import BuildLoops
from berth.services.templates import Pushed, push_template
from berth.tools.context import ChatContext, ToolTimings
from berth.tools.registry import call_tool
from berth.tools.result import ToolResult
from tests.support.rows import Rows
from tests.support.standins import AgentDriver, LoopbackSocket, SimBackend
from tests.support.timings import FAST, REAP_TIMING, WAIT, WORKER_TIMING


def template_yaml(
    name: str = "dev", *, fake: Mapping[str, Any] | None = None, **fields: Any
) -> str:
    """A template for the fake backend; JSON is YAML. One agent ``main`` unless given."""
    backend: dict[str, Any] = {"type": "fake"}
    if fake is not None:
        backend["fake"] = dict(fake)
    doc: dict[str, Any] = {"name": name, "backend": backend, "agents": [{"name": "main"}]}
    doc.update(fields)
    return json.dumps(doc)


# --- the world --------------------------------------------------------------------------


@dataclass
class World(Rows):
    db: Database
    clock: FakeClock
    bus: InProcessBus
    fake: FakeBackend
    sim: SimBackend
    driver: AgentDriver
    provisioner: BuildLoops
    admin: Actor
    owner: Actor
    org_id: uuid.UUID
    chat_id: uuid.UUID
    tmp_path: Path
    timings: ToolTimings = FAST
    updates: list[Chat] = field(default_factory=lambda: list[Chat](), repr=False)
    """Every chat update so far; not in the repr, which Hypothesis makes of each example's
    arguments and refuses (a warning, an error here) once it grows past ~50 kB."""
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def serve(
        self, gateway: AgentGateway, agent: WorkspaceAgent, socket: LoopbackSocket
    ) -> Coroutine[Any, Any, None]:
        """``gateway`` serving ``socket`` as ``agent``, its reports recorded as the server does."""
        ctx = Ctx(self.db, as_agent_gateway(), self.bus)
        return gateway.serve(agent.id, socket, AgentReports(ctx, agent.id, gateway.replica_id))

    @property
    def owner_id(self) -> uuid.UUID:
        assert self.owner.user_id is not None
        return self.owner.user_id

    @property
    def admin_id(self) -> uuid.UUID:
        assert self.admin.user_id is not None
        return self.admin.user_id

    # --- tools ------------------------------------------------------------------------

    async def on_chat_updated(self, chat: Chat) -> None:
        self.updates.append(chat)
        self._changed.set()

    def ctx(self, **changes: Any) -> ChatContext:
        """The chat's tool context (chat-updated recorded in ``updates``), with changes."""
        base = ChatContext(
            db=self.db,
            chat_id=self.chat_id,
            organization_id=self.org_id,
            owner_id=self.owner_id,
            bus=self.bus,
            on_chat_updated=self.on_chat_updated,
            timings=self.timings,
        )
        return dataclasses.replace(base, **changes)

    async def call(
        self, tool: str, arguments: dict[str, Any] | None = None, **changes: Any
    ) -> ToolResult:
        with anyio.fail_after(WAIT):
            return await call_tool(self.ctx(**changes), tool, arguments or {})

    async def create(
        self, changes: Mapping[str, Any] | None = None, **arguments: Any
    ) -> ToolResult:
        return await self.call("create_workspace", arguments, **(changes or {}))

    async def wait_updates(self, count: int) -> list[Chat]:
        """Until chat-updated has fired ``count`` times."""
        with anyio.fail_after(WAIT):
            while len(self.updates) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.updates

    # --- setup ------------------------------------------------------------------------

    def service(self, actor: Actor | None = None) -> Ctx:
        return Ctx(self.db, actor or self.owner, self.bus)

    async def push(
        self, yaml_text: str, *, organization: str | None = None, readme: str = ""
    ) -> Pushed:
        files = {"template.yaml": yaml_text}
        if readme:
            files["README.md"] = readme
        return await push_template(self.service(self.admin), files, organization)

    async def template(self, name: str = "dev", **kw: Any) -> Template:
        return (await self.push(template_yaml(name, **kw))).template

    async def new_chat(
        self, owner: Actor | None = None, organization_id: uuid.UUID | None = None
    ) -> uuid.UUID:
        actor = owner or self.owner
        assert actor.user_id is not None
        async with self.db.write(as_system()) as raw:
            chat = await raw.acting_as(actor).insert_chat(
                owner_id=actor.user_id, organization_id=organization_id or self.org_id
            )
        return chat.id

    async def start_workspace(self, template: Template, name: str, **kw: Any) -> workspaces.Started:
        """A workspace created through the service (as alice), its first build queued."""
        return await workspaces.create_workspace(
            self.service(), template=str(template.id), name=name, **kw
        )

    async def running_workspace(self, template: Template, name: str) -> workspaces.Started:
        """A workspace whose first build succeeded, bound to the chat."""
        started = await self.start_workspace(template, name)
        await self.wait_job(started.job.id)
        await self.bind(started.workspace.id, started.build.id)
        return started

    async def transition(
        self, workspace_id: uuid.UUID, transition: Transition
    ) -> workspaces.Started:
        return await workspaces.transition_workspace(self.service(), workspace_id, transition)

    async def bind(self, workspace_id: uuid.UUID | None, build_id: uuid.UUID | None) -> None:
        async with self.db.write(as_system()) as raw:
            await raw.update_chat_workspace_binding(
                self.chat_id, workspace_id=workspace_id, build_id=build_id, agent_id=None
            )

    async def set_quota(self, allowance: int) -> None:
        async with self.db.write(as_system()) as raw:
            store = raw.acting_as(self.admin)
            everyone = await store.get_everyone_group(self.org_id)
            assert everyone is not None
            await store.update_group_quota_allowance(everyone.id, allowance)

    async def set_site_config(self, key: str, value: str) -> None:
        async with self.db.write(as_system()) as raw:
            await raw.acting_as(self.admin).upsert_site_config(key, value)

    async def set_job_status(
        self, job_id: uuid.UUID, status: str, *, error: str | None = None
    ) -> None:
        """Write a job's status directly (states the provisioner would not produce now)."""
        async with self.db.connection() as conn:
            await conn.execute(
                sa.update(t.provisioner_jobs)
                .where(t.provisioner_jobs.c.id == job_id)
                .values(status=status, error=error)
            )
            await conn.commit()
        await self.bus.publish(f"job:{job_id}", {"type": "status", "status": status})

    async def finish_job(
        self, job_id: uuid.UUID, status: JobStatus, error: str | None = None
    ) -> None:
        async with self.db.write(as_system()) as raw:
            await raw.acting_as(as_provisioner()).complete_provisioner_job(
                job_id, status=status.value, error=error
            )
        await self.bus.publish(f"job:{job_id}", {"type": "status", "status": status.value})

    async def insert_agent(
        self, resource_id: uuid.UUID, name: str, *, chat: bool = False
    ) -> WorkspaceAgent:
        """An agent row added to a build's resource directly, as the provisioner writes them.

        For states a template cannot describe (the validator allows one ``chat`` agent).
        """
        async with self.db.write(as_system()) as raw:
            return await raw.acting_as(as_provisioner()).insert_workspace_agent(
                resource_id=resource_id,
                name=name,
                display_order=0,
                chat=chat,
                external=False,
                directory="",
                env={},
                auth_token_hash=uuid.uuid4().bytes * 2,
                connection_timeout_seconds=0,
            )

    # --- reading ----------------------------------------------------------------------

    async def chat(self, chat_id: uuid.UUID | None = None) -> Chat:
        async with self.db.read(as_system()) as raw:
            chat = await raw.get_chat_by_id(chat_id or self.chat_id)
        assert chat is not None
        return chat

    async def workspaces(self) -> list[Workspace]:
        """Alice's live workspaces, by name."""
        async with self.db.read(as_system()) as raw:
            return await raw.list_workspaces(owner_id=self.owner_id)

    async def build_parameters(self, build_id: uuid.UUID) -> dict[str, str]:
        async with self.db.read(as_system()) as raw:
            rows = await raw.list_workspace_build_parameters(build_id)
        return {p.name: p.value for p in rows}

    async def agents(self, job_id: uuid.UUID) -> list[WorkspaceAgent]:
        async with self.db.read(as_system()) as raw:
            return await raw.list_workspace_agents_by_job(job_id)

    async def agent(self, agent_id: uuid.UUID) -> WorkspaceAgent:
        async with self.db.read(as_system()) as raw:
            agent = await raw.get_workspace_agent_by_id(agent_id)
        assert agent is not None
        return agent

    async def wait_job(self, job_id: uuid.UUID) -> ProvisionerJob:
        """Until the job is terminal (woken by its events, re-checked every 50 ms)."""
        with anyio.fail_after(WAIT):
            async with self.bus.subscribe(f"job:{job_id}") as events:
                while True:
                    job = await self.job(job_id)
                    if JobStatus(job.status).is_terminal:
                        return job
                    await events.get(timeout=0.05)

    async def wait_hanging(self) -> None:
        """Until an apply hangs on a gate of the fake backend."""
        with anyio.fail_after(WAIT):
            await self.fake.hang_started.wait()
        self.fake.hang_started.clear()

    async def next_agent(self) -> AgentSpec:
        """The next agent the stand-in backend started."""
        with anyio.fail_after(WAIT):
            return await self.sim.started.get()


@contextlib.asynccontextmanager
async def open_world(
    db: Database, clock: FakeClock, tmp_path: Path, *, run_provisioner: bool = True
) -> AsyncGenerator[World]:
    """Bootstrap ``db``, add alice and her chat, and run the provisioner (unless told not to)."""
    bus = InProcessBus()
    await bus.start()
    await bootstrap(db, install_examples=False)
    async with db.read(as_system()) as system:
        admin_user = await system.get_user_by_username("admin")
        assert admin_user is not None
        admin = await actor_for_user(system, admin_user)
    alice_user, orgs = await create_user(
        Ctx(db, admin, bus), username="alice", email="alice@example.com", name="Alice"
    )
    async with db.read(as_system()) as raw:
        owner = await actor_for_user(raw, alice_user)
    async with db.write(as_system()) as raw:
        chat = await raw.acting_as(owner).insert_chat(
            owner_id=alice_user.id, organization_id=orgs[0], title="tests"
        )
    fake = FakeBackend()
    driver = AgentDriver(db, bus)
    sim = SimBackend(fake, driver)
    state_dir = tmp_path / "state"
    state_dir.mkdir(exist_ok=True)
    provisioner = BuildLoops(
        Ctx(db, as_provisioner(), bus),
        Host({"fake": sim}, tmp_path / "none.pyz", state_dir),
        server_url="http://127.0.0.1:9",
        workers=1,
        worker_timing=WORKER_TIMING,
        reap_timing=REAP_TIMING,
    )
    world = World(
        db=db,
        clock=clock,
        bus=bus,
        fake=fake,
        sim=sim,
        driver=driver,
        provisioner=provisioner,
        admin=admin,
        owner=owner,
        org_id=orgs[0],
        chat_id=chat.id,
        tmp_path=tmp_path,
    )
    if run_provisioner:
        provisioner.start()
    try:
        yield world
    finally:
        await provisioner.stop()
        await _settle()
        await bus.close()


_PROVISIONER_COROUTINES = frozenset({"Worker._heartbeat", "Worker._apply"})


async def _settle() -> None:
    """Wait for provisioner tasks that outlive ``BuildLoops.stop``.

    A worker cancelled while it waits for its job's heartbeat to wind down leaves that
    heartbeat task running (reported as a provisioner bug). If the database were
    disposed under it, its connection cleanup would never finish and the event loop
    would hang at exit; so let it finish first.
    """
    current = asyncio.current_task()
    leftovers = [
        task
        for task in asyncio.all_tasks()
        if task is not current
        and getattr(task.get_coro(), "__qualname__", "") in _PROVISIONER_COROUTINES
    ]
    if leftovers:
        await asyncio.wait(leftovers, timeout=WAIT)


async def run_job(world: World) -> None:
    """Run one queued job to its end with the provisioner's own worker (manual mode).

    A job that cannot be prepared (over quota) ends as the worker acquires it, without
    reaching the worker; either way the job is done when this returns.
    """
    async with world.db.connection() as conn:
        pending = t.provisioner_jobs.c.status == "pending"
        queued = await conn.scalar(sa.select(sa.func.count()).where(pending))
    assert queued, "no job was queued"
    with anyio.fail_after(WAIT):
        await world.provisioner.workers[0].run_once()
