"""Queries on workspace agents, their scripts and logs."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from berth.db import tables as t
from berth.db.store.base import StoreBase, key
from berth.records import AgentLog, AgentScript, WorkspaceAgent

_AGENTS_BY_JOB = (
    sa.select(t.workspace_agents)
    .join(t.workspace_resources, t.workspace_resources.c.id == t.workspace_agents.c.resource_id)
    .where(t.workspace_resources.c.job_id == key())
    .order_by(
        t.workspace_agents.c.display_order, t.workspace_agents.c.name, t.workspace_agents.c.id
    )
)


class AgentQueries(StoreBase):
    async def insert_workspace_agent(
        self,
        *,
        resource_id: uuid.UUID,
        name: str,
        display_order: int,
        chat: bool,
        external: bool,
        directory: str,
        env: dict[str, str],
        auth_token_hash: bytes,
        connection_timeout_seconds: int,
        parent_id: uuid.UUID | None = None,
    ) -> WorkspaceAgent:
        now = self._now()
        return await self._insert(
            WorkspaceAgent,
            t.workspace_agents,
            id=uuid.uuid4(),
            resource_id=resource_id,
            parent_id=parent_id,
            name=name,
            display_order=display_order,
            chat=chat,
            external=external,
            directory=directory,
            env=env,
            auth_token_hash=auth_token_hash,
            connection_timeout_seconds=connection_timeout_seconds,
            lifecycle_state="created",
            created_at=now,
            updated_at=now,
        )

    async def insert_workspace_agent_scripts(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self._execute(
                t.workspace_agent_scripts.insert(), [{"id": uuid.uuid4(), **r} for r in rows]
            )

    async def list_workspace_agent_scripts(self, agent_id: uuid.UUID) -> list[AgentScript]:
        s = t.workspace_agent_scripts
        return await self._all(
            AgentScript, s.select().where(s.c.agent_id == agent_id).order_by(s.c.display_order)
        )

    async def get_workspace_agent_by_id(self, agent_id: uuid.UUID) -> WorkspaceAgent | None:
        a = t.workspace_agents
        return await self._one(WorkspaceAgent, a.select().where(a.c.id == agent_id))

    async def get_workspace_agent_by_token_hash(self, token_hash: bytes) -> WorkspaceAgent | None:
        a = t.workspace_agents
        return await self._one(WorkspaceAgent, a.select().where(a.c.auth_token_hash == token_hash))

    async def list_workspace_agents_by_job(self, job_id: uuid.UUID) -> list[WorkspaceAgent]:
        return await self._all(WorkspaceAgent, _AGENTS_BY_JOB, {"key": job_id})

    async def get_workspace_id_by_agent_id(self, agent_id: uuid.UUID) -> uuid.UUID | None:
        a, r, b = t.workspace_agents, t.workspace_resources, t.workspace_builds
        stmt = (
            sa.select(b.c.workspace_id)
            .select_from(a.join(r, r.c.id == a.c.resource_id).join(b, b.c.job_id == r.c.job_id))
            .where(a.c.id == agent_id)
        )
        return (await self._execute(stmt)).scalar_one_or_none()

    async def update_workspace_agent_connection(
        self,
        agent_id: uuid.UUID,
        *,
        first_connected_at: dt.datetime | None = None,
        last_connected_at: dt.datetime | None = None,
        disconnected_at: dt.datetime | None = None,
        replica_id: uuid.UUID | None = None,
        if_replica: uuid.UUID | None = None,
    ) -> WorkspaceAgent | None:
        """Set the given connection timestamps; ``first_connected_at`` only once.

        ``if_replica``: only while the agent's connection is recorded on that replica
        (a replica's late news of a connection the agent has since made elsewhere must
        not overwrite the newer one).
        """
        a = t.workspace_agents
        values: dict[str, Any] = {"updated_at": self._now()}
        if first_connected_at is not None:
            values["first_connected_at"] = sa.func.coalesce(
                a.c.first_connected_at, first_connected_at
            )
        if last_connected_at is not None:
            values["last_connected_at"] = last_connected_at
        if disconnected_at is not None:
            values["disconnected_at"] = disconnected_at
        if replica_id is not None:
            values["last_connected_replica_id"] = replica_id
        where = a.c.id == agent_id
        if if_replica is not None:
            where = where & (a.c.last_connected_replica_id == if_replica)
        return await self._update_one(WorkspaceAgent, a, where, **values)

    async def update_workspace_agent_token(
        self, agent_id: uuid.UUID, token_hash: bytes
    ) -> WorkspaceAgent | None:
        """Replace the agent's token (the old one stops working at once)."""
        a = t.workspace_agents
        return await self._update_one(
            WorkspaceAgent,
            a,
            a.c.id == agent_id,
            auth_token_hash=token_hash,
            updated_at=self._now(),
        )

    async def update_workspace_agent_lifecycle(
        self, agent_id: uuid.UUID, state: str, *, claimed: bool | None = None
    ) -> WorkspaceAgent | None:
        """Record a lifecycle report; ``started_at``/``ready_at`` follow the state.

        ``claimed``: the report belongs to the agent's manifest from before (``False``)
        or after (``True``) its workspace was claimed; a report of the other one is stale
        and changes nothing (``None``). Checked in the update itself, so a claim that
        commits while the report is on its way wins.
        """
        a = t.workspace_agents
        now = self._now()
        values: dict[str, Any] = {"lifecycle_state": state, "updated_at": now}
        if state == "starting":
            values["started_at"] = now
        if state in ("ready", "start_error", "start_timeout"):
            values["ready_at"] = now
        where = a.c.id == agent_id
        if claimed is not None:
            where &= a.c.claimed_at.is_not(None) if claimed else a.c.claimed_at.is_(None)
        return await self._update_one(WorkspaceAgent, a, where, **values)

    async def insert_workspace_agent_logs(
        self, agent_id: uuid.UUID, entries: Sequence[tuple[uuid.UUID | None, str, str]]
    ) -> None:
        """Append ``(script_id, level, output)`` lines in order."""
        if entries:
            now = self._now()
            await self._execute(
                t.workspace_agent_logs.insert(),
                [
                    {
                        "agent_id": agent_id,
                        "script_id": s,
                        "created_at": now,
                        "level": lv,
                        "output": o,
                    }
                    for s, lv, o in entries
                ],
            )

    async def list_workspace_agent_logs(
        self,
        agent_id: uuid.UUID,
        *,
        after_id: int = 0,
        script_id: uuid.UUID | None = None,
        level: str | None = None,
        last: int | None = None,
    ) -> list[AgentLog]:
        """The agent's lines after ``after_id``, oldest first; only ``script_id``'s and of
        ``level`` when given; only the newest ``last`` of them when given."""
        lg = t.workspace_agent_logs
        query = lg.select().where(lg.c.agent_id == agent_id, lg.c.id > after_id)
        if script_id is not None:
            query = query.where(lg.c.script_id == script_id)
        if level is not None:
            query = query.where(lg.c.level == level)
        if last is None:
            return await self._all(AgentLog, query.order_by(lg.c.id))
        newest = await self._all(AgentLog, query.order_by(lg.c.id.desc()).limit(last))
        return newest[::-1]
