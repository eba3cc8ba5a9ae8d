"""Where a call for an agent another replica holds goes, and how it fails (DESIGN §7).

The registry's :meth:`~berth.services.replicas.Registry.locate` against real rows (a
fake clock moves the heartbeats' age); the relay against real HTTP: a port nothing
listens on, and a second gateway behind the real relay endpoint that does not hold the
agent. The calls through two real server processes are in ``tests/replicas``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import types
import uuid
from collections.abc import AsyncGenerator

import anyio
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from berth.agentconn import AgentGateway, Peer, Relay, Verifier
from berth.agentconn.relay import NOT_CONNECTED
from berth.api.relay_endpoint import relay_route
from berth.domain.actors import as_agent_gateway, as_mesh, as_system
from berth.errors import AgentUnavailable
from berth.records import WorkspaceAgent
from berth.services.base import Ctx
from berth.services.replicas import Registry
from berth.tools.waits import wait_for_agent_ready
from tests.support.standins import LoopbackSocket
from tests.support.tool_results import background
from tests.support.tools import World
from tests.tools.test_wait_for_agent import quiet_agent

pytestmark = pytest.mark.anyio

SECRET = "test-mesh-secret"


def registry_of(world: World, replica_id: uuid.UUID, relay_url: str) -> Registry:
    return Registry(Ctx(world.db, as_mesh(), world.bus), replica_id, relay_url=relay_url)


async def connect_to(world: World, agent: WorkspaceAgent, replica_id: uuid.UUID) -> None:
    """The agent's row as ``replica_id``'s gateway writes it: connected there, now."""
    now = world.clock.now()
    async with world.db.write(as_system()) as raw:
        await raw.acting_as(as_agent_gateway()).update_workspace_agent_connection(
            agent.id, first_connected_at=now, last_connected_at=now, replica_id=replica_id
        )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_locate_finds_the_live_replica_holding_the_agent(world: World) -> None:
    agent = await quiet_agent(world)
    here = registry_of(world, uuid.uuid4(), "http://127.0.0.1:1")
    there = registry_of(world, uuid.uuid4(), "http://10.0.0.2:7080")
    await here.register()
    await there.register()
    assert await here.locate(agent.id) == NOT_CONNECTED  # never connected
    assert await here.locate(uuid.uuid4()) == NOT_CONNECTED  # no such agent

    await connect_to(world, agent, there.replica_id)
    assert await here.locate(agent.id) == Peer(
        there.replica_id, there.hostname, "http://10.0.0.2:7080"
    )
    # Recorded on this very replica, yet not held here: it just went.
    assert await there.locate(agent.id) == NOT_CONNECTED

    world.clock.advance(dt.timedelta(seconds=20))  # past STALE_AFTER, no heartbeat
    stale = await here.locate(agent.id)
    assert isinstance(stale, str)
    assert "has not been heard from for 20s" in stale
    assert "try again in a few seconds" in stale
    await there.heartbeat()
    assert isinstance(await here.locate(agent.id), Peer)

    await there.deregister()  # a clean shutdown
    gone = await here.locate(agent.id)
    assert isinstance(gone, str)
    assert "has shut down" in gone

    await there.register()
    async with world.db.write(as_system()) as raw:
        await raw.acting_as(as_agent_gateway()).update_workspace_agent_connection(
            agent.id, disconnected_at=world.clock.now()
        )
    assert await here.locate(agent.id) == NOT_CONNECTED


async def test_a_replica_that_cannot_be_reached_fails_fast_and_clearly(world: World) -> None:
    agent = await quiet_agent(world)
    url = f"http://127.0.0.1:{closed_port()}"
    here = registry_of(world, uuid.uuid4(), "http://127.0.0.1:1")
    there = registry_of(world, uuid.uuid4(), url)
    await there.register()
    await connect_to(world, agent, there.replica_id)
    relay = Relay(here.replica_id, SECRET, here)
    gateway = AgentGateway(here.replica_id, relay=relay)
    try:
        assert await gateway.reachable(agent.id)
        with anyio.fail_after(5):
            with pytest.raises(AgentUnavailable, match="cannot be reached at") as first:
                await gateway.call(agent.id, "ping", {}, within=60)
            assert url in str(first.value)
            # Marked unreachable: not even tried again for a while.
            assert not await gateway.reachable(agent.id)
            with pytest.raises(AgentUnavailable, match="try again in a few seconds"):
                await gateway.notify(agent.id, {"type": "shutdown"})
    finally:
        await relay.aclose()


@contextlib.asynccontextmanager
async def relay_endpoint(gateway: AgentGateway) -> AsyncGenerator[tuple[str, list[str]]]:
    """The real relay endpoint in front of ``gateway``, on a loopback port; the URL and
    the paths it was asked for."""
    app = Starlette(routes=[relay_route])
    app.state.runtime = types.SimpleNamespace(
        gateway=gateway, relay_verifier=Verifier(gateway.replica_id, SECRET)
    )
    asked: list[str] = []

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            asked.append(str(scope["path"]))
        await app(scope, receive, send)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(counting, log_level="warning", lifespan="off"))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(lambda: server.serve(sockets=[sock]))
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}", asked
        finally:
            server.should_exit = True
    sock.close()


async def test_a_replica_that_does_not_hold_the_agent_says_so_and_nothing_loops(
    world: World,
) -> None:
    agent = await quiet_agent(world)
    elsewhere = AgentGateway(uuid.uuid4())  # holds no agent at all
    async with relay_endpoint(elsewhere) as (url, asked):
        here = registry_of(world, uuid.uuid4(), "http://127.0.0.1:1")
        there = registry_of(world, elsewhere.replica_id, url)
        await there.register()
        await connect_to(world, agent, there.replica_id)
        relay = Relay(here.replica_id, SECRET, here)
        try:
            with anyio.fail_after(10):
                with pytest.raises(AgentUnavailable, match=NOT_CONNECTED):
                    await AgentGateway(here.replica_id, relay=relay).call(
                        agent.id, "ping", {}, within=5
                    )
        finally:
            await relay.aclose()
    # Asked once; its "not here" sent the caller back to the registry, which still
    # names the same replica: not asked again.
    assert asked == ["/api/v1/internal/relay"]


@contextlib.asynccontextmanager
async def dies_mid_call() -> AsyncGenerator[str]:
    """A "replica" that takes the relayed request and then dies: it closes the
    connection without an answer."""

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the request's head has arrived
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_call_in_flight_on_a_replica_that_dies_fails_clearly(world: World) -> None:
    agent = await quiet_agent(world)
    async with dies_mid_call() as url:
        here = registry_of(world, uuid.uuid4(), "http://127.0.0.1:1")
        there = registry_of(world, uuid.uuid4(), url)
        await there.register()
        await connect_to(world, agent, there.replica_id)
        relay = Relay(here.replica_id, SECRET, here)
        try:
            with anyio.fail_after(10):
                with pytest.raises(AgentUnavailable, match="during the call") as lost:
                    await AgentGateway(here.replica_id, relay=relay).call(
                        agent.id, "exec", {"command": "sleep 60"}, within=120
                    )
        finally:
            await relay.aclose()
    assert "try again" in str(lost.value)
    assert lost.value.retry_after == 2


@pytest.mark.spec("wait.agent")
async def test_the_connect_phase_pings_an_agent_held_by_another_replica_through_the_relay(
    world: World,
) -> None:
    """The agent's WebSocket ends on another replica: this one's connect phase reaches
    it through the relay (one relayed ping), and the wait ends as for a local agent.
    Until the agent's row names that replica there is nothing to relay to, and the
    phase waits for the agent's connect event."""
    agent = await quiet_agent(world)
    elsewhere = AgentGateway(uuid.uuid4())
    socket = LoopbackSocket()
    async with (
        relay_endpoint(elsewhere) as (url, asked),
        background(world.serve(elsewhere, agent, socket)),
    ):
        there = registry_of(world, elsewhere.replica_id, url)
        await there.register()
        await world.driver.lifecycle(agent.id, "ready")
        here = registry_of(world, uuid.uuid4(), "http://127.0.0.1:1")
        relay = Relay(here.replica_id, SECRET, here)
        try:
            with anyio.fail_after(10):
                result = await wait_for_agent_ready(
                    world.ctx(gateway=AgentGateway(here.replica_id, relay=relay)),
                    agent,
                    connect=True,
                )
        finally:
            await relay.aclose()
    assert result == {}
    assert asked == ["/api/v1/internal/relay"]
