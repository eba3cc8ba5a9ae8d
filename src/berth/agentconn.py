"""The server side of agent connections: sessions, reports, RPC.

Each agent holds one WebSocket to one server replica. The gateway authenticates it by
its token, records what it reports (connection timestamps, lifecycle, script logs),
publishes changes on ``agent:<id>`` and ``workspace:<id>``, and lets the rest of the
server call the agent's RPCs. Connection status is derived from the timestamps written
here (spec §8): heartbeats move ``last_connected_at``, a closed socket sets
``disconnected_at``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from berth.agent import protocol
from berth.db.authz import AuthzStore
from berth.db.engine import Database
from berth.domain.actors import as_agent_gateway, as_authenticator
from berth.domain.credentials import hash_secret
from berth.events import EventBus, publish_quietly
from berth.records import WorkspaceAgent

log = logging.getLogger("berth.agents")


class AgentUnavailable(Exception):
    """The agent is not connected to this server, or went away mid-call."""


class AgentCallError(Exception):
    """The agent answered an RPC with an error."""

    def __init__(self, message: str, code: str = "failed") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Socket(Protocol):
    """The part of a WebSocket the gateway uses (Starlette's fits)."""

    async def send_text(self, data: str) -> None: ...

    async def receive_text(self) -> str: ...


@dataclass
class Session:
    agent_id: uuid.UUID
    workspace_id: uuid.UUID
    socket: Socket
    pending: dict[int, asyncio.Future[dict[str, Any]]] = field(
        default_factory=lambda: dict[int, asyncio.Future[dict[str, Any]]]()
    )
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, message: protocol.Message) -> None:
        async with self.send_lock:
            await self.socket.send_text(protocol.encode(message))


