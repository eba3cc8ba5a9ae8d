"""The server's job source: the build pipeline (:mod:`berth.services.builds`) for workers.

:class:`LocalJobs` is the :class:`~berth.provisioner.jobs.JobSource` of the workers
built into ``berth server``, and what the provisioner API routes call for a standalone
``berth provisioner`` (restricted to its key's organization). The long waits — for a
job to arrive, for a running job's status to change — wake on the event bus and
re-check the database when they do; they end after ``wait`` seconds in any case.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Collection

from berth.db.authz import AuthzStore
from berth.domain.enums import JobStatus
from berth.errors import BuildFailed, JobGone, JobTaken
from berth.events import listening, messages, pause
from berth.provisioner.jobs import AcquiredJob, Outcome
from berth.provisioner.spec import LogSink
from berth.records import ProvisionerJob
from berth.services import builds
from berth.services.base import Ctx

log = logging.getLogger("berth.provisioner")

_ACTIVE = (JobStatus.RUNNING.value, JobStatus.CANCELING.value)


class LocalJobs:
    """Jobs straight from the database, for the workers of this server or of one key."""

    def __init__(
        self,
        ctx: Ctx,
        *,
        server_url: str,
        organization_id: uuid.UUID | None = None,
        where: str = "server",
    ) -> None:
        self._ctx = builds.provisioner(ctx)
        self._server_url = server_url
        self._organization_id = organization_id
        self._where = where

    async def acquire(
        self, worker_id: str, *, wait: float, backends: Collection[str] | None
    ) -> AcquiredJob | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        async with listening(self._ctx.bus, messages.JOBS) as events:
            while True:
                job = await builds.claim(
                    self._ctx, worker_id, organization_id=self._organization_id
                )
                if job is not None:
                    prepared = await self._prepare(job, backends)
                    if prepared is not None:
                        return prepared
                    continue  # it failed before it reached the worker: try the next one
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                await pause(events, remaining)

    async def _prepare(
        self, job: ProvisionerJob, backends: Collection[str] | None
    ) -> AcquiredJob | None:
        """The job ready for the worker, or ``None`` when it failed (and was completed) here."""
        try:
            return await builds.prepare(
                self._ctx, job.id, server_url=self._server_url, backends=backends, where=self._where
            )
        except BuildFailed as exc:
            await builds.fail(self._ctx, job.id, exc)
        except Exception as exc:
            log.exception("job %s failed unexpectedly", job.id)
            await builds.finish(self._ctx, job.id, JobStatus.FAILED, error=f"internal error: {exc}")
        return None

    async def heartbeat(self, job_id: uuid.UUID, worker_id: str, *, wait: float) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        async with listening(self._ctx.bus, messages.job(job_id)) as events:
            async with self._ctx.write() as store:
                await self._owned(store, job_id, worker_id)
                job = await store.update_provisioner_job_heartbeat(job_id, worker_id)
            if job is None:  # _owned checked it in this very transaction
                raise JobTaken("The job is not this worker's.")
            while job.status == JobStatus.RUNNING.value:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                await pause(events, remaining)
                async with self._ctx.read() as store:
                    current = await store.get_provisioner_job_by_id(job_id)
                if current is None:
                    raise JobGone("provisioner job not found")
                job = current
        return job.status

    def log_sink(self, job_id: uuid.UUID, worker_id: str) -> LogSink:
        return builds.JobLog(self._ctx, job_id)

    async def append_logs(
        self, job_id: uuid.UUID, worker_id: str | None, entries: list[tuple[str, str, str]]
    ) -> None:
        """Build output sent by a worker elsewhere (the job must be running for it)."""
        async with self._ctx.read() as store:
            await self._owned(store, job_id, worker_id)
        await builds.JobLog(self._ctx, job_id).append(entries)

    async def complete(self, job_id: uuid.UUID, worker_id: str | None, outcome: Outcome) -> str:
        """Record the outcome exactly as for every build, and complete the job."""
        async with self._ctx.read() as store:
            await self._owned(store, job_id, worker_id)
        done = await self._finish(job_id, outcome)
        if done is None:
            raise JobTaken("The job was completed already.")
        return done.status

    async def _finish(self, job_id: uuid.UUID, outcome: Outcome) -> ProvisionerJob | None:
        if outcome.status == "succeeded":
            try:
                await builds.record(self._ctx, job_id, list(outcome.resources))
            except BuildFailed as exc:
                return await builds.fail(self._ctx, job_id, exc)
            return await builds.finish(self._ctx, job_id, JobStatus.SUCCEEDED)
        if outcome.status == "failed":
            failure = BuildFailed(outcome.error or "the build failed", code=outcome.error_code)
            return await builds.fail(self._ctx, job_id, failure)
        error = outcome.error or "the build was canceled"
        return await builds.finish(self._ctx, job_id, JobStatus.CANCELED, error=error)

    async def _owned(
        self, store: AuthzStore, job_id: uuid.UUID, worker_id: str | None
    ) -> ProvisionerJob:
        """The job, if it is running for this source (and ``worker_id``, when given)."""
        job = await store.get_provisioner_job_by_id(job_id)
        if job is None or (
            self._organization_id is not None and job.organization_id != self._organization_id
        ):
            raise JobGone("provisioner job not found")
        if job.status not in _ACTIVE:
            raise JobTaken(f"The job is {job.status}.")
        if worker_id is not None and job.worker_id != worker_id:
            raise JobTaken("The job is run by another worker.", detail=f"worker {job.worker_id}")
        return job
