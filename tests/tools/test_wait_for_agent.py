"""Waiting for the agent (spec §3.2), and the external-agent messages (spec §9).

The wait is called directly with a tool context, against real agent rows; agents report
through the gateway's own writes (``AgentDriver``) or a real
:class:`~berth.agentconn.AgentGateway` serving an in-memory socket.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import anyio
import pytest

from berth.agentconn import AgentGateway
from berth.domain.actors import as_agent_gateway, as_system
from berth.domain.enums import Transition
from berth.records import WorkspaceAgent
from berth.tools.waits import external_agent_message, wait_for_agent_ready
from tests.support.standins import LoopbackSocket
from tests.support.timings import LONG, MS, WAIT, timings
from tests.support.tool_results import NOT_CONNECTED, background, finished, result_of
from tests.support.tools import World

pytestmark = pytest.mark.anyio


EXTERNAL_NOT_CONNECTED = (
    "workspace uses an externally managed agent that has not connected yet. The user needs "
    "to start the workspace externally and make sure the external agent is connected, then "
    "try again"
)
EXTERNAL_OFFLINE = (
    "workspace uses an externally managed agent that is currently offline. The user needs "
    "to reconnect the external agent on its host, then try again"
)


# --- agents ------------------------------------------------------------------------------


async def quiet_agent(world: World, **template: Any) -> WorkspaceAgent:
    """The agent of a built workspace that has neither connected nor reported anything."""
    world.sim.connect = False
    world.sim.lifecycle = ()
    started = await world.running_workspace(await world.template(**template), "w")
    [agent] = await world.agents(started.job.id)
    assert agent.first_connected_at is None
    assert agent.lifecycle_state == "created"
    return agent


async def ready_result(world: World, agent: WorkspaceAgent, **changes: Any) -> dict[str, Any]:
    with anyio.fail_after(WAIT):
        return await wait_for_agent_ready(world.ctx(**changes), agent, connect=False)


@pytest.mark.spec("wait.agent")
async def test_lifecycle_ready(world: World) -> None:
    agent = await quiet_agent(world)
    slow_polls = timings(startup_script_poll_interval=LONG)
    async with background(ready_result(world, agent, timings=slow_polls)) as waiting:
        await asyncio.sleep(0)
        await world.driver.lifecycle(agent.id, "starting")
        assert not waiting.done()
        await world.driver.lifecycle(agent.id, "ready")
        assert await finished(waiting) == {}


@pytest.mark.spec("wait.agent")
@pytest.mark.parametrize(
    "state",
    ["start_timeout", "start_error", "shutting_down", "shutdown_timeout", "shutdown_error", "off"],
)
async def test_lifecycle_failed(world: World, state: str) -> None:
    agent = await quiet_agent(world)
    await world.driver.lifecycle(agent.id, "starting")
    await world.driver.lifecycle(agent.id, state)
    assert await ready_result(world, agent) == {
        "startup_scripts": "startup_scripts_failed",
        "lifecycle_state": state,
    }


@pytest.mark.spec("wait.agent")
@pytest.mark.parametrize("state", ["created", "starting"])
async def test_lifecycle_timeout(world: World, state: str) -> None:
    agent = await quiet_agent(world)
    await world.driver.lifecycle(agent.id, state)
    short = timings(startup_script_timeout=300 * MS)
    assert await ready_result(world, agent, timings=short) == {
        "startup_scripts": "startup_scripts_timeout"
    }


@pytest.mark.spec("wait.agent")
async def test_lifecycle_lookup_errors_are_ignored(world: World) -> None:
    agent = await quiet_agent(world)
    missing = dataclasses.replace(agent, id=uuid.uuid4())
    short = timings(startup_script_timeout=300 * MS)
    assert await ready_result(world, missing, timings=short) == {
        "startup_scripts": "startup_scripts_timeout"
    }


@pytest.mark.spec("wait.agent")
async def test_lifecycle_wait_cancelled(world: World) -> None:
    agent = await quiet_agent(world)
    out: dict[str, Any] = {}
    waiting = asyncio.ensure_future(
        wait_for_agent_ready(world.ctx(), agent, connect=False, result=out)
    )
    await asyncio.sleep(0)  # its first step: subscribed, then inside the lifecycle loop
    assert f"agent:{agent.id}" in world.bus.channels
    waiting.cancel()
    with anyio.fail_after(WAIT), pytest.raises(asyncio.CancelledError):
        await waiting
    assert out == {"startup_scripts": "startup_scripts_unknown"}


class CountingGateway(AgentGateway):
    """A real gateway that records each connection attempt's time bound."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.attempts: list[float] = []

    async def call(
        self, agent_id: uuid.UUID, method: str, params: Mapping[str, Any], *, within: float
    ) -> dict[str, Any]:
        self.attempts.append(within)
        return await super().call(agent_id, method, params, within=within)


@pytest.mark.spec("wait.agent")
async def test_connect_phase_gives_up_with_the_last_error(world: World) -> None:
    agent = await quiet_agent(world)
    await world.driver.lifecycle(agent.id, "ready")
    gateway = CountingGateway(world)
    window = timings(
        agent_connect_timeout=500 * MS,
        agent_retry_interval=200 * MS,
        agent_attempt_timeout=1500 * MS,
    )
    with anyio.fail_after(WAIT):
        result = await wait_for_agent_ready(
            world.ctx(gateway=gateway, timings=window), agent, connect=True
        )
    assert result == {"agent_status": "not_ready", "agent_error": NOT_CONNECTED}
    assert 2 <= len(gateway.attempts) <= 4, gateway.attempts  # ≥ 200 ms apart in 500 ms
    assert set(gateway.attempts) == {1.5}


