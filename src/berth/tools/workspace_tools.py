"""What every workspace tool (spec §13) does first: find the chat's agent, record activity.

The tools resolve the chat's workspace and its chat agent (spec §7), refuse with a text
error when there is none or it cannot be reached, count the call as workspace activity
(``last_used_at`` and, with a TTL, the autostop ``deadline``), and then call one agent
RPC through the gateway. Agent errors become text errors carrying the agent's message.

Lookups run as the ``chat-tools`` system actor; the activity update runs as the chat's
owner, since only the owner may change the workspace. Early returns are
:class:`~berth.errors.ToolError` s.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from berth.domain.agents import AgentSelectionError, select_chat_agent
from berth.domain.enums import AgentStatus, JobStatus, Transition
from berth.errors import AgentCallError, AgentUnavailable, ToolError
from berth.records import Workspace, WorkspaceAgent
from berth.services import chats, workspaces
from berth.tools.context import ChatContext
from berth.tools.result import ToolResult
from berth.tools.waits import external_agent_message, status_of

log = logging.getLogger("berth.tools")

NO_WORKSPACE = "chat has no workspace; use create_workspace first"
WORKSPACE_DELETED = "workspace was deleted; use create_workspace to make a new one"
NOT_CONFIGURED = "workspace agent connection is not configured"

RPC_SECONDS = 60.0
"""How long a quick RPC (files, process list, signals) may take."""
RPC_MARGIN_SECONDS = 30.0
"""Slack on top of a waiting RPC's own timeout (``exec``, ``process_output``)."""

_STATUS_REASONS = {
    AgentStatus.CONNECTING: "the agent has not connected yet",
    AgentStatus.DISCONNECTED: "the agent is disconnected",
    AgentStatus.TIMEOUT: "the agent did not connect within its connection timeout",
    AgentStatus.CONNECTED: "the agent is not connected to this server",
}


def unreachable(reason: str) -> str:
    """[agent.status] The text error for an agent the tool cannot talk to."""
    return (
        f"the workspace agent is unreachable: {reason}. If the workspace is stopped, use "
        "start_workspace to start it, then try again."
    )


@dataclass(frozen=True, slots=True)
class Target:
    """The chat's workspace and the agent the tools talk to."""

    workspace: Workspace
    agent: WorkspaceAgent


async def resolve_target(ctx: ChatContext) -> Target:
    """The chat's workspace and chat agent; :class:`ToolError` when unusable."""
    state = await chats.chat_workspace(ctx.services, ctx.chat_id)
    chat, workspace, build, job = state.chat, state.workspace, state.build, state.job
    if chat is None:
        raise ToolError("load chat: chat not found")
    if chat.workspace_id is None:
        raise ToolError(NO_WORKSPACE)
    if workspace is None:
        raise ToolError("load workspace: workspace not found")
    if workspace.deleted:
        raise ToolError(WORKSPACE_DELETED)
    if build is None:
        raise ToolError("get latest build: workspace build not found")
    if job is None:
        raise ToolError("get provisioner job: provisioner job not found")
    if build.transition != Transition.START:
        raise ToolError(unreachable("the workspace is stopped"))
    if job.status in (JobStatus.PENDING, JobStatus.RUNNING):
        raise ToolError(unreachable("the workspace is still starting"))
    if job.status != JobStatus.SUCCEEDED:
        raise ToolError(unreachable(f"the workspace's last start build {job.status}"))
    agent = _chat_agent(state.agents, chat.agent_id)
    if ctx.gateway is None:
        raise ToolError(NOT_CONFIGURED)
    if not await ctx.gateway.reachable(agent.id):
        if agent.external:
            raise ToolError(external_agent_message(agent))
        raise ToolError(unreachable(_STATUS_REASONS[status_of(ctx, agent)]))
    return Target(workspace, agent)


def _chat_agent(agents: list[WorkspaceAgent], bound: uuid.UUID | None) -> WorkspaceAgent:
    """[agentselect] The agent bound to the chat if it is one of these, else the selection."""
    for agent in agents:
        if agent.id == bound and agent.parent_id is None:
            return agent
    try:
        return select_chat_agent(agents)
    except AgentSelectionError as exc:
        raise ToolError(str(exc)) from exc


async def record_activity(ctx: ChatContext, workspace: Workspace) -> None:
    """Count the call as workspace activity, as the owner; a failure is only logged.

    ``workspace`` is the row :func:`resolve_target` just read: within
    ``ACTIVITY_EVERY`` of the last use there is nothing to write, and no transaction
    (the owner's roles, the row again) is opened to find that out."""
    if not workspaces.activity_due(workspace, ctx.clock.now()):
        return
    try:
        await workspaces.record_activity(await ctx.as_owner(), workspace.id)
    except Exception:
        log.warning("chat %s: could not record workspace activity", ctx.chat_id, exc_info=True)


async def call_agent(
    ctx: ChatContext,
    target: Target,
    method: str,
    params: Mapping[str, Any],
    *,
    within: float = RPC_SECONDS,
) -> dict[str, Any]:
    """One RPC; an unreachable agent or an agent error becomes :class:`ToolError`."""
    if ctx.gateway is None:  # resolve_target refused already; keep the same answer
        raise ToolError(NOT_CONFIGURED)
    try:
        return await ctx.gateway.call(target.agent.id, method, params, within=within)
    except AgentUnavailable as exc:
        raise ToolError(unreachable(str(exc))) from exc
    except AgentCallError as exc:
        raise ToolError(exc.message) from exc


async def run_workspace_tool(
    ctx: ChatContext, body: Callable[[Target], Awaitable[ToolResult]]
) -> ToolResult:
    """Resolve the target, record activity, run ``body``; early returns are text errors."""
    try:
        target = await resolve_target(ctx)
        await record_activity(ctx, target.workspace)
        return await body(target)
    except ToolError as exc:
        return ToolResult.error(exc.message)
