"""Agent RPCs for agents another replica holds: carried there over HTTP, unchanged.

An agent keeps one WebSocket to one replica. A call arriving anywhere else goes to that
replica's relay endpoint (:data:`~berth.agentconn.signing.RELAY_PATH`) as one signed
POST (:mod:`~berth.agentconn.signing`) whose JSON body names the agent and the RPC::

    {"agent_id": "…", "op": "call", "method": "exec", "params": {…}, "within": 70.0}
    {"agent_id": "…", "op": "notify", "message": {"type": "shutdown"}}

and the holder answers with what its own gateway got, in JSON::

    {"result": {…}}                        the agent's answer
    {"error": {"message": …, "code": …}}   the agent's own error (AgentCallError)
    {"unavailable": "…"}                   the agent could not be reached from there
    {"not_here": true}                     that replica does not hold the agent

"not here" means the agent moved or went since the caller looked: the caller looks it
up once more and tries the new holder, never one it already asked, and never relays a
relayed request (:func:`answer_relayed` only uses its own sessions), so no request
loops between replicas. A replica that cannot be reached is remembered as unreachable
for :data:`UNREACHABLE_FOR` seconds: calls for its agents fail at once with a clear
message instead of each waiting for a connect timeout.

Each RPC is one WebSocket frame at the agent, so the relay holds no more of it than
the gateway does: one request and one answer.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import httpx

from berth.agentconn.signing import RELAY_HEADER, RELAY_PATH, sign
from berth.errors import AgentCallError, AgentUnavailable

if TYPE_CHECKING:
    from berth.agentconn.gateway import AgentGateway

log = logging.getLogger("berth.relay")

CONNECT_TIMEOUT = 2.0
"""Seconds to reach a peer: a replica that does not accept by then is unreachable."""
UNREACHABLE_FOR = 5.0
"""Seconds a peer that could not be reached is not tried again."""
MAX_BODY_BYTES = 80 * 1024 * 1024
"""The largest relayed request: an agent frame (64 MiB, a write_file) and its envelope."""
NOT_CONNECTED = "the workspace agent is not connected"


@dataclass(frozen=True, slots=True)
class Peer:
    """The replica holding an agent's connection, as the registry knows it."""

    replica_id: uuid.UUID
    hostname: str
    relay_url: str


class Locator(Protocol):
    """Where an agent is connected (the services' replica registry)."""

    async def locate(self, agent_id: uuid.UUID) -> Peer | str:
        """The live replica holding the agent, or why there is none to ask."""
        ...


