"""Waiting for builds and agents (spec §3), woken by events instead of polling.

Each wait subscribes to the channel of what it waits on before its first check, so
no change is missed between the check and the wait; it re-checks at the spec's
interval anyway in case an event was lost. Reads go through the services as the
``chat-tools`` system actor, which may read builds, jobs and agents. A build that did
not succeed is :class:`~berth.errors.BuildFailed`, its message the reference's text.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from typing import Any

from berth.domain.agents import AgentSelectionError, agent_status, select_chat_agent
from berth.domain.enums import AgentLifecycle, AgentStatus, JobStatus
from berth.errors import AgentCallError, AgentUnavailable, BuildFailed
from berth.events import Subscription, listening, messages, pause
from berth.records import WorkspaceAgent
from berth.services import agents, workspace_views
from berth.tools.context import ChatContext

EXTERNAL_NOT_CONNECTED = (
    "workspace uses an externally managed agent that has not connected yet. The user needs "
    "to start the workspace externally and make sure the external agent is connected, "
    "then try again"
)
EXTERNAL_OFFLINE = (
    "workspace uses an externally managed agent that is currently offline. The user needs "
    "to reconnect the external agent on its host, then try again"
)


def external_agent_message(agent: WorkspaceAgent) -> str:
    """Spec §9: what to tell the model about an external agent that is not reachable."""
    return EXTERNAL_OFFLINE if agent.first_connected_at is not None else EXTERNAL_NOT_CONNECTED


async def wait_for_build(ctx: ChatContext, build_id: uuid.UUID) -> None:
    """Return when the build's job succeeded; :class:`BuildFailed` otherwise (spec §3.1)."""
    timings = ctx.timings
    try:
        async with asyncio.timeout(timings.build_timeout.total_seconds()):
            await _build_loop(ctx, build_id)
    except TimeoutError:
        raise BuildFailed(
            "timed out waiting for workspace build: context deadline exceeded"
        ) from None


async def _build_loop(ctx: ChatContext, build_id: uuid.UUID) -> None:
    build = await workspace_views.get_build(ctx.services, build_id)
    if build is None:
        raise BuildFailed("get build: workspace build not found")
    async with listening(ctx.bus, messages.job(build.job_id)) as events:
        while True:
            job = await workspace_views.get_job(ctx.services, build.job_id)
            if job is None:
                raise BuildFailed("get provisioner job: provisioner job not found")
            match job.status:
                case JobStatus.SUCCEEDED:
                    return
                case JobStatus.FAILED:
                    raise BuildFailed(job.error or "build failed", code=job.error_code)
                case JobStatus.CANCELED:
                    raise BuildFailed("build was canceled")
                case JobStatus.PENDING | JobStatus.RUNNING | JobStatus.CANCELING:
                    pass
                case _:
                    raise BuildFailed(f"unexpected job status: {job.status}")
            await pause(events, ctx.timings.build_poll_interval.total_seconds())


async def wait_for_agent_ready(
    ctx: ChatContext,
    agent: WorkspaceAgent,
    *,
    connect: bool,
    result: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Spec §3.2: the map merged into a tool result; empty when the agent is ready.

    ``connect`` runs the connect phase (the reference skips it when the agent is known
    to be connected). ``result`` may be passed in so a caller that is cancelled still
    sees ``startup_scripts_unknown``.
    """
    out: dict[str, Any] = {} if result is None else result
    async with listening(ctx.bus, messages.agent(agent.id)) as events:
        if (
            connect
            and ctx.gateway is not None
            and not await _connect_phase(ctx, agent, events, out)
        ):
            return out
        await _lifecycle_phase(ctx, agent.id, events, out)
    return out


async def _connect_phase(
    ctx: ChatContext, agent: WorkspaceAgent, events: Subscription | None, out: dict[str, Any]
) -> bool:
    gateway = ctx.gateway
    if gateway is None:  # the caller checked; without a connection there is nothing to try
        return True
    timings = ctx.timings
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timings.agent_connect_timeout.total_seconds()
    last_error = "agent not reachable"
    while True:
        attempt_started = loop.time()
        try:
            await gateway.call(
                agent.id, "ping", {}, within=timings.agent_attempt_timeout.total_seconds()
            )
            return True
        except (AgentUnavailable, AgentCallError) as exc:
            last_error = str(exc)
        remaining = deadline - loop.time()
        if remaining <= 0:
            out["agent_status"] = "not_ready"
            out["agent_error"] = (
                external_agent_message(await _reload(ctx, agent)) if agent.external else last_error
            )
            return False
        # Attempts at least the retry interval apart, unless the agent's connect event
        # arrives first (then retry at once).
        gap = timings.agent_retry_interval.total_seconds() - (loop.time() - attempt_started)
        await pause(events, max(0.0, min(gap, remaining)))


def status_of(ctx: ChatContext, agent: WorkspaceAgent) -> AgentStatus:
    """[agent.status] The agent's connection status now."""
    return agent_status(
        created_at=agent.created_at,
        first_connected_at=agent.first_connected_at,
        last_connected_at=agent.last_connected_at,
        disconnected_at=agent.disconnected_at,
        connection_timeout=dt.timedelta(seconds=agent.connection_timeout_seconds),
        now=ctx.clock.now(),
        inactive_timeout=ctx.inactive_disconnect_timeout,
    )


async def _reload(ctx: ChatContext, agent: WorkspaceAgent) -> WorkspaceAgent:
    return await agents.get_agent(ctx.services, agent.id) or agent


async def _lifecycle_phase(
    ctx: ChatContext, agent_id: uuid.UUID, events: Subscription | None, out: dict[str, Any]
) -> None:
    timings = ctx.timings
    try:
        async with asyncio.timeout(timings.startup_script_timeout.total_seconds()):
            while True:
                state = await _lifecycle_state(ctx, agent_id)
                if state == AgentLifecycle.READY:
                    return
                if state is not None and state not in (
                    AgentLifecycle.CREATED,
                    AgentLifecycle.STARTING,
                ):
                    out["startup_scripts"] = "startup_scripts_failed"
                    out["lifecycle_state"] = state
                    with contextlib.suppress(Exception):  # lookup errors are ignored
                        if failed := await agents.failed_start_script(ctx.services, agent_id):
                            out["startup_script_error"] = failed
                    return
                await pause(events, timings.startup_script_poll_interval.total_seconds())
    except TimeoutError:
        out["startup_scripts"] = "startup_scripts_timeout"
    except asyncio.CancelledError:
        out["startup_scripts"] = "startup_scripts_unknown"
        raise


async def _lifecycle_state(ctx: ChatContext, agent_id: uuid.UUID) -> str | None:
    """The agent's lifecycle state; ``None`` when it cannot be read (ignored, spec §3.2)."""
    try:
        agent = await agents.get_agent(ctx.services, agent_id)
    except Exception:
        return None
    return None if agent is None else agent.lifecycle_state


async def merge_agent_readiness(
    ctx: ChatContext, job_id: uuid.UUID, result: dict[str, Any]
) -> None:
    """[cw.agent-select] [cw.agent-wait] Select the build's chat agent and merge its readiness."""
    try:
        found = await agents.agents_of_job(ctx.services, job_id)
    except Exception:
        return
    if not found:
        result["agent_status"] = "no_agent"
        return
    try:
        agent = select_chat_agent(found)
    except AgentSelectionError as exc:
        result["agent_status"] = "selection_error"
        result["agent_error"] = str(exc)
        return
    result.update(await wait_for_agent_ready(ctx, agent, connect=True))
