"""Waiting for builds and agents (spec §3), woken by events instead of polling.

Each wait subscribes to the channel of what it waits on before its first check, so
no change is missed between the check and the wait; it re-checks at the spec's
interval anyway in case an event was lost. Reads run as the ``chat-tools`` system
actor, which may read builds, jobs and agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from berth.agentconn import AgentCallError, AgentUnavailable
from berth.db.authz import AuthzStore
from berth.domain.actors import as_chat_tools
from berth.domain.agents import AgentSelectionError, agent_status, select_chat_agent
from berth.domain.enums import AgentLifecycle, AgentStatus, JobStatus
from berth.events import Subscription
from berth.records import WorkspaceAgent
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


class BuildError(Exception):
    """A build that did not succeed; ``code`` is the job's error code (``INSUFFICIENT_QUOTA``)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def external_agent_message(agent: WorkspaceAgent) -> str:
    """Spec §9: what to tell the model about an external agent that is not reachable."""
    return EXTERNAL_OFFLINE if agent.first_connected_at is not None else EXTERNAL_NOT_CONNECTED


@contextlib.asynccontextmanager
async def _subscribed(ctx: ChatContext, channel: str) -> AsyncGenerator[Subscription | None]:
    if ctx.bus is None:
        yield None
        return
    async with ctx.bus.subscribe(channel) as subscription:
        yield subscription


async def _pause(subscription: Subscription | None, seconds: float) -> None:
    """Until an event arrives or ``seconds`` pass."""
    if subscription is None:
        await asyncio.sleep(seconds)
    else:
        await subscription.get(timeout=seconds)


async def wait_for_build(ctx: ChatContext, build_id: uuid.UUID) -> None:
    """Return when the build's job succeeded; :class:`BuildError` otherwise (spec §3.1)."""
    timings = ctx.timings
    try:
        async with asyncio.timeout(timings.build_timeout.total_seconds()):
            await _build_loop(ctx, build_id)
    except TimeoutError:
        raise BuildError(
            "timed out waiting for workspace build: context deadline exceeded"
        ) from None


async def _build_loop(ctx: ChatContext, build_id: uuid.UUID) -> None:
    async with ctx.db.read() as raw:
        build = await AuthzStore(raw, as_chat_tools()).get_workspace_build_by_id(build_id)
    if build is None:
        raise BuildError("get build: workspace build not found")
    async with _subscribed(ctx, f"job:{build.job_id}") as events:
        while True:
            async with ctx.db.read() as raw:
                job = await AuthzStore(raw, as_chat_tools()).get_provisioner_job_by_id(build.job_id)
            if job is None:
                raise BuildError("get provisioner job: provisioner job not found")
            match job.status:
                case JobStatus.SUCCEEDED:
                    return
                case JobStatus.FAILED:
                    raise BuildError(job.error or "build failed", job.error_code)
                case JobStatus.CANCELED:
                    raise BuildError("build was canceled")
                case JobStatus.PENDING | JobStatus.RUNNING | JobStatus.CANCELING:
                    pass
                case _:
                    raise BuildError(f"unexpected job status: {job.status}")
            await _pause(events, ctx.timings.build_poll_interval.total_seconds())


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
    async with _subscribed(ctx, f"agent:{agent.id}") as events:
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
    assert ctx.gateway is not None
    timings = ctx.timings
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timings.agent_connect_timeout.total_seconds()
    last_error = "agent not reachable"
    while True:
        attempt_started = loop.time()
        try:
            if not ctx.gateway.is_connected(agent.id) and await _held_by_another_replica(
                ctx, agent
            ):
                return True
            await ctx.gateway.call(
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
        await _pause(events, max(0.0, min(gap, remaining)))


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


async def _held_by_another_replica(ctx: ChatContext, agent: WorkspaceAgent) -> bool:
    """Whether the agent is connected, live, to another server replica.

    Its WebSocket then ends on that replica; this one cannot ping it (RPC relay between
    replicas is not built yet), but the connection is real, and recent, per the row
    that replica keeps current with the agent's heartbeats.
    """
    assert ctx.gateway is not None
    fresh = await _reload(ctx, agent)
    other = fresh.last_connected_replica_id not in (None, ctx.gateway.replica_id)
    return other and status_of(ctx, fresh) is AgentStatus.CONNECTED


async def _reload(ctx: ChatContext, agent: WorkspaceAgent) -> WorkspaceAgent:
    async with ctx.db.read() as raw:
        fresh = await AuthzStore(raw, as_chat_tools()).get_workspace_agent_by_id(agent.id)
    return fresh or agent


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
                    return
                await _pause(events, timings.startup_script_poll_interval.total_seconds())
    except TimeoutError:
        out["startup_scripts"] = "startup_scripts_timeout"
    except asyncio.CancelledError:
        out["startup_scripts"] = "startup_scripts_unknown"
        raise


async def _lifecycle_state(ctx: ChatContext, agent_id: uuid.UUID) -> str | None:
    """The agent's lifecycle state; ``None`` when it cannot be read (ignored, spec §3.2)."""
    try:
        async with ctx.db.read() as raw:
            agent = await AuthzStore(raw, as_chat_tools()).get_workspace_agent_by_id(agent_id)
    except Exception:
        return None
    return None if agent is None else agent.lifecycle_state


async def merge_agent_readiness(
    ctx: ChatContext, job_id: uuid.UUID, result: dict[str, Any]
) -> None:
    """[cw.agent-select] [cw.agent-wait] Select the build's chat agent and merge its readiness."""
    try:
        async with ctx.db.read() as raw:
            agents = await AuthzStore(raw, as_chat_tools()).list_workspace_agents_by_job(job_id)
    except Exception:
        return
    if not agents:
        result["agent_status"] = "no_agent"
        return
    try:
        agent = select_chat_agent(agents)
    except AgentSelectionError as exc:
        result["agent_status"] = "selection_error"
        result["agent_error"] = str(exc)
        return
    result.update(await wait_for_agent_ready(ctx, agent, connect=True))