class Relay:
    """The calling end: sends this replica's calls for other replicas' agents."""

    def __init__(self, replica_id: uuid.UUID, secret: str, locator: Locator) -> None:
        self.replica_id = replica_id
        self._secret = secret
        self._locator = locator
        self._unreachable: dict[uuid.UUID, float] = {}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0, connect=CONNECT_TIMEOUT),
            limits=httpx.Limits(max_keepalive_connections=32, keepalive_expiry=30.0),
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def reachable(self, agent_id: uuid.UUID) -> bool:
        """Whether a live replica that can be reached holds the agent."""
        where = await self._locator.locate(agent_id)
        return isinstance(where, Peer) and not self._marked(where)

    async def call(
        self, agent_id: uuid.UUID, method: str, params: Mapping[str, Any], *, within: float
    ) -> dict[str, Any]:
        body = {
            "agent_id": str(agent_id),
            "op": "call",
            "method": method,
            "params": dict(params),
            "within": within,
        }
        return _unwrap(await self._send(agent_id, body, within))

    async def notify(self, agent_id: uuid.UUID, message: Mapping[str, Any]) -> None:
        body = {"agent_id": str(agent_id), "op": "notify", "message": dict(message)}
        _unwrap(await self._send(agent_id, body, 10.0))

    async def _send(
        self, agent_id: uuid.UUID, body: dict[str, Any], within: float
    ) -> dict[str, Any]:
        content = json.dumps(body, separators=(",", ":")).encode()
        asked: set[uuid.UUID] = {self.replica_id}
        for _ in range(2):  # the holder, then (if it said "not here") the new holder
            where = await self._locator.locate(agent_id)
            if isinstance(where, str):
                raise AgentUnavailable(where)
            if where.replica_id in asked:
                break
            if self._marked(where):
                raise AgentUnavailable(_cannot_reach(where))
            asked.add(where.replica_id)
            answer = await self._post(where, content, within)
            if not answer.get("not_here"):
                return answer
        raise AgentUnavailable(NOT_CONNECTED)

    async def _post(self, peer: Peer, content: bytes, within: float) -> dict[str, Any]:
        headers = {
            RELAY_HEADER: sign(self._secret, peer.replica_id, content),
            "Content-Type": "application/json",
        }
        url = peer.relay_url.rstrip("/") + RELAY_PATH
        timeout = httpx.Timeout(within + 10.0, connect=CONNECT_TIMEOUT)
        try:
            response = await self._client.post(
                url, content=content, headers=headers, timeout=timeout
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            self._unreachable[peer.replica_id] = time.monotonic() + UNREACHABLE_FOR
            log.warning("replica %s (%s) cannot be reached: %s", peer.hostname, url, exc)
            raise AgentUnavailable(_cannot_reach(peer)) from exc
        except httpx.HTTPError as exc:
            raise AgentUnavailable(
                f"lost the server replica {peer.hostname} that holds the workspace agent's "
                f"connection during the call ({type(exc).__name__}); try again"
            ) from exc
        if response.status_code != 200:
            log.warning(
                "replica %s refused a relayed call: HTTP %s", peer.hostname, response.status_code
            )
            raise AgentUnavailable(
                f"the server replica {peer.hostname} that holds the workspace agent's "
                f"connection refused the relayed call (HTTP {response.status_code})"
            )
        try:
            answer: Any = response.json()
        except ValueError as exc:
            raise AgentUnavailable(f"the server replica {peer.hostname} answered garbage") from exc
        return cast(dict[str, Any], answer) if isinstance(answer, dict) else {}

    def _marked(self, peer: Peer) -> bool:
        until = self._unreachable.get(peer.replica_id)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self._unreachable[peer.replica_id]
        return False


def _cannot_reach(peer: Peer) -> str:
    return (
        f"the server replica {peer.hostname} that holds the workspace agent's connection "
        f"cannot be reached at {peer.relay_url}; the agent reconnects through another "
        "replica: try again in a few seconds"
    )


def unwrap_response(response: dict[str, Any]) -> dict[str, Any]:
    """The ``result`` of an agent's RPC response; :class:`AgentCallError` for an
    ``error`` (the relay's answers carry the agent's response in the same keys)."""
    error: Any = response.get("error")
    if error is not None:
        detail = cast(dict[str, Any], error) if isinstance(error, dict) else {}
        raise AgentCallError(
            str(detail.get("message", "agent error")), str(detail.get("code", "failed"))
        )
    result: Any = response.get("result")
    return cast(dict[str, Any], result) if isinstance(result, dict) else {}


def _unwrap(answer: dict[str, Any]) -> dict[str, Any]:
    """A relayed answer: the holder's "unavailable", or the agent's own response."""
    if "unavailable" in answer:
        raise AgentUnavailable(str(answer["unavailable"]))
    return unwrap_response(answer)


async def answer_relayed(gateway: AgentGateway, body: bytes) -> dict[str, Any] | None:
    """The holding end: run a relayed request on this replica's own session of the
    agent; ``None`` for a body that is not a relayed request."""
    try:
        request: Any = json.loads(body)
        agent_id = uuid.UUID(str(request["agent_id"]))
        op = request["op"]
    except (ValueError, KeyError, TypeError):
        return None
    if not gateway.holds(agent_id):
        return {"not_here": True}
    try:
        if op == "call":
            params = request.get("params")
            result = await gateway.call_here(
                agent_id,
                str(request.get("method", "")),
                cast(dict[str, Any], params) if isinstance(params, dict) else {},
                within=max(0.1, float(request.get("within", 30.0))),
            )
            return {"result": result}
        if op == "notify" and isinstance(message := request.get("message"), dict):
            await gateway.notify_here(agent_id, cast(dict[str, Any], message))
            return {"result": {}}
    except AgentCallError as exc:
        return {"error": {"message": exc.message, "code": exc.code}}
    except AgentUnavailable as exc:
        return {"unavailable": str(exc)}
    except (ValueError, TypeError):
        return None
    return None
