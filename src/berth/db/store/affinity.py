"""Queries behind the chat tools' template ranking and workspace activity.

``list_templates`` ranks templates by what the chat's owner has been using and by how
many developers of the organization use them (spec §11); the workspace tools count
every call as activity on the chat's workspace (spec §13), which keeps autostop away.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import sqlalchemy as sa

from berth.db import tables as t
from berth.db.store.base import StoreBase, from_row
from berth.records import TemplateRankingSignals, Workspace

# A workspace counts as active when its latest build is a start that succeeded or is
# still on its way (a failed or canceled start left nothing running).
ACTIVE_JOB_STATUSES = ("pending", "running", "succeeded")


class AffinityQueries(StoreBase):
    async def get_template_ranking_signals(
        self,
        *,
        owner_id: uuid.UUID,
        organization_id: uuid.UUID,
        template_ids: Sequence[uuid.UUID],
        since: dt.datetime,
    ) -> list[TemplateRankingSignals]:
        """Ranking signals of ``template_ids`` for ``owner_id``, in the order given."""
        ids = list(dict.fromkeys(template_ids))
        if not ids:
            return []
        active = await self._active_counts(owner_id, organization_id, ids)
        deleted = await self._deleted_counts(owner_id, organization_id, ids, since)
        last_used = await self._last_used(owner_id, organization_id, ids, since)
        developers = await self._org_developers(organization_id, ids)
        return [
            TemplateRankingSignals(
                template_id=template_id,
                active_count=active.get(template_id, 0),
                deleted_recent_count=deleted.get(template_id, 0),
                last_used_at=last_used.get(template_id),
                org_developers=developers.get(template_id, 0),
            )
            for template_id in ids
        ]

    async def _active_counts(
        self, owner_id: uuid.UUID, organization_id: uuid.UUID, ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        w, b, j = t.workspaces, t.workspace_builds, t.provisioner_jobs
        latest = (
            sa.select(b.c.workspace_id, sa.func.max(b.c.build_number).label("build_number"))
            .group_by(b.c.workspace_id)
            .subquery("latest")
        )
        stmt = (
            sa.select(w.c.template_id, sa.func.count())
            .select_from(
                w.join(latest, latest.c.workspace_id == w.c.id)
                .join(
                    b,
                    (b.c.workspace_id == w.c.id) & (b.c.build_number == latest.c.build_number),
                )
                .join(j, j.c.id == b.c.job_id)
            )
            .where(
                w.c.owner_id == owner_id,
                w.c.organization_id == organization_id,
                w.c.template_id.in_(ids),
                w.c.deleted.is_(False),
                b.c.transition == "start",
                j.c.status.in_(ACTIVE_JOB_STATUSES),
            )
            .group_by(w.c.template_id)
        )
        return {row[0]: int(row[1]) for row in await self._execute(stmt)}

    async def _deleted_counts(
        self,
        owner_id: uuid.UUID,
        organization_id: uuid.UUID,
        ids: list[uuid.UUID],
        since: dt.datetime,
    ) -> dict[uuid.UUID, int]:
        # A workspace is marked deleted by its last update, so ``updated_at`` of a
        # deleted workspace is when it was deleted.
        w = t.workspaces
        stmt = (
            sa.select(w.c.template_id, sa.func.count())
            .where(
                w.c.owner_id == owner_id,
                w.c.organization_id == organization_id,
                w.c.template_id.in_(ids),
                w.c.deleted.is_(True),
                w.c.updated_at >= since,
            )
            .group_by(w.c.template_id)
        )
        return {row[0]: int(row[1]) for row in await self._execute(stmt)}

    async def _last_used(
        self,
        owner_id: uuid.UUID,
        organization_id: uuid.UUID,
        ids: list[uuid.UUID],
        since: dt.datetime,
    ) -> dict[uuid.UUID, dt.datetime]:
        w = t.workspaces
        stmt = (
            sa.select(w.c.template_id, sa.func.max(w.c.last_used_at).label("last_used_at"))
            .where(
                w.c.owner_id == owner_id,
                w.c.organization_id == organization_id,
                w.c.template_id.in_(ids),
                w.c.last_used_at.is_not(None),
                w.c.last_used_at >= since,
            )
            .group_by(w.c.template_id)
        )
        # ``max`` keeps the column's type, so the value comes back timezone-aware.
        return {
            row.template_id: row.last_used_at
            for row in await self._execute(stmt)
            if row.last_used_at is not None
        }

    async def _org_developers(
        self, organization_id: uuid.UUID, ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        w, u = t.workspaces, t.users
        stmt = (
            sa.select(w.c.template_id, sa.func.count(sa.distinct(w.c.owner_id)))
            .select_from(w.join(u, u.c.id == w.c.owner_id))
            .where(
                w.c.organization_id == organization_id,
                w.c.template_id.in_(ids),
                w.c.deleted.is_(False),
                u.c.is_system.is_(False),
            )
            .group_by(w.c.template_id)
        )
        return {row[0]: int(row[1]) for row in await self._execute(stmt)}

    async def touch_workspace(self, workspace_id: uuid.UUID, now: dt.datetime) -> Workspace | None:
        """Record activity: ``last_used_at = now``; a deadline moves to ≥ now + TTL.

        Only a workspace with a deadline (running, with a TTL) gets a later one: activity
        never gives a stopped workspace a deadline. The deadline only moves later, never
        earlier (an admin may have extended it).
        """
        w = t.workspaces
        row = (
            await self._execute(w.select().where(w.c.id == workspace_id).with_for_update())
        ).first()
        if row is None:
            return None
        workspace = from_row(Workspace, row)
        values: dict[str, object] = {"last_used_at": now, "updated_at": self._now()}
        if workspace.ttl_ms and workspace.deadline is not None:
            pushed = now + dt.timedelta(milliseconds=workspace.ttl_ms)
            if pushed > workspace.deadline:
                values["deadline"] = pushed
        return await self._update_one(Workspace, w, w.c.id == workspace_id, **values)
