"""AuthzStore's part for the replica registry and the mesh secret.

The registry is the ``mesh`` system actor's (each replica keeps its own row and finds
the others'); site owners may read it. The mesh secret is readable by the ``mesh``
actor alone — not even by a site owner — so no request can carry it out of the
database (:func:`berth.db.policy.is_allowed`).
"""

from __future__ import annotations

import datetime as dt
import uuid

from berth.db.authz_base import AuthzBase
from berth.db.policy import Action, Kind, Resource
from berth.errors import Forbidden
from berth.records import Replica, WorkspaceAgent

_REPLICAS = Resource(Kind.REPLICA)
_MESH_SECRET = Resource(Kind.MESH_SECRET)
_AGENTS = Resource(Kind.AGENT)


class ReplicaAuthz(AuthzBase):
    async def upsert_replica(
        self,
        replica_id: uuid.UUID,
        *,
        hostname: str,
        relay_url: str,
        version: str,
        started_at: dt.datetime,
    ) -> Replica:
        self._require(Action.UPDATE, _REPLICAS)
        return await self._inner.upsert_replica(
            replica_id,
            hostname=hostname,
            relay_url=relay_url,
            version=version,
            started_at=started_at,
        )

    async def touch_replica(self, replica_id: uuid.UUID) -> bool:
        self._require(Action.UPDATE, _REPLICAS)
        return await self._inner.touch_replica(replica_id)

    async def delete_replica(self, replica_id: uuid.UUID) -> None:
        self._require(Action.DELETE, _REPLICAS)
        await self._inner.delete_replica(replica_id)

    async def delete_replicas_silent_since(self, cutoff: dt.datetime) -> int:
        self._require(Action.DELETE, _REPLICAS)
        return await self._inner.delete_replicas_silent_since(cutoff)

    async def list_replicas(self) -> list[Replica]:
        if not self._can(Action.READ, _REPLICAS):  # a list everyone knows exists: 403
            raise Forbidden("only site owners see the server replicas")
        return await self._inner.list_replicas()

    async def locate_workspace_agent(
        self, agent_id: uuid.UUID
    ) -> tuple[WorkspaceAgent, Replica | None] | None:
        self._require(Action.READ, _REPLICAS)
        self._require(Action.READ, _AGENTS)
        return await self._inner.locate_workspace_agent(agent_id)

    async def ensure_mesh_secret(self, candidate: str) -> str:
        self._require(Action.READ, _MESH_SECRET)
        self._require(Action.CREATE, _MESH_SECRET)
        return await self._inner.ensure_mesh_secret(candidate)
