"""Queries of the replica registry (signatures; the implementations are in
:mod:`berth.db.store.replicas`, the documentation with them)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Protocol

from berth.records import Replica, WorkspaceAgent


class ReplicaQuerier(Protocol):
    """The replicas, where each agent's connection ends, and the mesh secret."""

    async def upsert_replica(
        self,
        replica_id: uuid.UUID,
        *,
        hostname: str,
        relay_url: str,
        version: str,
        started_at: dt.datetime,
    ) -> Replica: ...

    async def touch_replica(self, replica_id: uuid.UUID) -> bool: ...

    async def delete_replica(self, replica_id: uuid.UUID) -> None: ...

    async def delete_replicas_silent_since(self, cutoff: dt.datetime) -> int: ...

    async def list_replicas(self) -> list[Replica]: ...

    async def locate_workspace_agent(
        self, agent_id: uuid.UUID
    ) -> tuple[WorkspaceAgent, Replica | None] | None: ...

    async def ensure_mesh_secret(self, candidate: str) -> str: ...
