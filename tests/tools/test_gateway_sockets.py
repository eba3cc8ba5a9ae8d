"""The gateway when an agent's socket fails under it: a tool gets a clear, retryable
:class:`~berth.errors.AgentUnavailable`, never the server's own socket exception.

Starlette raises its ``WebSocketDisconnect`` (an ``Exception``, neither ``OSError`` nor
``RuntimeError``) when the agent goes while a frame is being sent; CI met it under load
in a ``write_file``, and the tool crashed instead of answering.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from starlette.websockets import WebSocketDisconnect

from berth.agentconn import AgentGateway
from berth.errors import AgentUnavailable
from tests.support.tool_results import background

pytestmark = pytest.mark.anyio


class GoneMidSend:
    """A socket whose agent is gone: every send fails as Starlette's does."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def send_text(self, data: str) -> None:
        raise WebSocketDisconnect(code=1006)

    async def receive_text(self) -> str:
        await self.closed.wait()
        raise WebSocketDisconnect(code=1006)


class Quiet:
    async def connected(self) -> None: ...

    async def heartbeat(self) -> None: ...

    async def lifecycle(self, state: str, generation: object = None) -> None: ...

    async def logs(self, entries: object) -> None: ...

    async def manifest(self) -> dict[str, object]:
        return {"type": "manifest"}

    async def disconnected(self) -> None: ...


async def test_a_send_to_an_agent_that_went_is_agent_unavailable() -> None:
    gateway, agent_id, socket = AgentGateway(), uuid.uuid4(), GoneMidSend()
    async with background(gateway.serve(agent_id, socket, Quiet())):
        await asyncio.sleep(0)  # serve registered the session
        assert gateway.holds(agent_id)
        with pytest.raises(AgentUnavailable, match="lost the connection to the workspace agent"):
            await gateway.call(agent_id, "write_file", {"path": "a", "content": "b"}, within=5)
        with pytest.raises(AgentUnavailable, match="lost the connection"):
            await gateway.notify(agent_id, {"type": "shutdown"})
        assert await gateway.resend_manifest(agent_id) is False
        socket.closed.set()
