"""This replica's agent sessions and the RPCs over them, no database.

Each agent holds one WebSocket to one server replica. :class:`AgentGateway` keeps this
replica's sessions and lets the rest of the server call an agent's RPCs: over its own
session when it holds the agent, otherwise through its :class:`~berth.agentconn.relay.Relay`
to the replica that does (a gateway without a relay — SQLite's single server — answers
that the agent is not connected).
What a connection reports — that it connected, heartbeats, lifecycle states, script
logs, and the manifest it asks for — is handed to a :class:`Reports` the caller gives
:meth:`AgentGateway.serve` (the agent route passes
:class:`berth.services.agents.AgentReports`, which records and publishes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from berth.agent import protocol
from berth.agentconn.relay import NOT_CONNECTED, Relay, unwrap_response
from berth.errors import AgentUnavailable

log = logging.getLogger("berth.agents")

__all__ = ["AgentGateway", "Reports", "Socket"]


class Reports(Protocol):
    """Where one connection's reports go; each method runs before the next frame is read."""

    async def connected(self) -> None: ...

    async def heartbeat(self) -> None: ...

    async def lifecycle(self, state: str, generation: object = None) -> None:
        """``generation``: the manifest generation the state belongs to."""
        ...

    async def logs(self, entries: Sequence[tuple[uuid.UUID | None, str, str]]) -> None:
        """``(script_id, level, output)`` lines, in order."""
        ...

    async def manifest(self) -> dict[str, Any]: ...

    async def disconnected(self) -> None: ...


class Socket(Protocol):
    """The part of a WebSocket the gateway uses (Starlette's fits)."""

    async def send_text(self, data: str) -> None: ...

    async def receive_text(self) -> str: ...


@dataclass
class Session:
    agent_id: uuid.UUID
    socket: Socket
    reports: Reports
    pending: dict[int, asyncio.Future[dict[str, Any]]] = field(
        default_factory=lambda: dict[int, asyncio.Future[dict[str, Any]]]()
    )
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, message: protocol.Message) -> None:
        """Send a frame; :class:`AgentUnavailable` for any failure of the socket.

        The socket's own errors depend on the server (Starlette raises its
        ``WebSocketDisconnect`` when the agent went mid-send, ``RuntimeError`` after a
        close, the transport ``OSError``): to a caller they all mean the same.
        """
        try:
            async with self.send_lock:
                await self.socket.send_text(protocol.encode(message))
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            raise AgentUnavailable(f"lost the connection to the workspace agent: {reason}") from exc


