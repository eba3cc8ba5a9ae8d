"""Workspaces: create, list, show, builds (start/stop/delete), cancel, TTL, logs, exec."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.sse import EventSourceResponse, ServerSentEvent

from berth.api.deps import CtxDep, RuntimeDep, WorkspaceDep
from berth.api.schemas import (
    AgentLogOut,
    AgentOut,
    AgentTokenOut,
    BuildOut,
    BuildRequest,
    CreateWorkspaceRequest,
    ExecOut,
    ExecRequest,
    HomeDiskOut,
    JobOut,
    LogOut,
    TTLRequest,
    WorkspaceOut,
)
from berth.domain.enums import Transition
from berth.domain.gocompat import DurationError, format_duration, parse_duration
from berth.errors import InvalidInput, NotFound, Validation
from berth.events import SubscriptionClosed, messages
from berth.services import execs, workspace_views, workspaces
from berth.services.workspace_views import WorkspaceView

router = APIRouter(tags=["workspaces"])

FOLLOW_RECHECK_SECONDS = 5.0


def _duration_ms(value: str, field: str) -> int:
    try:
        duration = parse_duration(value.strip())
    except DurationError as exc:
        raise InvalidInput(f"Invalid {field}.", validations=[Validation(field, str(exc))]) from exc
    if duration < dt.timedelta(0):
        raise InvalidInput(f"Invalid {field}.", validations=[Validation(field, "must be >= 0")])
    return int(duration.total_seconds() * 1000)


def workspace_out(view: WorkspaceView) -> WorkspaceOut:
    w = view.workspace
    return WorkspaceOut(
        id=w.id,
        name=w.name,
        owner_id=w.owner_id,
        owner_name=view.owner_name,
        organization_id=w.organization_id,
        template_id=w.template_id,
        template_name=view.template.name if view.template else "",
        status=view.status,
        ttl=format_duration(dt.timedelta(milliseconds=w.ttl_ms)) if w.ttl_ms else None,
        deadline=w.deadline,
        last_used_at=w.last_used_at,
        created_at=w.created_at,
        latest_build=view.build and BuildOut.of(view.build, view.job),
        agents=[
            AgentOut(
                id=a.agent.id,
                name=a.agent.name,
                status=a.status.value,
                lifecycle_state=a.agent.lifecycle_state,
                chat=a.agent.chat,
                external=a.agent.external,
                directory=a.agent.directory,
                first_connected_at=a.agent.first_connected_at,
                last_connected_at=a.agent.last_connected_at,
                started_at=a.agent.started_at,
                ready_at=a.agent.ready_at,
                claimed_at=a.agent.claimed_at,
            )
            for a in view.agents
        ],
        home_disk=view.home_disk and HomeDiskOut.of(view.home_disk),
        host=view.host,
        waiting_for_host=view.waiting_for_host,
    )


@router.post("/workspaces", status_code=status.HTTP_201_CREATED)
async def create_workspace(body: CreateWorkspaceRequest, ctx: CtxDep) -> WorkspaceOut:
    started = await workspaces.create_workspace(
        ctx,
        template=body.template,
        name=body.name,
        owner=body.owner,
        parameters=body.parameters,
        preset_ref=body.preset_id,
        ttl_ms=None if body.ttl is None else _duration_ms(body.ttl, "ttl"),
        organization=body.organization,
    )
    return workspace_out(await workspace_views.get_workspace(ctx, started.workspace.id))


@router.get("/workspaces")
async def list_workspaces(
    ctx: CtxDep, all_users: Annotated[bool, Query(alias="all")] = False
) -> list[WorkspaceOut]:
    return [
        workspace_out(v) for v in await workspace_views.list_workspaces(ctx, all_users=all_users)
    ]


@router.get("/workspaces/{workspace}")
async def get_workspace(workspace: WorkspaceDep, ctx: CtxDep) -> WorkspaceOut:
    return workspace_out(await workspace_views.get_workspace(ctx, workspace.id))


@router.post(
    "/workspaces/{workspace}/builds",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": BuildOut, "description": "Nothing to do; the latest build"}},
)
async def create_build(
    workspace: WorkspaceDep, body: BuildRequest, ctx: CtxDep, response: Response
) -> BuildOut:
    started = await workspaces.transition_workspace(ctx, workspace.id, Transition(body.transition))
    if not started.new_build:
        response.status_code = status.HTTP_200_OK
    return BuildOut.of(started.build, started.job)


@router.delete("/workspaces/{workspace}", status_code=status.HTTP_202_ACCEPTED)
async def delete_workspace(workspace: WorkspaceDep, ctx: CtxDep) -> BuildOut:
    started = await workspaces.transition_workspace(ctx, workspace.id, Transition.DELETE)
    return BuildOut.of(started.build, started.job)


@router.post("/workspaces/{workspace}/cancel")
async def cancel_build(workspace: WorkspaceDep, ctx: CtxDep) -> JobOut:
    return JobOut.of(await workspaces.cancel_build(ctx, workspace.id))


@router.put("/workspaces/{workspace}/ttl")
async def update_ttl(workspace: WorkspaceDep, body: TTLRequest, ctx: CtxDep) -> WorkspaceOut:
    updated = await workspaces.update_ttl(ctx, workspace.id, _duration_ms(body.ttl, "ttl") or None)
    return workspace_out(await workspace_views.get_workspace(ctx, updated.id))


@router.get("/workspaces/{workspace}/logs")
async def get_logs(workspace: WorkspaceDep, ctx: CtxDep, after: int = 0) -> list[LogOut]:
    """The latest build's log lines with an id above ``after``."""
    _, logs = await workspace_views.build_logs(ctx, workspace.id, after_id=after)
    return [LogOut.of(entry) for entry in logs]