class AgentGateway:
    """Live agent sessions of this replica."""

    def __init__(
        self, db: Database, bus: EventBus | None, replica_id: uuid.UUID | None = None
    ) -> None:
        self._db = db
        self._bus = bus
        self.replica_id = replica_id or uuid.uuid4()
        self._sessions: dict[uuid.UUID, Session] = {}
        self._ids = itertools.count(1)

    def is_connected(self, agent_id: uuid.UUID) -> bool:
        return agent_id in self._sessions

    async def authenticate(self, token: str) -> WorkspaceAgent | None:
        """The agent a token belongs to, or ``None``."""
        async with self._db.read() as raw:
            return await AuthzStore(raw, as_authenticator()).get_workspace_agent_by_token_hash(
                hash_secret(token)
            )

    async def serve(self, agent: WorkspaceAgent, socket: Socket) -> None:
        """Run one accepted connection until it closes."""
        workspace_id = await self._workspace_id(agent.id)
        session = Session(agent.id, workspace_id, socket)
        previous = self._sessions.get(agent.id)
        self._sessions[agent.id] = session
        if previous is not None:
            _fail_pending(previous, "the agent reconnected")
        now = self._db.clock.now()
        await self._update(
            agent.id, first_connected_at=now, last_connected_at=now, replica_id=self.replica_id
        )
        await self._publish(session, {"type": "connection", "state": "connected"})
        try:
            while True:
                text = await socket.receive_text()
                try:
                    message = protocol.decode(text)
                except ValueError:
                    log.warning("agent %s sent a malformed frame", agent.id)
                    continue
                await self._handle(session, message)
        finally:
            if self._sessions.get(agent.id) is session:
                del self._sessions[agent.id]
                _fail_pending(session, "the agent disconnected")
                with contextlib.suppress(Exception):
                    await self._update(agent.id, disconnected_at=self._db.clock.now())
                    await self._publish(session, {"type": "connection", "state": "disconnected"})

    async def _handle(self, session: Session, message: protocol.Message) -> None:
        kind = message["type"]
        if kind == "hello":
            await session.send(await self._manifest(session.agent_id))
        elif kind == "heartbeat":
            await self._update(session.agent_id, last_connected_at=self._db.clock.now())
        elif kind == "lifecycle":
            state = str(message.get("state", ""))
            if state in protocol.LIFECYCLE_STATES:
                async with self._db.write() as raw:
                    await AuthzStore(raw, as_agent_gateway()).update_workspace_agent_lifecycle(
                        session.agent_id, state
                    )
                await self._publish(session, {"type": "lifecycle", "state": state})
        elif kind == "logs":
            await self._store_logs(session.agent_id, message.get("entries"))
        elif kind == "response":
            future = session.pending.pop(int(message.get("id", 0)), None)
            if future is not None and not future.done():
                future.set_result(message)

    async def _store_logs(self, agent_id: uuid.UUID, entries: object) -> None:
        if not isinstance(entries, list):
            return
        rows: list[tuple[uuid.UUID | None, str, str]] = []
        for entry in entries:  # pyright: ignore[reportUnknownVariableType]
            if not isinstance(entry, dict):
                continue
            item: dict[str, Any] = entry  # pyright: ignore[reportUnknownVariableType]
            script = item.get("script_id")
            script_id = None
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                script_id = uuid.UUID(str(script)) if script else None
            rows.append((script_id, str(item.get("level", "info")), str(item.get("output", ""))))
        if rows:
            async with self._db.write() as raw:
                await AuthzStore(raw, as_agent_gateway()).insert_workspace_agent_logs(
                    agent_id, rows
                )

    async def _manifest(self, agent_id: uuid.UUID) -> protocol.Message:
        async with self._db.read() as raw:
            store = AuthzStore(raw, as_agent_gateway())
            agent = await store.get_workspace_agent_by_id(agent_id)
            scripts = await store.list_workspace_agent_scripts(agent_id)
        assert agent is not None
        return {
            "type": "manifest",
            "agent_id": str(agent.id),
            "name": agent.name,
            "generation": str(agent.id),
            "directory": agent.directory,
            "env": agent.env,
            "scripts": [
                {
                    "id": str(s.id),
                    "display_name": s.display_name,
                    "script": s.script,
                    "run_on": s.run_on,
                    "blocks_login": s.blocks_login,
                    "timeout_seconds": s.timeout_seconds,
                }
                for s in scripts
            ],
        }

    async def call(
        self, agent_id: uuid.UUID, method: str, params: Mapping[str, Any], *, within: float
    ) -> dict[str, Any]:
        """Call an agent RPC; :class:`AgentUnavailable` or :class:`AgentCallError` on failure."""
        session = self._sessions.get(agent_id)
        if session is None:
            raise AgentUnavailable("the workspace agent is not connected")
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
        except (OSError, RuntimeError) as exc:
            raise AgentUnavailable(f"lost the connection to the workspace agent: {exc}") from exc
        finally:
            session.pending.pop(request_id, None)
        return unwrap_response(response)

    async def _workspace_id(self, agent_id: uuid.UUID) -> uuid.UUID:
        async with self._db.read() as raw:
            workspace_id = await AuthzStore(raw, as_agent_gateway()).get_workspace_id_by_agent_id(
                agent_id
            )
        assert workspace_id is not None
        return workspace_id

    async def _update(self, agent_id: uuid.UUID, **kw: Any) -> None:
        async with self._db.write() as raw:
            await AuthzStore(raw, as_agent_gateway()).update_workspace_agent_connection(
                agent_id, **kw
            )

    async def _publish(self, session: Session, payload: Mapping[str, object]) -> None:
        message = {"agent_id": str(session.agent_id), **payload}
        for channel in (f"agent:{session.agent_id}", f"workspace:{session.workspace_id}"):
            await publish_quietly(self._bus, channel, message)


def unwrap_response(response: dict[str, Any]) -> dict[str, Any]:
    """The ``result`` of an RPC response; :class:`AgentCallError` for an ``error``."""
    error: Any = response.get("error")
    if error is not None:
        detail = cast(dict[str, Any], error) if isinstance(error, dict) else {}
        raise AgentCallError(
            str(detail.get("message", "agent error")), str(detail.get("code", "failed"))
        )
    result: Any = response.get("result")
    return cast(dict[str, Any], result) if isinstance(result, dict) else {}


def _fail_pending(session: Session, reason: str) -> None:
    for future in session.pending.values():
        if not future.done():
            future.set_exception(AgentUnavailable(reason))
    session.pending.clear()