class AgentGateway:
    """Live agent sessions of this replica, and the way to the other replicas' agents."""

    def __init__(self, replica_id: uuid.UUID | None = None, *, relay: Relay | None = None) -> None:
        self.replica_id = replica_id or uuid.uuid4()
        self.relay = relay
        self._sessions: dict[uuid.UUID, Session] = {}
        self._ids = itertools.count(1)

    def holds(self, agent_id: uuid.UUID) -> bool:
        """Whether the agent's connection ends on this replica."""
        return agent_id in self._sessions

    async def reachable(self, agent_id: uuid.UUID) -> bool:
        """Whether the agent can be called: held here, or by a live replica in reach."""
        if agent_id in self._sessions:
            return True
        return self.relay is not None and await self.relay.reachable(agent_id)

    async def serve(self, agent_id: uuid.UUID, socket: Socket, reports: Reports) -> None:
        """Run one accepted connection until it closes; a newer one replaces it."""
        session = Session(agent_id, socket, reports)
        previous = self._sessions.get(agent_id)
        self._sessions[agent_id] = session
        if previous is not None:
            _fail_pending(previous, "the agent reconnected")
        try:
            await reports.connected()
            while True:
                text = await socket.receive_text()
                try:
                    message = protocol.decode(text)
                except ValueError:
                    log.warning("agent %s sent a malformed frame", agent_id)
                    continue
                await self._handle(session, message)
        except AgentUnavailable:  # a send to it failed (the manifest): the connection is over
            log.info("agent %s: its connection failed on a send", agent_id)
        finally:
            if self._sessions.get(agent_id) is session:
                del self._sessions[agent_id]
                _fail_pending(session, "the agent disconnected")
                with contextlib.suppress(Exception):
                    await reports.disconnected()

    async def _handle(self, session: Session, message: protocol.Message) -> None:
        kind = message["type"]
        if kind == "hello":
            await session.send(await session.reports.manifest())
        elif kind == "heartbeat":
            await session.reports.heartbeat()
        elif kind == "lifecycle":
            await session.reports.lifecycle(
                str(message.get("state", "")), message.get("generation")
            )
        elif kind == "logs":
            await session.reports.logs(_log_entries(message.get("entries")))
        elif kind == "response":
            future = session.pending.pop(int(message.get("id", 0)), None)
            if future is not None and not future.done():
                future.set_result(message)

    async def notify(self, agent_id: uuid.UUID, message: protocol.Message) -> None:
        """Send a frame that has no answer (``shutdown``), wherever the agent is held;
        :class:`AgentUnavailable` if it cannot be reached."""
        if agent_id not in self._sessions and self.relay is not None:
            await self.relay.notify(agent_id, message)
            return
        await self.notify_here(agent_id, message)

    async def notify_here(self, agent_id: uuid.UUID, message: protocol.Message) -> None:
        """:meth:`notify` over this replica's own session only."""
        session = self._sessions.get(agent_id)
        if session is None:
            raise AgentUnavailable(NOT_CONNECTED)
        await session.send(message)

    async def resend_manifest(self, agent_id: uuid.UUID) -> bool:
        """Send a connected agent its manifest again (it changed: a claim); ``False`` if
        the agent is not connected here or the send failed (it reads the manifest anew
        when it reconnects)."""
        session = self._sessions.get(agent_id)
        if session is None:
            return False
        try:
            await session.send(await session.reports.manifest())
        except Exception:  # the socket went, or the agent row did: it reconnects or is gone
            log.warning("could not re-send the manifest to agent %s", agent_id, exc_info=True)
            return False
        return True

    async def call(
        self, agent_id: uuid.UUID, method: str, params: Mapping[str, Any], *, within: float
    ) -> dict[str, Any]:
        """Call an agent RPC wherever the agent is held; :class:`AgentUnavailable` or
        :class:`AgentCallError` on failure."""
        if agent_id not in self._sessions and self.relay is not None:
            return await self.relay.call(agent_id, method, params, within=within)
        return await self.call_here(agent_id, method, params, within=within)

    async def call_here(
        self, agent_id: uuid.UUID, method: str, params: Mapping[str, Any], *, within: float
    ) -> dict[str, Any]:
        """:meth:`call` over this replica's own session only (a relayed call lands here)."""
        session = self._sessions.get(agent_id)
        if session is None:
            raise AgentUnavailable(NOT_CONNECTED)
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        session.pending[request_id] = future
        try:
            await session.send(
                {"type": "request", "id": request_id, "method": method, "params": dict(params)}
            )
            response = await asyncio.wait_for(future, within)
        except TimeoutError as exc:
            raise AgentUnavailable(
                f"the workspace agent did not answer within {within:g}s"
            ) from exc
        finally:
            session.pending.pop(request_id, None)
        return unwrap_response(response)


def _log_entries(entries: object) -> list[tuple[uuid.UUID | None, str, str]]:
    """The ``(script_id, level, output)`` rows of a ``logs`` frame; malformed items skipped."""
    if not isinstance(entries, list):
        return []
    rows: list[tuple[uuid.UUID | None, str, str]] = []
    for entry in cast(list[object], entries):
        if not isinstance(entry, dict):
            continue
        item = cast(dict[str, Any], entry)
        script = item.get("script_id")
        script_id = None
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            script_id = uuid.UUID(str(script)) if script else None
        rows.append((script_id, str(item.get("level", "info")), str(item.get("output", ""))))
    return rows


def _fail_pending(session: Session, reason: str) -> None:
    for future in session.pending.values():
        if not future.done():
            future.set_exception(AgentUnavailable(reason))
    session.pending.clear()
