"""Stand-ins for the agents a real backend would start, for the chat-tool tests.

The fake backend starts no agent processes, so :class:`SimBackend` stands in for the
agents a real backend would start: after a successful ``start`` it reports, as the
agent gateway does (rows written as the gateway actor, ``agent:<id>`` events), that
each agent connected and went through the lifecycle states the test chose.
:class:`AgentDriver` does the same on demand, and :class:`LoopbackSocket` lets a real
:class:`~berth.agentconn.AgentGateway` serve an in-memory agent that answers RPCs.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from berth.agent import protocol
from berth.db.engine import Database
from berth.domain.actors import as_agent_gateway
from berth.domain.enums import Transition
from berth.events import EventBus
from berth.provisioner.backends.fake import FakeBackend
from berth.provisioner.spec import (
    AgentSpec,
    BuildSpec,
    LogSink,
    Place,
    ResourceRecord,
    ResourceState,
)
from berth.services.agents import AgentReports
from berth.services.base import Ctx


class AgentDriver:
    """Reports what an agent would, through the service the agent route records it with.

    No replica holds these stand-in agents (their connection names none), so the tools
    treat them as this server's.
    """

    def __init__(self, db: Database, bus: EventBus) -> None:
        self._ctx = Ctx(db, as_agent_gateway(), bus)

    def _reports(self, agent_id: uuid.UUID) -> AgentReports:
        return AgentReports(self._ctx, agent_id, replica_id=None)

    async def connect(self, agent_id: uuid.UUID) -> None:
        await self._reports(agent_id).connected()

    async def disconnect(self, agent_id: uuid.UUID) -> None:
        await self._reports(agent_id).disconnected()

    async def lifecycle(self, agent_id: uuid.UUID, state: str) -> None:
        await self._reports(agent_id).lifecycle(state)


@dataclass
class SimBackend:
    """The fake backend plus stand-ins for the agent processes a start would launch.

    After a successful ``start`` each non-external agent connects (if ``connect``) and
    reports ``lifecycle`` in order; its spec is then put on ``started``.
    """

    fake: FakeBackend
    driver: AgentDriver
    connect: bool = True
    lifecycle: tuple[str, ...] = ("ready",)
    started: asyncio.Queue[AgentSpec] = field(default_factory=lambda: asyncio.Queue[AgentSpec]())
    name: str = "fake"

    async def apply(
        self, spec: BuildSpec, transition: Transition, log: LogSink
    ) -> list[ResourceRecord]:
        records = await self.fake.apply(spec, transition, log)
        if transition is Transition.START:
            for agent in spec.agents:
                if agent.external:
                    continue
                if self.connect:
                    await self.driver.connect(agent.id)
                for state in self.lifecycle:
                    await self.driver.lifecycle(agent.id, state)
                self.started.put_nowait(agent)
        return records

    async def inspect(self, handle: dict[str, Any]) -> ResourceState:
        return await self.fake.inspect(handle)

    async def destroy(self, handle: dict[str, Any]) -> None:
        await self.fake.destroy(handle)

    async def place(self, state_dir: Path) -> Place:
        return await self.fake.place(state_dir)


class LoopbackSocket:
    """An agent's WebSocket for :meth:`AgentGateway.serve`: answers every RPC with ``{}``."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[str] = asyncio.Queue()

    async def send_text(self, data: str) -> None:
        message = protocol.decode(data)
        if message["type"] == "request":
            self.report({"type": "response", "id": message["id"], "result": {}})

    async def receive_text(self) -> str:
        return await self.incoming.get()

    def report(self, message: protocol.Message) -> None:
        """Send a frame from the agent (``lifecycle``, ``heartbeat``, …)."""
        self.incoming.put_nowait(protocol.encode(message))
