"""Queries on provisioner jobs, their logs, the resources builds create and provisioner keys."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa

from berth.db import tables as t
from berth.db.store.base import StoreBase, key
from berth.records import JobLog, ProvisionerJob, ProvisionerKey, WorkspaceResource

_JOB_BY_ID = t.provisioner_jobs.select().where(t.provisioner_jobs.c.id == key())


class JobQueries(StoreBase):
    async def insert_provisioner_job(
        self,
        *,
        type: str,
        organization_id: uuid.UUID,
        initiator_id: uuid.UUID,
        input: dict[str, Any],
        priority: int,
        required_place: str | None = None,
    ) -> ProvisionerJob:
        """``required_place``: only a worker serving it may take the job (see
        :meth:`acquire_provisioner_job`)."""
        now = self._now()
        return await self._insert(
            ProvisionerJob,
            t.provisioner_jobs,
            id=uuid.uuid4(),
            type=type,
            organization_id=organization_id,
            initiator_id=initiator_id,
            input=input,
            status="pending",
            priority=priority,
            required_place=required_place,
            created_at=now,
            updated_at=now,
        )

    async def get_provisioner_job_by_id(self, job_id: uuid.UUID) -> ProvisionerJob | None:
        return await self._one(ProvisionerJob, _JOB_BY_ID, {"key": job_id})

    async def count_provisioner_jobs_ahead(self, job: ProvisionerJob) -> int:
        """How many pending jobs a worker would claim before ``job`` (its queue position
        less one), in :meth:`acquire_provisioner_job`'s order; 0 once it is not pending."""
        j = t.provisioner_jobs
        if job.status != "pending":
            return 0
        earlier = (j.c.created_at < job.created_at) | (
            (j.c.created_at == job.created_at) & (j.c.id < job.id)
        )
        ahead = (j.c.priority > job.priority) | ((j.c.priority == job.priority) & earlier)
        query = sa.select(sa.func.count()).where((j.c.status == "pending") & ahead)
        return int((await self._execute(query)).scalar_one())

    async def acquire_provisioner_job(
        self,
        worker_id: str,
        *,
        organization_id: uuid.UUID | None = None,
        places: Collection[str] = (),
    ) -> ProvisionerJob | None:
        """Claim the most urgent pending job: humans before prebuilds, oldest first.

        ``organization_id`` limits the claim to that organization's jobs (a standalone
        provisioner's key belongs to one organization). Only jobs that require no place,
        or one of the worker's ``places``, are claimed: a job for resources elsewhere
        waits for a worker there, and never blocks the jobs behind it.

        Postgres: ``FOR UPDATE SKIP LOCKED`` lets workers claim different jobs at once.
        SQLite: the write transaction's ``BEGIN IMMEDIATE`` makes the claim exclusive.
        """
        j = t.provisioner_jobs
        pending = j.c.status == "pending"
        if organization_id is not None:
            pending = pending & (j.c.organization_id == organization_id)
        reachable = j.c.required_place.is_(None)
        if places:
            reachable = reachable | j.c.required_place.in_(sorted(set(places)))
        pending = pending & reachable
        candidate = (
            sa.select(j.c.id)
            .where(pending)
            .order_by(j.c.priority.desc(), j.c.created_at, j.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        job_id = (await self._execute(candidate)).scalar_one_or_none()
        if job_id is None:
            return None
        now = self._now()
        return await self._update_one(
            ProvisionerJob,
            j,
            (j.c.id == job_id) & (j.c.status == "pending"),
            status="running",
            worker_id=worker_id,
            started_at=now,
            heartbeat_at=now,
            updated_at=now,
        )

    async def update_provisioner_job_heartbeat(
        self, job_id: uuid.UUID, worker_id: str
    ) -> ProvisionerJob | None:
        """Record that ``worker_id`` still runs the job; ``None`` if it no longer owns it."""
        j = t.provisioner_jobs
        now = self._now()
        return await self._update_one(
            ProvisionerJob,
            j,
            (j.c.id == job_id)
            & (j.c.worker_id == worker_id)
            & j.c.status.in_(["running", "canceling"]),
            heartbeat_at=now,
            updated_at=now,
        )

    async def complete_provisioner_job(
        self,
        job_id: uuid.UUID,
        *,
        status: str,
        error: str | None = None,
        error_code: str | None = None,
    ) -> ProvisionerJob | None:
        """Move a job that is not yet terminal to ``succeeded``, ``failed`` or ``canceled``."""
        j = t.provisioner_jobs
        now = self._now()
        values: dict[str, Any] = {
            "status": status,
            "error": error,
            "error_code": error_code,
            "completed_at": now,
            "updated_at": now,
        }
        if status == "canceled":
            values["canceled_at"] = now
        return await self._update_one(
            ProvisionerJob,
            j,
            (j.c.id == job_id) & j.c.status.in_(["pending", "running", "canceling"]),
            **values,
        )

    async def request_provisioner_job_cancel(self, job_id: uuid.UUID) -> ProvisionerJob | None:
        """A pending job is canceled at once; a running one becomes ``canceling``."""
        j = t.provisioner_jobs
        now = self._now()
        pending = await self._update_one(
            ProvisionerJob,
            j,
            (j.c.id == job_id) & (j.c.status == "pending"),
            status="canceled",
            canceled_at=now,
            completed_at=now,
            error="canceled before it started",
            updated_at=now,
        )
        if pending is not None:
            return pending
        return await self._update_one(
            ProvisionerJob,
            j,
            (j.c.id == job_id) & (j.c.status == "running"),
            status="canceling",
            canceled_at=now,
            updated_at=now,
        )

    async def list_stale_provisioner_jobs(
        self, heartbeat_before: dt.datetime
    ) -> list[ProvisionerJob]:
        """Running or canceling jobs not heart-beaten since ``heartbeat_before``."""
        j = t.provisioner_jobs
        return await self._all(
            ProvisionerJob,
            j.select()
            .where(j.c.status.in_(["running", "canceling"]), j.c.heartbeat_at < heartbeat_before)
            .order_by(j.c.created_at),
        )

    # --- logs -------------------------------------------------------------------------

    async def insert_provisioner_job_logs(
        self, job_id: uuid.UUID, entries: Sequence[tuple[str, str, str]]
    ) -> list[JobLog]:
        """Append ``(stage, level, output)`` lines in order."""
        if not entries:
            return []
        now = self._now()
        rows = await self._execute(
            t.provisioner_job_logs.insert().returning(t.provisioner_job_logs),
            [
                {"job_id": job_id, "created_at": now, "stage": s, "level": lv, "output": o}
                for s, lv, o in entries
            ],
        )
        logs = [JobLog(**row._mapping) for row in rows]  # pyright: ignore[reportPrivateUsage]
        return sorted(logs, key=lambda log: log.id)

    async def list_provisioner_job_logs(
        self, job_id: uuid.UUID, *, after_id: int = 0
    ) -> list[JobLog]:
        lg = t.provisioner_job_logs
        return await self._all(
            JobLog,
            lg.select().where(lg.c.job_id == job_id, lg.c.id > after_id).order_by(lg.c.id),
        )

    # --- resources --------------------------------------------------------------------

    async def insert_workspace_resource(
        self, *, job_id: uuid.UUID, type: str, name: str, handle: dict[str, Any]
    ) -> WorkspaceResource:
        return await self._insert(
            WorkspaceResource,
            t.workspace_resources,
            id=uuid.uuid4(),
            job_id=job_id,
            type=type,
            name=name,
            handle=handle,
            created_at=self._now(),
        )

    async def update_workspace_resource_handle(
        self, resource_id: uuid.UUID, handle: dict[str, Any]
    ) -> WorkspaceResource | None:
        r = t.workspace_resources
        return await self._update_one(WorkspaceResource, r, r.c.id == resource_id, handle=handle)

    async def list_workspace_resources_by_job(self, job_id: uuid.UUID) -> list[WorkspaceResource]:
        r = t.workspace_resources
        return await self._all(
            WorkspaceResource, r.select().where(r.c.job_id == job_id).order_by(r.c.created_at)
        )

    # --- provisioner keys -------------------------------------------------------------

    async def insert_provisioner_key(
        self, *, key_id: str, organization_id: uuid.UUID, name: str, hashed_secret: bytes
    ) -> ProvisionerKey:
        return await self._insert(
            ProvisionerKey,
            t.provisioner_keys,
            id=key_id,
            organization_id=organization_id,
            name=name,
            hashed_secret=hashed_secret,
            created_at=self._now(),
        )

    async def get_provisioner_key_by_id(self, key_id: str) -> ProvisionerKey | None:
        k = t.provisioner_keys
        return await self._one(ProvisionerKey, k.select().where(k.c.id == key_id))

    async def list_provisioner_keys(
        self, *, organization_id: uuid.UUID | None = None
    ) -> list[ProvisionerKey]:
        """Every provisioner key (of one organization), oldest first."""
        k = t.provisioner_keys
        stmt = k.select().order_by(k.c.created_at, k.c.id)
        if organization_id is not None:
            stmt = stmt.where(k.c.organization_id == organization_id)
        return await self._all(ProvisionerKey, stmt)

    async def delete_provisioner_key(self, key_id: str) -> bool:
        k = t.provisioner_keys
        result = await self._execute(k.delete().where(k.c.id == key_id))
        return result.rowcount > 0
