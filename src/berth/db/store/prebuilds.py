"""Queries for prebuilt workspaces: pools, workspace states, the claim, failures, leases."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from berth.db import tables as t
from berth.db.dialects import insert_new, upsert
from berth.db.store.base import StoreBase, from_row
from berth.db.store.workspaces import latest_build_ids
from berth.records import (
    PrebuildFailure,
    PrebuildPool,
    ProvisionerJob,
    Workspace,
    WorkspaceAgent,
    WorkspaceBuild,
    WorkspaceState,
)


class PrebuildQueries(StoreBase):
    async def list_prebuild_pools(self) -> list[PrebuildPool]:
        """Presets of live templates' active versions with ``prebuilds.instances > 0``."""
        p, v, tp = t.template_version_presets, t.template_versions, t.templates
        stmt = (
            sa.select(
                p.c.id.label("preset_id"),
                p.c.name.label("preset_name"),
                p.c.desired_prebuild_instances.label("desired"),
                tp.c.id.label("template_id"),
                tp.c.name.label("template_name"),
                tp.c.organization_id,
                v.c.id.label("template_version_id"),
            )
            .select_from(
                p.join(v, v.c.id == p.c.template_version_id).join(
                    tp, tp.c.active_version_id == v.c.id
                )
            )
            .where(tp.c.deleted.is_(False), p.c.desired_prebuild_instances > 0)
            .order_by(tp.c.name, p.c.name, p.c.id)
        )
        return await self._all(PrebuildPool, stmt)

    async def list_workspace_states(
        self, owner_id: uuid.UUID | None, *, template_id: uuid.UUID | None = None
    ) -> list[WorkspaceState]:
        """The owner's (``None``: everyone's) live workspaces, of one template if given,
        oldest first, each with its latest build, job and agents.

        Four queries whatever the number of workspaces: the reconciler reads its whole
        pool on every event, a claim the pool of one template, a listing every workspace.
        """
        w, b, j = t.workspaces, t.workspace_builds, t.provisioner_jobs
        latest = latest_build_ids()
        stmt = (
            sa.select(w, b.c.id.label("build_id"))
            .select_from(
                w.join(latest, latest.c.workspace_id == w.c.id).join(
                    b,
                    (b.c.workspace_id == w.c.id) & (b.c.build_number == latest.c.build_number),
                )
            )
            .where(w.c.deleted.is_(False))
            .order_by(w.c.created_at, w.c.id)
        )
        if owner_id is not None:
            stmt = stmt.where(w.c.owner_id == owner_id)
        if template_id is not None:
            stmt = stmt.where(w.c.template_id == template_id)
        rows = list(await self._execute(stmt))
        if not rows:
            return []
        build_ids = [row.build_id for row in rows]
        builds = {
            build.id: build
            for build in await self._all(WorkspaceBuild, b.select().where(b.c.id.in_(build_ids)))
        }
        job_ids = [build.job_id for build in builds.values()]
        jobs = {
            job.id: job
            for job in await self._all(ProvisionerJob, j.select().where(j.c.id.in_(job_ids)))
        }
        a, r = t.workspace_agents, t.workspace_resources
        agent_rows = await self._execute(
            sa.select(a, r.c.job_id.label("resource_job_id"))
            .join(r, r.c.id == a.c.resource_id)
            .where(r.c.job_id.in_(job_ids))
            .order_by(a.c.display_order, a.c.name, a.c.id)
        )
        agents: dict[uuid.UUID, list[WorkspaceAgent]] = {}
        for row in agent_rows:
            agents.setdefault(row.resource_job_id, []).append(from_row(WorkspaceAgent, row))
        states: list[WorkspaceState] = []
        for row in rows:
            build = builds[row.build_id]
            states.append(
                WorkspaceState(
                    workspace=from_row(Workspace, row),
                    build=build,
                    job=jobs[build.job_id],
                    agents=tuple(agents.get(build.job_id, ())),
                )
            )
        return states

    async def lock_prebuilt_workspace(
        self, workspace_id: uuid.UUID, owner_id: uuid.UUID
    ) -> Workspace | None:
        """The live workspace if ``owner_id`` still owns it and no other transaction holds
        it (Postgres: ``FOR UPDATE SKIP LOCKED``, so concurrent claims take different
        prebuilds instead of queueing on one; SQLite: ``BEGIN IMMEDIATE`` already)."""
        w = t.workspaces
        stmt = (
            w.select()
            .where(w.c.id == workspace_id, w.c.owner_id == owner_id, w.c.deleted.is_(False))
            .with_for_update(skip_locked=True)
        )
        return await self._one(Workspace, stmt)

    async def claim_prebuilt_workspace(
        self,
        workspace_id: uuid.UUID,
        *,
        from_owner_id: uuid.UUID,
        owner_id: uuid.UUID,
        name: str,
        ttl_ms: int | None,
        deadline: dt.datetime | None,
    ) -> Workspace | None:
        """Give a prebuilt workspace to its new owner; ``None`` if ``from_owner_id`` no
        longer holds it (claimed or deleted meanwhile)."""
        w = t.workspaces
        now = self._now()
        return await self._update_one(
            Workspace,
            w,
            (w.c.id == workspace_id) & (w.c.owner_id == from_owner_id) & w.c.deleted.is_(False),
            owner_id=owner_id,
            name=name,
            ttl_ms=ttl_ms,
            deadline=deadline,
            last_used_at=now,
            updated_at=now,
        )

    async def move_workspace_resources(self, from_job_id: uuid.UUID, to_job_id: uuid.UUID) -> int:
        """Hand a build's resources (and so its agents) to a later build's job."""
        r = t.workspace_resources
        result = await self._execute(
            r.update().where(r.c.job_id == from_job_id).values(job_id=to_job_id)
        )
        return result.rowcount

    async def personalize_workspace_agent(
        self,
        agent_id: uuid.UUID,
        *,
        directory: str,
        env: dict[str, str],
        scripts: Sequence[dict[str, Any]],
        claimed_at: dt.datetime,
    ) -> WorkspaceAgent | None:
        """Replace an agent's manifest (directory, env, scripts) for its new owner and
        start its lifecycle over: it reports ``starting`` → ``ready`` again."""
        a, s = t.workspace_agents, t.workspace_agent_scripts
        agent = await self._update_one(
            WorkspaceAgent,
            a,
            a.c.id == agent_id,
            directory=directory,
            env=env,
            claimed_at=claimed_at,
            lifecycle_state="created",
            started_at=None,
            ready_at=None,
            updated_at=self._now(),
        )
        if agent is None:
            return None
        await self._execute(s.delete().where(s.c.agent_id == agent_id))
        if scripts:
            await self._execute(
                s.insert(), [{"id": uuid.uuid4(), "agent_id": agent_id, **row} for row in scripts]
            )
        return agent

    # --- failures ------------------------------------------------------------------------

    async def list_prebuild_failures(self) -> list[PrebuildFailure]:
        f = t.prebuild_failures
        return await self._all(PrebuildFailure, f.select().order_by(f.c.preset_id))

    async def set_prebuild_failure(
        self,
        preset_id: uuid.UUID,
        *,
        count: int,
        last_error: str,
        last_failed_at: dt.datetime | None,
    ) -> None:
        values = {
            "preset_id": preset_id,
            "count": count,
            "last_error": last_error,
            "last_failed_at": last_failed_at,
        }
        await self._execute(upsert(self.dialect, t.prebuild_failures, values, key=["preset_id"]))

    # --- leases --------------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, *, until: dt.datetime) -> bool:
        """Take or renew the lease ``name`` for ``holder`` until ``until``; ``False`` while
        another holder's lease has not expired."""
        lease = t.leases
        values = {"name": name, "holder": holder, "expires_at": until}
        if (await self._execute(insert_new(self.dialect, lease, values))).rowcount == 1:
            return True
        current = (
            await self._execute(
                sa.select(lease.c.holder, lease.c.expires_at)
                .where(lease.c.name == name)
                .with_for_update()
            )
        ).one()
        if current.holder != holder and current.expires_at > self._now():
            return False
        await self._execute(
            lease.update().where(lease.c.name == name).values(holder=holder, expires_at=until)
        )
        return True

    async def release_lease(self, name: str, holder: str) -> None:
        lease = t.leases
        await self._execute(lease.delete().where(lease.c.name == name, lease.c.holder == holder))
