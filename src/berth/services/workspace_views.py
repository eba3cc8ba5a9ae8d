"""Read models of workspaces: status derived from the latest build, its job and agents."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from berth.db.authz import AuthzStore
from berth.domain.agents import DEFAULT_INACTIVE_DISCONNECT_TIMEOUT, agent_status
from berth.domain.enums import AgentStatus, JobStatus, Transition
from berth.records import (
    AgentLog,
    JobLog,
    ProvisionerJob,
    Template,
    Workspace,
    WorkspaceAgent,
    WorkspaceBuild,
)
from berth.services import placement
from berth.services.base import Ctx
from berth.services.refs import live_workspace_in

_RUNNING = {"start": "starting", "stop": "stopping", "delete": "deleting"}
_DONE = {"start": "running", "stop": "stopped", "delete": "deleted"}


def workspace_status(build: WorkspaceBuild | None, job: ProvisionerJob | None) -> str:
    """Coder's workspace status, from the latest build's transition and job."""
    if build is None or job is None:
        return "pending"
    match job.status:
        case JobStatus.PENDING:
            return "pending"
        case JobStatus.RUNNING:
            return _RUNNING[build.transition]
        case JobStatus.SUCCEEDED:
            return _DONE[build.transition]
        case _:
            return job.status


@dataclass(frozen=True, slots=True)
class AgentView:
    agent: WorkspaceAgent
    status: AgentStatus


@dataclass(frozen=True, slots=True)
class HomeDisk:
    """What the workspace's home used on disk when its latest build measured it.

    The provisioner measures it (it runs where the home is, the server may not), so it
    is as fresh as the latest build; ``limit_bytes`` is the ``backend.disk`` quota where
    one is enforced.
    """

    used_bytes: int
    limit_bytes: int | None
    measured_at: dt.datetime


@dataclass(frozen=True, slots=True)
class WorkspaceView:
    workspace: Workspace
    owner_name: str
    template: Template | None
    build: WorkspaceBuild | None
    job: ProvisionerJob | None
    agents: list[AgentView]
    home_disk: HomeDisk | None = None
    """Loaded for one workspace (``get_workspace``), not for listings."""

    @property
    def status(self) -> str:
        return workspace_status(self.build, self.job)

    @property
    def host(self) -> str | None:
        """Where its resources live (a host and state dir, a Docker engine), if known."""
        return placement.label_of(self.workspace)

    @property
    def waiting_for_host(self) -> str | None:
        """While its build is pending and may only run where its resources are: that."""
        return placement.waiting_for(self.workspace, self.job)


def view_agent(
    agent: WorkspaceAgent,
    now: dt.datetime,
    inactive_timeout: dt.timedelta = DEFAULT_INACTIVE_DISCONNECT_TIMEOUT,
) -> AgentView:
    status = agent_status(
        created_at=agent.created_at,
        first_connected_at=agent.first_connected_at,
        last_connected_at=agent.last_connected_at,
        disconnected_at=agent.disconnected_at,
        connection_timeout=dt.timedelta(seconds=agent.connection_timeout_seconds),
        now=now,
        inactive_timeout=inactive_timeout,
    )
    return AgentView(agent, status)


async def load_view(
    store: AuthzStore, workspace: Workspace, now: dt.datetime, *, disk: bool = False
) -> WorkspaceView:
    build = await store.get_latest_workspace_build_by_workspace_id(workspace.id)
    job = build and await store.get_provisioner_job_by_id(build.job_id)
    agents = await store.list_workspace_agents_by_job(build.job_id) if build else []
    owner = await store.get_user_by_id(workspace.owner_id)
    return WorkspaceView(
        workspace=workspace,
        owner_name=owner.username if owner else "",
        template=await store.get_template_by_id(workspace.template_id),
        build=build,
        job=job or None,
        agents=[view_agent(a, now) for a in agents],
        home_disk=await _home_disk(store, job) if disk and job else None,
    )


async def _home_disk(store: AuthzStore, job: ProvisionerJob) -> HomeDisk | None:
    """The home's measurement among the job's resources: a start build keeps what its
    backend made inside the sandbox resource (``records``), a stop build as rows."""
    for resource in await store.list_workspace_resources_by_job(job.id):
        nested: list[dict[str, Any]] = resource.handle.get("records") or []
        handles = [resource.handle, *(r.get("handle") or {} for r in nested)]
        for handle in handles:
            used, limit = handle.get("disk_used_bytes"), handle.get("disk_limit_bytes")
            if isinstance(used, int):
                measured = job.completed_at or resource.created_at
                return HomeDisk(used, limit if isinstance(limit, int) else None, measured)
    return None


async def get_workspace(ctx: Ctx, workspace_id: uuid.UUID) -> WorkspaceView:
    async with ctx.read() as store:
        workspace = await live_workspace_in(store, workspace_id)
        return await load_view(store, workspace, ctx.clock.now(), disk=True)


async def list_workspaces(ctx: Ctx, *, all_users: bool = False) -> list[WorkspaceView]:
    """The caller's (or everyone's) workspaces by name, each with its latest build, job
    and agents: a handful of queries however many workspaces there are (one per owner
    and per template beyond them), not several per workspace."""
    async with ctx.read() as store:
        owner_id = None if all_users else ctx.actor.user_id
        states = await store.list_workspace_states(owner_id)
        owners: dict[uuid.UUID, str] = {}
        templates: dict[uuid.UUID, Template | None] = {}
        for state in states:
            w = state.workspace
            if w.owner_id not in owners:
                owner = await store.get_user_by_id(w.owner_id)
                owners[w.owner_id] = owner.username if owner else ""
            if w.template_id not in templates:
                templates[w.template_id] = await store.get_template_by_id(w.template_id)
    now = ctx.clock.now()
    views = [
        WorkspaceView(
            workspace=s.workspace,
            owner_name=owners[s.workspace.owner_id],
            template=templates[s.workspace.template_id],
            build=s.build,
            job=s.job,
            agents=[view_agent(a, now) for a in s.agents],
        )
        for s in states
    ]
    return sorted(views, key=lambda v: (v.workspace.name, v.workspace.id))


async def build_logs(
    ctx: Ctx, workspace_id: uuid.UUID, *, after_id: int = 0
) -> tuple[WorkspaceView, list[JobLog]]:
    """The latest build's logs after ``after_id``, with the workspace's current view."""
    async with ctx.read() as store:
        view = await load_view(store, await live_workspace_in(store, workspace_id), ctx.clock.now())
        logs = (
            await store.list_provisioner_job_logs(view.build.job_id, after_id=after_id)
            if view.build
            else []
        )
        return view, logs


@dataclass(frozen=True, slots=True)
class ScriptLog:
    """A line of an agent's output, with the names a person reads it by."""

    log: AgentLog
    agent: str
    script: str | None
    """The script's display name; ``None`` for a line of the agent's own."""


