"""Queries on workspaces, their builds and build parameters, and quota sums."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from berth.db import tables as t
from berth.db.store.base import StoreBase, key
from berth.records import BuildParameter, Workspace, WorkspaceBuild


def latest_build_ids() -> sa.Subquery:
    """(workspace_id, max build_number) per workspace."""
    b = t.workspace_builds
    return (
        sa.select(b.c.workspace_id, sa.func.max(b.c.build_number).label("build_number"))
        .group_by(b.c.workspace_id)
        .subquery("latest")
    )


_WORKSPACE_BY_ID = t.workspaces.select().where(t.workspaces.c.id == key())
_BUILD_BY_ID = t.workspace_builds.select().where(t.workspace_builds.c.id == key())
_LATEST_BUILD = (
    t.workspace_builds.select()
    .where(t.workspace_builds.c.workspace_id == key())
    .order_by(t.workspace_builds.c.build_number.desc())
    .limit(1)
)


class WorkspaceQueries(StoreBase):
    async def insert_workspace(
        self,
        *,
        owner_id: uuid.UUID,
        organization_id: uuid.UUID,
        template_id: uuid.UUID,
        name: str,
        ttl_ms: int | None,
    ) -> Workspace:
        now = self._now()
        return await self._insert(
            Workspace,
            t.workspaces,
            id=uuid.uuid4(),
            owner_id=owner_id,
            organization_id=organization_id,
            template_id=template_id,
            name=name,
            deleted=False,
            ttl_ms=ttl_ms,
            deadline=None,
            last_used_at=now,
            created_at=now,
            updated_at=now,
        )

    async def get_workspace_by_id(self, workspace_id: uuid.UUID) -> Workspace | None:
        return await self._one(Workspace, _WORKSPACE_BY_ID, {"key": workspace_id})

    async def get_workspace_by_owner_and_name(
        self, owner_id: uuid.UUID, name: str
    ) -> Workspace | None:
        w = t.workspaces
        return await self._one(
            Workspace,
            w.select().where(
                w.c.owner_id == owner_id,
                sa.func.lower(w.c.name) == name.lower(),
                w.c.deleted.is_(False),
            ),
        )

    async def list_workspaces(
        self, *, owner_id: uuid.UUID | None = None, template_id: uuid.UUID | None = None
    ) -> list[Workspace]:
        """Live workspaces, optionally of one owner or one template, by name."""
        w = t.workspaces
        stmt = w.select().where(w.c.deleted.is_(False)).order_by(w.c.name, w.c.id)
        if owner_id is not None:
            stmt = stmt.where(w.c.owner_id == owner_id)
        if template_id is not None:
            stmt = stmt.where(w.c.template_id == template_id)
        return await self._all(Workspace, stmt)

    async def list_workspaces_due(self, now: dt.datetime) -> list[Workspace]:
        """Live workspaces whose autostop deadline has come (``deadline <= now``)."""
        w = t.workspaces
        stmt = (
            w.select()
            .where(w.c.deleted.is_(False), w.c.deadline.is_not(None), w.c.deadline <= now)
            .order_by(w.c.deadline, w.c.id)
        )
        return await self._all(Workspace, stmt)

    async def get_next_workspace_deadline(self, now: dt.datetime) -> dt.datetime | None:
        """The earliest autostop deadline still ahead of ``now``, of any live workspace."""
        w = t.workspaces
        earliest = sa.func.min(w.c.deadline, type_=w.c.deadline.type)
        stmt = sa.select(earliest).where(w.c.deleted.is_(False), w.c.deadline > now)
        value: dt.datetime | None = (await self._execute(stmt)).scalar_one_or_none()
        return value

    async def update_workspace(self, workspace_id: uuid.UUID, **fields: Any) -> Workspace | None:
        """Set columns such as ``deadline``, ``last_used_at``, ``ttl_ms``, ``deleted``."""
        w = t.workspaces
        return await self._update_one(
            Workspace, w, w.c.id == workspace_id, updated_at=self._now(), **fields
        )

    # --- builds -----------------------------------------------------------------------

    async def insert_workspace_build(
        self,
        *,
        workspace_id: uuid.UUID,
        build_number: int,
        transition: str,
        template_version_id: uuid.UUID,
        preset_id: uuid.UUID | None,
        initiator_id: uuid.UUID,
        reason: str,
        daily_cost: int,
        job_id: uuid.UUID,
        rendered: dict[str, Any] | None,
    ) -> WorkspaceBuild:
        now = self._now()
        return await self._insert(
            WorkspaceBuild,
            t.workspace_builds,
            id=uuid.uuid4(),
            workspace_id=workspace_id,
            build_number=build_number,
            transition=transition,
            template_version_id=template_version_id,
            preset_id=preset_id,
            initiator_id=initiator_id,
            reason=reason,
            daily_cost=daily_cost,
            job_id=job_id,
            rendered=rendered,
            created_at=now,
            updated_at=now,
        )

    async def get_workspace_build_by_id(self, build_id: uuid.UUID) -> WorkspaceBuild | None:
        return await self._one(WorkspaceBuild, _BUILD_BY_ID, {"key": build_id})

    async def get_workspace_build_by_job_id(self, job_id: uuid.UUID) -> WorkspaceBuild | None:
        b = t.workspace_builds
        return await self._one(WorkspaceBuild, b.select().where(b.c.job_id == job_id))

    async def get_latest_workspace_build_by_workspace_id(
        self, workspace_id: uuid.UUID
    ) -> WorkspaceBuild | None:
        return await self._one(WorkspaceBuild, _LATEST_BUILD, {"key": workspace_id})

    async def list_workspace_builds(self, workspace_id: uuid.UUID) -> list[WorkspaceBuild]:
        b = t.workspace_builds
        return await self._all(
            WorkspaceBuild,
            b.select().where(b.c.workspace_id == workspace_id).order_by(b.c.build_number),
        )

    async def insert_workspace_build_parameters(
        self, build_id: uuid.UUID, values: Mapping[str, str]
    ) -> None:
        if values:
            await self._execute(
                t.workspace_build_parameters.insert(),
                [{"build_id": build_id, "name": k, "value": v} for k, v in values.items()],
            )

    async def list_workspace_build_parameters(self, build_id: uuid.UUID) -> list[BuildParameter]:
        p = t.workspace_build_parameters
        return await self._all(
            BuildParameter, p.select().where(p.c.build_id == build_id).order_by(p.c.name)
        )

    # --- quotas -----------------------------------------------------------------------

    async def get_quota_allowance(
        self, user_id: uuid.UUID, organization_id: uuid.UUID
    ) -> int | None:
        """The user's budget in the org: the sum of their groups' allowances.

        ``None`` when none of their groups has an allowance (unlimited).
        """
        g, m = t.groups, t.group_members
        stmt = (
            sa.select(
                sa.func.coalesce(sa.func.sum(g.c.quota_allowance), 0),
                sa.func.max(g.c.quota_allowance),
            )
            .select_from(g.join(m, m.c.group_id == g.c.id))
            .where(m.c.user_id == user_id, g.c.organization_id == organization_id)
        )
        total, largest = (await self._execute(stmt)).one()
        return None if not largest else int(total)

    async def get_quota_consumed(
        self,
        user_id: uuid.UUID,
        organization_id: uuid.UUID,
        *,
        exclude_workspace_ids: Sequence[uuid.UUID] = (),
    ) -> int:
        """Sum of ``daily_cost`` over the user's live workspaces whose latest build starts."""
        w, b, j = t.workspaces, t.workspace_builds, t.provisioner_jobs
        latest = latest_build_ids()
        stmt = (
            sa.select(sa.func.coalesce(sa.func.sum(b.c.daily_cost), 0))
            .select_from(
                w.join(latest, latest.c.workspace_id == w.c.id)
                .join(
                    b,
                    (b.c.workspace_id == w.c.id) & (b.c.build_number == latest.c.build_number),
                )
                .join(j, j.c.id == b.c.job_id)
            )
            .where(
                w.c.owner_id == user_id,
                w.c.organization_id == organization_id,
                w.c.deleted.is_(False),
                b.c.transition == "start",
                j.c.status.not_in(["failed", "canceled"]),
            )
        )
        if exclude_workspace_ids:
            stmt = stmt.where(w.c.id.not_in(list(exclude_workspace_ids)))
        return int((await self._execute(stmt)).scalar_one())
