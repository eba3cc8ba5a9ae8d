"""[cw.existing] What to do about the chat's current workspace before creating one.

The outcomes of spec §1.3: proceed to create; return the existing workspace; or report
a failed build of the existing workspace. Checked before any template lookup, so a chat
with a running workspace gets it back whatever ``template_id`` it passed.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from berth.domain.agents import AgentSelectionError, select_chat_agent
from berth.domain.enums import AgentStatus, JobStatus, Transition
from berth.errors import BuildFailed
from berth.records import WorkspaceAgent
from berth.services import agents, chats, workspace_views
from berth.tools.chats import bind_workspace
from berth.tools.context import ChatContext
from berth.tools.responses import BuildAction
from berth.tools.waits import status_of, wait_for_agent_ready, wait_for_build

log = logging.getLogger("berth.tools")


@dataclass
class Existing:
    """The check's outcome: ``done`` with a result, a build failure, an error, or proceed."""

    result: dict[str, Any] = field(default_factory=lambda: dict[str, Any]())
    done: bool = False
    build_action: BuildAction = "create"
    build_id: uuid.UUID | None = None
    build_error: BuildFailed | None = None
    error: str | None = None


def pick_agent(agents: list[WorkspaceAgent]) -> WorkspaceAgent:
    """The chat agent, falling back to the first agent when selection fails."""
    try:
        return select_chat_agent(agents)
    except AgentSelectionError as exc:
        log.debug("agent selection failed, falling back to the first agent: %s", exc)
        return agents[0]


async def check_existing(ctx: ChatContext) -> Existing:
    current = await chats.chat_workspace(ctx.services, ctx.chat_id)
    chat, workspace, build, job = current.chat, current.workspace, current.build, current.job
    if chat is None:
        return Existing(error="load chat: chat not found")
    if chat.workspace_id is None:
        return Existing()  # [cw.existing.none]
    if workspace is None:
        return Existing(error="load workspace: workspace not found")
    if workspace.deleted:
        return Existing()  # [cw.existing.deleted]
    if build is None or job is None:
        return Existing()  # [cw.existing.unreadable]
    roots = [a for a in current.agents if a.parent_id is None] or current.agents
    if job.status in (JobStatus.PENDING, JobStatus.RUNNING):
        return await _building(ctx, workspace.id, workspace.name, build.id, build.transition)
    if job.status == JobStatus.SUCCEEDED:
        if build.transition == Transition.STOP:
            return Existing(  # [cw.existing.stopped]
                result={
                    "created": False,
                    "workspace_name": workspace.name,
                    "status": "stopped",
                    "message": "workspace is stopped; use start_workspace to start it",
                },
                done=True,
            )
        if not roots:
            return Existing()  # [cw.existing.dead-agent]: no agents
        return await _running(ctx, workspace.name, pick_agent(roots))
    return Existing()  # [cw.existing.failed]


async def _building(
    ctx: ChatContext, workspace_id: uuid.UUID, name: str, build_id: uuid.UUID, transition: str
) -> Existing:
    """[cw.existing.building] Publish the binding, wait for the build, then the agent."""
    await bind_workspace(ctx, workspace_id, build_id)
    try:
        await wait_for_build(ctx, build_id)
    except BuildFailed as exc:
        action: BuildAction = "start" if transition == Transition.START else "create"
        failure = BuildFailed(f"existing workspace build failed: {exc.message}", code=exc.code)
        return Existing(build_action=action, build_id=build_id, build_error=failure)
    result: dict[str, Any] = {
        "created": False,
        "workspace_name": name,
        "status": "already_exists",
        "message": "workspace build completed",
        "build_id": str(build_id),
    }
    build = await workspace_views.get_build(ctx.services, build_id)
    found = await agents.agents_of_job(ctx.services, build.job_id) if build else []
    roots = [a for a in found if a.parent_id is None] or found
    if roots:
        result.update(await wait_for_agent_ready(ctx, pick_agent(roots), connect=True))
    return Existing(result=result, done=True)


async def _running(ctx: ChatContext, name: str, agent: WorkspaceAgent) -> Existing:
    """[cw.existing.running] Return the workspace while its agent is alive."""
    status = status_of(ctx, agent)
    result: dict[str, Any] = {"created": False, "workspace_name": name, "status": "already_exists"}
    if status is AgentStatus.CONNECTED:
        result["message"] = "workspace is already running and recently connected"
        result.update(await wait_for_agent_ready(ctx, agent, connect=False))
        return Existing(result=result, done=True)
    if status is AgentStatus.CONNECTING:
        result["message"] = "workspace exists and the agent is still connecting"
        result.update(await wait_for_agent_ready(ctx, agent, connect=True))
        return Existing(result=result, done=True)
    return Existing()  # [cw.existing.dead-agent]: disconnected or timed out