async def script_logs(ctx: Ctx, workspace_id: uuid.UUID, *, after_id: int = 0) -> list[ScriptLog]:
    """The script output of the workspace's agents after ``after_id``, oldest first.

    The agents are those of the latest build, or — after a stop or delete, which have
    none — of the last start build, whose stop scripts ran last. Ids are one sequence
    over all agents, so ``after_id`` is a cursor across them. Read after the view
    (:func:`build_logs`), every line a lifecycle state in that view implies is here: the
    agent sends its logs before each state change.
    """
    async with ctx.read() as store:
        workspace = await live_workspace_in(store, workspace_id)
        lines: list[ScriptLog] = []
        for agent in await _script_agents(store, workspace.id):
            names = {
                s.id: s.display_name for s in await store.list_workspace_agent_scripts(agent.id)
            }
            lines += [
                ScriptLog(log, agent.name, names.get(log.script_id) if log.script_id else None)
                for log in await store.list_workspace_agent_logs(agent.id, after_id=after_id)
            ]
    return sorted(lines, key=lambda line: line.log.id)


async def _script_agents(store: AuthzStore, workspace_id: uuid.UUID) -> list[WorkspaceAgent]:
    builds = await store.list_workspace_builds(workspace_id)
    for build in reversed(builds):
        agents = await store.list_workspace_agents_by_job(build.job_id)
        if agents or build.transition == Transition.START.value:
            return agents
    return []


async def get_build(ctx: Ctx, build_id: uuid.UUID) -> WorkspaceBuild | None:
    async with ctx.read() as store:
        return await store.get_workspace_build_by_id(build_id)


async def get_job(ctx: Ctx, job_id: uuid.UUID) -> ProvisionerJob | None:
    async with ctx.read() as store:
        return await store.get_provisioner_job_by_id(job_id)


async def jobs_ahead(ctx: Ctx, job: ProvisionerJob) -> int:
    """How many pending jobs will be taken before ``job`` (0 once it is not pending)."""
    async with ctx.read() as store:
        return await store.count_provisioner_jobs_ahead(job)
