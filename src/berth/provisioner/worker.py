"""Provisioner workers: claim jobs, run them with a heartbeat, reap the abandoned.

A worker sleeps on the ``provisioner:jobs`` channel, so a new job starts within
milliseconds; it also re-checks every ``poll_interval`` in case an event was lost.
While a job runs, the worker heart-beats it and watches for ``canceling``. The reaper
fails jobs whose worker stopped heart-beating (a crashed server) and stops the
sandbox such a build may have left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import socket
import uuid
from dataclasses import dataclass

from berth.db.authz import AuthzStore
from berth.db.engine import Database
from berth.domain.actors import as_provisioner
from berth.domain.enums import JobStatus, Transition
from berth.domain.template import validate_template_data
from berth.events import EventBus, publish_quietly
from berth.provisioner.runner import BuildRunner, JobLog
from berth.provisioner.spec import BuildFailed, BuildSpec

log = logging.getLogger("berth.provisioner")

JOBS_CHANNEL = "provisioner:jobs"


@dataclass(frozen=True, slots=True)
class WorkerTiming:
    poll_interval: float = 5.0
    heartbeat_interval: float = 2.0
    stale_after: dt.timedelta = dt.timedelta(seconds=30)
    reap_interval: float = 10.0


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


class Worker:
    """One job at a time; run several for parallel builds."""

    def __init__(
        self,
        db: Database,
        bus: EventBus | None,
        runner: BuildRunner,
        *,
        worker_id: str | None = None,
        timing: WorkerTiming | None = None,
    ) -> None:
        self._db = db
        self._bus = bus
        self._runner = runner
        self.worker_id = worker_id or new_worker_id()
        self._timing = timing or WorkerTiming()

    async def run_forever(self) -> None:
        if self._bus is None:
            while True:
                if not await self.run_once():
                    await asyncio.sleep(self._timing.poll_interval)
        async with self._bus.subscribe(JOBS_CHANNEL) as jobs:
            while True:
                if not await self.run_once():
                    await jobs.get(timeout=self._timing.poll_interval)

    async def run_once(self) -> bool:
        """Claim and run one job; ``False`` when there was none."""
        async with self._db.write() as raw:
            job = await AuthzStore(raw, as_provisioner()).acquire_provisioner_job(self.worker_id)
        if job is None:
            return False
        log.info("worker %s runs job %s", self.worker_id, job.id)
        await publish_quietly(self._bus, f"job:{job.id}", {"type": "status", "status": job.status})
        task = asyncio.create_task(self._runner.run(job))
        beat = asyncio.create_task(self._heartbeat(job.id, task))
        try:
            await task
        except asyncio.CancelledError:
            # The heartbeat cancels ``task`` when the job is canceled: that ends this
            # job, not the worker. A cancellation of the worker itself (shutdown) also
            # cancels the awaited ``task``, so tell the two apart by our own state.
            current = asyncio.current_task()
            if not task.cancelled() or (current is not None and current.cancelling()):
                raise
        finally:
            beat.cancel()
            # Not ``await beat`` under suppress(CancelledError): that would also swallow
            # a cancellation of this worker arriving while the beat winds down.
            await asyncio.wait([beat])
            if not beat.cancelled() and (error := beat.exception()) is not None:
                log.warning("the heartbeat of job %s failed", job.id, exc_info=error)
        return True

    async def _heartbeat(self, job_id: uuid.UUID, task: asyncio.Task[None]) -> None:
        channel = f"job:{job_id}"
        subscription = self._bus.subscribe(channel) if self._bus else contextlib.nullcontext()
        async with subscription as events:
            while not task.done():
                async with self._db.write() as raw:
                    job = await AuthzStore(raw, as_provisioner()).update_provisioner_job_heartbeat(
                        job_id, self.worker_id
                    )
                if job is None or job.status == JobStatus.CANCELING.value:
                    task.cancel()
                    return
                if events is None:
                    await asyncio.sleep(self._timing.heartbeat_interval)
                else:
                    await events.get(timeout=self._timing.heartbeat_interval)


class Reaper:
    """Fails jobs whose worker died and stops what their builds left running."""

    def __init__(
        self, runner: BuildRunner, db: Database, timing: WorkerTiming | None = None
    ) -> None:
        self._runner = runner
        self._db = db
        self._timing = timing or WorkerTiming()

    async def run_forever(self) -> None:
        while True:
            await self.reap_once()
            await asyncio.sleep(self._timing.reap_interval)

    async def reap_once(self) -> int:
        """Reap every stale job now; returns how many."""
        cutoff = self._db.clock.now() - self._timing.stale_after
        async with self._db.write() as raw:
            stale = await AuthzStore(raw, as_provisioner()).list_stale_provisioner_jobs(cutoff)
        for job in stale:
            seconds = int(self._timing.stale_after.total_seconds())
            message = (
                f"the provisioner running this build ({job.worker_id}) stopped responding: "
                f"no heartbeat for {seconds}s"
            )
            log.warning("reaping job %s: %s", job.id, message)
            await self._reconcile(job.id)
            await self._runner.finish(job.id, JobStatus.FAILED, error=message)
        return len(stale)

    async def _reconcile(self, job_id: uuid.UUID) -> None:
        """Stop the sandbox a half-done start build may have created (the home stays)."""
        async with self._db.read() as raw:
            store = AuthzStore(raw, as_provisioner())
            build = await store.get_workspace_build_by_job_id(job_id)
            workspace = build and await store.get_workspace_by_id(build.workspace_id)
        if not build or not workspace or build.rendered is None:
            return
        if build.transition != Transition.START.value:
            return
        doc = validate_template_data(build.rendered, filename=f"build {build.build_number}")
        backend = self._runner.backends.get(doc.backend.type.value)
        if backend is None:
            return
        spec = BuildSpec(
            workspace_id=workspace.id,
            workspace_name=workspace.name,
            owner_name="",
            build_id=build.id,
            build_number=build.build_number,
            template=doc,
            agents=[],
            server_url=self._runner.config.server_url,
            agent_zipapp=self._runner.config.agent_zipapp(),
            state_dir=self._runner.config.state_dir,
        )
        sink = JobLog(self._db, None, job_id)
        try:
            await backend.apply(spec, Transition.STOP, sink)
        except BuildFailed as exc:
            await sink(f"reconcile: {exc.message}", stage="reap", level="error")
