"""Queries on the replica registry and the mesh secret the replicas share."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import fields

import sqlalchemy as sa

from berth.db import tables as t
from berth.db.dialects import insert_new, upsert
from berth.db.store.base import StoreBase, from_row
from berth.records import Replica, WorkspaceAgent

MESH_SECRET_KEY = "mesh_secret"  # noqa: S105 - the key it is stored under, not a secret
"""The ``site_config`` key of the mesh secret (made by the first replica to start)."""


class ReplicaQueries(StoreBase):
    async def upsert_replica(
        self,
        replica_id: uuid.UUID,
        *,
        hostname: str,
        relay_url: str,
        version: str,
        started_at: dt.datetime,
    ) -> Replica:
        """Register a replica, or refresh its row (and its heartbeat) if it is there."""
        replica = Replica(
            id=replica_id,
            hostname=hostname,
            relay_url=relay_url,
            version=version,
            started_at=started_at,
            heartbeat_at=self._now(),
        )
        values = {f.name: getattr(replica, f.name) for f in fields(Replica)}
        await self._execute(upsert(self.dialect, t.replicas, values, key=["id"]))
        return replica

    async def touch_replica(self, replica_id: uuid.UUID) -> bool:
        """Record a heartbeat; ``False`` when the row is gone (forgotten as stale)."""
        r = t.replicas
        stmt = r.update().where(r.c.id == replica_id).values(heartbeat_at=self._now())
        return (await self._execute(stmt)).rowcount == 1

    async def delete_replica(self, replica_id: uuid.UUID) -> None:
        r = t.replicas
        await self._execute(r.delete().where(r.c.id == replica_id))

    async def delete_replicas_silent_since(self, cutoff: dt.datetime) -> int:
        """Forget replicas whose last heartbeat is older than ``cutoff``."""
        r = t.replicas
        return (await self._execute(r.delete().where(r.c.heartbeat_at < cutoff))).rowcount

    async def list_replicas(self) -> list[Replica]:
        r = t.replicas
        return await self._all(Replica, r.select().order_by(r.c.started_at, r.c.id))

    async def locate_workspace_agent(
        self, agent_id: uuid.UUID
    ) -> tuple[WorkspaceAgent, Replica | None] | None:
        """The agent and the registered replica its connection last ended on, in one query."""
        a, r = t.workspace_agents, t.replicas
        stmt = (
            sa.select(a, *(c.label(f"replica_{c.name}") for c in r.c))
            .select_from(a.outerjoin(r, r.c.id == a.c.last_connected_replica_id))
            .where(a.c.id == agent_id)
        )
        row = (await self._execute(stmt)).first()
        if row is None:
            return None
        agent = from_row(WorkspaceAgent, row)
        values = row._mapping  # pyright: ignore[reportPrivateUsage]
        if values["replica_id"] is None:
            return agent, None
        replica = Replica(**{c.name: values[f"replica_{c.name}"] for c in r.c})
        return agent, replica

    async def ensure_mesh_secret(self, candidate: str) -> str:
        """The mesh secret; ``candidate`` becomes it if there is none yet (the first
        replica to start on a database makes it, and every other one reads it)."""
        s = t.site_config
        values = {"key": MESH_SECRET_KEY, "value": candidate}
        await self._execute(insert_new(self.dialect, s, values))
        stmt = sa.select(s.c.value).where(s.c.key == MESH_SECRET_KEY)
        return (await self._execute(stmt)).scalar_one()
