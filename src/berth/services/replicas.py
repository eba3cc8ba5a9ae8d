"""The replica registry: which servers run, and which one holds each agent (DESIGN §7).

Each server registers itself in ``replicas`` when it starts (:meth:`Registry.register`),
heart-beats every :data:`HEARTBEAT` seconds and deregisters when it stops cleanly. A
replica silent for :data:`STALE_AFTER` is stale: it is listed as such, nothing is
relayed to it, and its agents count as disconnected until they reconnect elsewhere
(through the access URL, a load balancer in front of the replicas). One silent for
:data:`FORGET_AFTER` is removed by whichever replica next heart-beats.

:meth:`Registry.locate` is the relay's :class:`~berth.agentconn.Locator`: the replica
an agent's connection ends on, if it is live and not this one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import socket
import uuid
from dataclasses import dataclass

import berth
from berth.agentconn import Peer
from berth.agentconn.relay import NOT_CONNECTED
from berth.domain.actors import as_mesh
from berth.records import Replica, WorkspaceAgent
from berth.services.base import Ctx

log = logging.getLogger("berth.replicas")

HEARTBEAT = 3.0
"""Seconds between a replica's heartbeats."""
STALE_AFTER = dt.timedelta(seconds=15)
"""A replica silent this long is stale: not relayed to, its agents not reachable."""
FORGET_AFTER = dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class ReplicaView:
    replica: Replica
    live: bool


async def list_replicas(ctx: Ctx) -> list[ReplicaView]:
    """Every registered replica, live or stale (site owners)."""
    async with ctx.read() as store:
        replicas = await store.list_replicas()
    now = ctx.clock.now()
    return [ReplicaView(r, now - r.heartbeat_at <= STALE_AFTER) for r in replicas]


class Registry:
    """This replica's registration, heartbeat and view of where agents are."""

    def __init__(self, ctx: Ctx, replica_id: uuid.UUID, *, relay_url: str) -> None:
        self._ctx = ctx.acting_as(as_mesh())
        self.replica_id = replica_id
        self.relay_url = relay_url
        self.hostname = socket.gethostname()
        self._started_at = ctx.clock.now()

    async def register(self) -> str:
        """Register (or re-register) this replica; returns the mesh secret."""
        async with self._ctx.write() as store:
            await store.upsert_replica(
                self.replica_id,
                hostname=self.hostname,
                relay_url=self.relay_url,
                version=berth.__version__,
                started_at=self._started_at,
            )
            return await store.ensure_mesh_secret(secrets.token_urlsafe(32))

    async def heartbeat(self) -> None:
        """One heartbeat; a row removed meanwhile (this replica was silent for long) is
        registered again, and long-silent replicas are forgotten."""
        async with self._ctx.write() as store:
            present = await store.touch_replica(self.replica_id)
            await store.delete_replicas_silent_since(self._ctx.clock.now() - FORGET_AFTER)
        if not present:
            await self.register()

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            await self.heartbeat()

    async def deregister(self) -> None:
        """Remove this replica's row; a failure is only logged (it goes stale anyway)."""
        try:
            async with self._ctx.write() as store:
                await store.delete_replica(self.replica_id)
        except Exception:
            log.warning("could not deregister replica %s", self.replica_id, exc_info=True)

    async def locate(self, agent_id: uuid.UUID) -> Peer | str:
        """The live replica, not this one, that holds the agent; else why none does."""
        async with self._ctx.read() as store:
            found = await store.locate_workspace_agent(agent_id)
        if found is None:
            return NOT_CONNECTED
        agent, replica = found
        if agent.last_connected_replica_id is None or _disconnected(agent):
            return NOT_CONNECTED
        if replica is None:
            return (
                "the server replica that held the workspace agent's connection has shut "
                "down; the agent reconnects through another replica: try again in a few seconds"
            )
        if replica.id == self.replica_id:
            return NOT_CONNECTED  # recorded here, yet not held here: it just went
        silent = self._ctx.clock.now() - replica.heartbeat_at
        if silent > STALE_AFTER:
            return (
                f"the server replica {replica.hostname} that holds the workspace agent's "
                f"connection has not been heard from for {int(silent.total_seconds())}s; "
                "the agent reconnects through another replica: try again in a few seconds"
            )
        return Peer(replica.id, replica.hostname, replica.relay_url)


def _disconnected(agent: WorkspaceAgent) -> bool:
    return agent.disconnected_at is not None and (
        agent.last_connected_at is None or agent.disconnected_at >= agent.last_connected_at
    )