async def connect_elsewhere(world: World, agent: WorkspaceAgent) -> None:
    """The agent's row as another replica's gateway writes it: connected there, now."""
    now = world.clock.now()
    async with world.db.write(as_system()) as raw:
        await raw.acting_as(as_agent_gateway()).update_workspace_agent_connection(
            agent.id, first_connected_at=now, last_connected_at=now, replica_id=uuid.uuid4()
        )


@pytest.mark.spec("wait.agent")
async def test_a_stale_connection_on_another_replica_does_not_count(world: World) -> None:
    agent = await quiet_agent(world)
    await connect_elsewhere(world, agent)
    await world.driver.lifecycle(agent.id, "ready")
    world.clock.advance(dt.timedelta(minutes=5))  # past the 30 s inactive timeout
    gateway = CountingGateway(world)
    window = timings(agent_connect_timeout=300 * MS, agent_retry_interval=100 * MS)
    with anyio.fail_after(WAIT):
        result = await wait_for_agent_ready(
            world.ctx(gateway=gateway, timings=window), agent, connect=True
        )
    assert result["agent_status"] == "not_ready"
    assert gateway.attempts, "it fell back to pinging"


@pytest.mark.spec("wait.agent")
async def test_connect_phase_skipped_when_told_or_without_a_gateway(world: World) -> None:
    agent = await quiet_agent(world)
    await world.driver.lifecycle(agent.id, "ready")
    gateway = CountingGateway(world)
    assert await ready_result(world, agent, gateway=gateway) == {}
    assert gateway.attempts == []
    with anyio.fail_after(WAIT):
        assert await wait_for_agent_ready(world.ctx(), agent, connect=True) == {}


@pytest.mark.spec("wait.agent")
async def test_connect_phase_wakes_when_the_agent_connects(world: World) -> None:
    """Retries are a minute apart, so only the agent's connect event can end the wait."""
    agent = await quiet_agent(world)
    gateway = AgentGateway()
    ctx = world.ctx(
        gateway=gateway,
        timings=timings(agent_retry_interval=LONG, startup_script_poll_interval=LONG),
    )
    socket = LoopbackSocket()
    async with background(wait_for_agent_ready(ctx, agent, connect=True)) as waiting:
        await asyncio.sleep(0)  # its first attempt fails: nothing is connected
        async with background(world.serve(gateway, agent, socket)):
            socket.report({"type": "lifecycle", "state": "starting"})
            socket.report({"type": "lifecycle", "state": "ready"})
            assert await finished(waiting) == {}
    assert (await world.agent(agent.id)).lifecycle_state == "ready"


# --- external agents (spec §9) -----------------------------------------------------------


@pytest.mark.spec("external")
def test_external_agent_messages() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    never = _agent_row(first_connected_at=None)
    before = _agent_row(first_connected_at=now)
    assert external_agent_message(never) == EXTERNAL_NOT_CONNECTED
    assert external_agent_message(before) == EXTERNAL_OFFLINE


@pytest.mark.spec("external", "wait.agent")
async def test_external_agent_not_ready(world: World) -> None:
    agent = await quiet_agent(world, agents=[{"name": "laptop", "external": True}])
    assert agent.external
    gateway = AgentGateway()
    window = timings(agent_connect_timeout=300 * MS)
    ctx = world.ctx(gateway=gateway, timings=window)
    with anyio.fail_after(WAIT):
        result = await wait_for_agent_ready(ctx, agent, connect=True)
    assert result == {"agent_status": "not_ready", "agent_error": EXTERNAL_NOT_CONNECTED}
    # It connected once (to another replica, say) and went away: offline now.
    await world.driver.connect(agent.id)
    await world.driver.disconnect(agent.id)
    with anyio.fail_after(WAIT):
        result = await wait_for_agent_ready(ctx, agent, connect=True)
    assert result == {"agent_status": "not_ready", "agent_error": EXTERNAL_OFFLINE}


@pytest.mark.spec("external", "sw.flow")
async def test_start_workspace_with_an_external_agent(world: World) -> None:
    """create_workspace refuses such templates; a workspace made elsewhere can be started."""
    agent = await quiet_agent(world, agents=[{"name": "laptop", "external": True, "chat": True}])
    [workspace] = await world.workspaces()
    stopping = await world.transition(workspace.id, Transition.STOP)
    await world.wait_job(stopping.job.id)
    result = await world.call(
        "start_workspace",
        gateway=AgentGateway(),
        timings=timings(agent_connect_timeout=300 * MS),
    )
    assert result_of(result) == {
        "started": True,
        "workspace_name": "w",
        "build_id": result_of(result)["build_id"],
        "agent_status": "not_ready",
        "agent_error": EXTERNAL_NOT_CONNECTED,
    }
    assert agent.name == "laptop"


def _agent_row(*, first_connected_at: dt.datetime | None) -> WorkspaceAgent:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return WorkspaceAgent(
        id=uuid.uuid4(),
        resource_id=uuid.uuid4(),
        parent_id=None,
        name="laptop",
        display_order=0,
        chat=True,
        external=True,
        directory="",
        env={},
        auth_token_hash=b"",
        connection_timeout_seconds=0,
        first_connected_at=first_connected_at,
        last_connected_at=first_connected_at,
        disconnected_at=None,
        last_connected_replica_id=None,
        lifecycle_state="created",
        started_at=None,
        ready_at=None,
        claimed_at=None,
        created_at=now,
        updated_at=now,
    )