@router.get("/workspaces/{workspace}/agent-logs")
async def get_agent_logs(workspace: WorkspaceDep, ctx: CtxDep, after: int = 0) -> list[AgentLogOut]:
    """The agents' script output with an id above ``after`` (the agents of the latest
    build, or after a stop those of the last start, whose stop scripts ran last)."""
    lines = await workspace_views.script_logs(ctx, workspace.id, after_id=after)
    return [AgentLogOut.of(line) for line in lines]


@router.get("/workspaces/{workspace}/watch", response_class=EventSourceResponse)
async def watch(
    workspace: WorkspaceDep,
    ctx: CtxDep,
    runtime: RuntimeDep,
    after: int = 0,
    after_agent_log: int = 0,
) -> AsyncIterator[ServerSentEvent]:
    """Server-Sent Events: ``log`` for each build log line (id above ``after``),
    ``agent-log`` for each line of the agents' scripts (id above ``after_agent_log``),
    ``workspace`` on each change.

    Ends after the latest build is done and its agents have left ``created``/``starting``.
    """
    view, logs = await workspace_views.build_logs(ctx, workspace.id, after_id=after)
    channels = [messages.workspace(workspace.id)]
    if view.build:
        channels += [messages.job(view.build.job_id), messages.job_logs(view.build.job_id)]
    async with runtime.follow(*channels) as events:
        last, last_agent = after, after_agent_log
        out = workspace_out(view)
        while True:
            try:
                view, logs = await workspace_views.build_logs(ctx, workspace.id, after_id=last)
                lines = await workspace_views.script_logs(ctx, workspace.id, after_id=last_agent)
            except NotFound:  # deleted while watched: say so, then end the stream
                gone = out.model_copy(update={"status": "deleted"})
                yield ServerSentEvent(event="workspace", data=gone.model_dump(mode="json"))
                return
            for entry in logs:
                last = entry.id
                yield ServerSentEvent(
                    event="log", id=str(entry.id), data=LogOut.of(entry).model_dump(mode="json")
                )
            for line in lines:
                last_agent = line.log.id
                data = AgentLogOut.of(line).model_dump(mode="json")
                yield ServerSentEvent(event="agent-log", data=data)
            out = workspace_out(view)
            yield ServerSentEvent(event="workspace", data=out.model_dump(mode="json"))
            if _settled(out):
                return
            try:
                await events.get(timeout=FOLLOW_RECHECK_SECONDS)
            except SubscriptionClosed:
                return  # the server is stopping


def _settled(out: WorkspaceOut) -> bool:
    if out.status in ("pending", "starting", "stopping", "deleting", "canceling"):
        return False
    if out.status != "running":
        return True
    return all(a.lifecycle_state not in ("created", "starting") or a.external for a in out.agents)


@router.post("/workspaces/{workspace}/exec")
async def exec_command(
    workspace: WorkspaceDep, body: ExecRequest, ctx: CtxDep, runtime: RuntimeDep
) -> ExecOut:
    result = await execs.exec_command(
        ctx,
        runtime.gateway,
        workspace.id,
        body.command,
        timeout_ms=_duration_ms(body.timeout, "timeout") or 1,
        workdir=body.workdir,
        env=body.env,
    )
    return ExecOut(
        exit_code=result.exit_code,
        stdout=result.stdout,
        stderr=result.stderr,
        timed_out=result.timed_out,
        truncated=result.truncated,
        wall_duration_ms=result.wall_duration_ms,
    )


@router.post("/workspaces/{workspace}/agents/{agent}/token")
async def external_agent_token(
    workspace: WorkspaceDep, agent: str, ctx: CtxDep, runtime: RuntimeDep
) -> AgentTokenOut:
    """A new token for an external agent (the previous one stops working)."""
    issued = await workspaces.issue_external_agent_token(ctx, workspace.id, agent)
    url = runtime.settings.resolved_access_url()
    return AgentTokenOut(
        agent_id=issued.agent_id,
        agent_name=issued.agent_name,
        token=issued.token,
        command=f"berth agent --url {url} --token {issued.token}",
    )
