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
from collections.abc import Collection, Mapping

from berth.agentconn import AgentGateway
from berth.db.authz import AuthzStore
from berth.domain.enums import AgentLifecycle, JobStatus
from berth.errors import AgentUnavailable, BuildFailed, JobGone, JobTaken
from berth.events import listening, messages, pause
from berth.provisioner.jobs import AcquiredJob, Outcome
from berth.provisioner.spec import LogSink, Place
from berth.records import ProvisionerJob, WorkspaceAgent
from berth.services import agents, builds
from berth.services.base import Ctx

log = logging.getLogger("berth.provisioner")

_ACTIVE = (JobStatus.RUNNING.value, JobStatus.CANCELING.value)
_SHUT_DOWN = (
    AgentLifecycle.OFF.value,
    AgentLifecycle.SHUTDOWN_ERROR.value,
    AgentLifecycle.SHUTDOWN_TIMEOUT.value,
)
_SHUTTING_DOWN = AgentLifecycle.SHUTTING_DOWN.value


class LocalJobs:
    """Jobs straight from the database, for the workers of this server or of one key."""

    def __init__(
        self,
        ctx: Ctx,
        *,
        server_url: str,
        gateway: AgentGateway | None = None,
        organization_id: uuid.UUID | None = None,
        where: str = "server",
    ) -> None:
        """``gateway``: this server's agent connections, for the stop scripts (``None``:
        agents are not asked, the stop goes on at once)."""
        self._ctx = builds.provisioner(ctx)
        self._server_url = server_url
        self._gateway = gateway
        self._organization_id = organization_id
        self._where = where

    async def acquire(
        self,
        worker_id: str,
        *,
        wait: float,
        backends: Collection[str] | None,
        places: Mapping[str, Place] | None = None,
    ) -> AcquiredJob | None:
        """The next job this worker can reach (see :meth:`JobSource.acquire`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        async with listening(self._ctx.bus, messages.JOBS) as events:
            while True:
                job = await builds.claim(
                    self._ctx, worker_id, organization_id=self._organization_id, places=places
                )
                if job is not None:
                    prepared = await self._prepare(job, backends, places)
                    if prepared is not None:
                        return prepared
                    continue  # it failed before it reached the worker: try the next one
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                await pause(events, remaining)

    async def _prepare(
        self,
        job: ProvisionerJob,
        backends: Collection[str] | None,
        places: Mapping[str, Place] | None,
    ) -> AcquiredJob | None:
        """The job ready for the worker, or ``None`` when it failed (and was completed) here."""
        try:
            return await builds.prepare(
                self._ctx,
                job.id,
                server_url=self._server_url,
                backends=backends,
                places=places,
                where=self._where,
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

    async def shutdown_agents(self, job_id: uuid.UUID, worker_id: str, *, wait: float) -> bool:
        """Ask the agents to run their stop scripts (once each), wait, say when done.

        An agent is done when it reports ``off``, ``shutdown_error`` or
        ``shutdown_timeout``, or when it is not connected to this server; all of them are
        done, whatever they report, once the stop scripts' timeouts have passed
        (:func:`berth.services.builds.shutdown_plan`). Each outcome is logged.
        """
        async with self._ctx.read() as store:
            await self._owned(store, job_id, worker_id)
        plan = await builds.shutdown_plan(self._ctx, job_id)
        if not plan.agents or self._gateway is None:
            return True
        sink = builds.JobLog(self._ctx, job_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        channels = [messages.agent(a.id) for a in plan.agents]
        async with listening(self._ctx.bus, *channels) as events:
            for agent in plan.agents:
                await self._ask(agent, sink)
            while True:
                left = await self._stopping(plan)
                if not left:
                    await self._outcomes(plan, sink)
                    return True
                if self._ctx.clock.now() >= plan.until:
                    names = ", ".join(a.name for a in left)
                    await sink(
                        f"stop scripts of {names} still running; stopping anyway", stage="stop"
                    )
                    return True
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                await pause(events, remaining)

    async def _ask(self, agent: WorkspaceAgent, sink: LogSink) -> None:
        gateway = self._gateway
        if gateway is None or agent.lifecycle_state in (*_SHUT_DOWN, _SHUTTING_DOWN):
            return
        if not await gateway.reachable(agent.id):
            await sink(
                f"agent {agent.name} is not connected: its stop scripts do not run", stage="stop"
            )
            return
        try:
            await gateway.notify(agent.id, {"type": "shutdown"})
        except AgentUnavailable as exc:
            await sink(f"agent {agent.name}: {exc}; its stop scripts do not run", stage="stop")
            return
        await sink(f"agent {agent.name}: running its stop scripts", stage="stop")

    async def _stopping(self, plan: builds.Shutdown) -> list[WorkspaceAgent]:
        """The agents still running their stop scripts (the others' outcome is logged)."""
        gateway = self._gateway
        left: list[WorkspaceAgent] = []
        for agent in plan.agents:
            current = await agents.get_agent(self._ctx, agent.id) or agent
            if current.lifecycle_state in _SHUT_DOWN:
                continue
            if gateway is None or not await gateway.reachable(agent.id):
                continue
            left.append(current)
        return left

    async def _outcomes(self, plan: builds.Shutdown, sink: LogSink) -> None:
        for agent in plan.agents:
            current = await agents.get_agent(self._ctx, agent.id) or agent
            state = current.lifecycle_state
            if state in _SHUT_DOWN:
                level = "info" if state == AgentLifecycle.OFF else "error"
                await sink(f"agent {agent.name}: stop scripts {state}", stage="stop", level=level)

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
            except Exception:  # a bug or a refusal of the database: fail it, never wedge it
                log.exception("recording the result of job %s failed", job_id)
                failure = BuildFailed("the build's result could not be recorded (see the log)")
                return await builds.fail(self._ctx, job_id, failure)
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
