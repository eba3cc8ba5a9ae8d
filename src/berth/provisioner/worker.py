"""The provisioner worker: one loop for built-in and standalone workers alike.

A worker acquires a job from its :class:`~berth.provisioner.jobs.JobSource` (waiting on
it, so a new job starts within milliseconds), applies it with this host's backend while
a heartbeat task keeps the job alive and watches for ``canceling``, and reports the
outcome. The source decides where that goes: the database (``berth server``) or the
server's API (``berth provisioner``). A job that is no longer this worker's (completed
behind its back, reaped) is dropped without a report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from dataclasses import dataclass

from berth.domain.enums import Transition
from berth.errors import BuildFailed, JobLost, KeyRefused, RemoteError, Unavailable
from berth.provisioner.jobs import CANCELED, AcquiredJob, Host, JobSource, Outcome
from berth.provisioner.spec import Place

log = logging.getLogger("berth.provisioner")

_RETRYABLE = (Unavailable, RemoteError)
"""A source that cannot be reached right now (a busy database, a restarting server)."""


@dataclass(frozen=True, slots=True)
class WorkerTiming:
    acquire_wait: float = 5.0
    """How long one acquire waits for a job before asking again (a remote source holds
    the request open that long, at most 30 s)."""
    heartbeat_wait: float = 2.0
    """How long one heartbeat waits for a status change; well below the stale timeout."""
    retry_after: float = 2.0
    """Pause after the source could not be reached, before trying again."""
    complete_attempts: int = 5
    """How often an outcome is reported while the source cannot be reached."""
    shutdown_report: float = 5.0
    """How long a stopping worker tries to report its build as canceled."""
    shutdown_wait: float = 5.0
    """How long one ask for the agents' stop scripts waits before asking again."""


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


class Worker:
    """One job at a time; run several for parallel builds."""

    def __init__(
        self,
        source: JobSource,
        host: Host,
        *,
        worker_id: str | None = None,
        timing: WorkerTiming | None = None,
    ) -> None:
        self._source = source
        self._host = host
        self.worker_id = worker_id or new_worker_id()
        self._timing = timing or WorkerTiming()
        self._announced: dict[str, Place] | None = None

    async def run_forever(self) -> None:
        """Acquire and run jobs until cancelled; :class:`KeyRefused` ends it."""
        while True:
            try:
                await self.run_once(wait=self._timing.acquire_wait)
            except KeyRefused:
                raise
            except _RETRYABLE as exc:
                log.warning("worker %s: %s; retrying", self.worker_id, exc)
                await asyncio.sleep(self._timing.retry_after)

    async def run_once(self, *, wait: float = 0.0) -> bool:
        """Acquire and run one job; ``False`` when none came within ``wait`` seconds."""
        places = await self._host.places()
        self._announce(places)
        job = await self._source.acquire(
            self.worker_id, wait=wait, backends=sorted(self._host.backends), places=places
        )
        if job is None:
            return False
        log.info("worker %s runs job %s", self.worker_id, job.job_id)
        await self._run(job)
        return True

    def _announce(self, places: dict[str, Place]) -> None:
        """Log where this worker's backends build, whenever that changes (an engine that
        answers again): the jobs of workspaces elsewhere are never handed to it."""
        if places == self._announced:
            return
        self._announced = dict(places)
        served = "; ".join(f"{name} at {p.label}" for name, p in places.items()) or "no place"
        missing = sorted(set(self._host.backends) - set(places))
        unknown = f" (cannot tell where {', '.join(missing)} builds yet)" if missing else ""
        log.info("worker %s serves %s%s", self.worker_id, served, unknown)

    async def _run(self, job: AcquiredJob) -> None:
        lost = asyncio.Event()
        task = asyncio.create_task(self._apply(job))
        beat = asyncio.create_task(self._heartbeat(job.job_id, task, lost))
        try:
            outcome = await task
        except asyncio.CancelledError:
            # The heartbeat cancels ``task`` when the job is canceled: that ends this
            # job, not the worker. A cancellation of the worker itself (shutdown) also
            # cancels the awaited ``task``, so tell the two apart by our own state.
            current = asyncio.current_task()
            if not task.cancelled() or (current is not None and current.cancelling()):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self._source.complete(job.job_id, self.worker_id, CANCELED),
                        timeout=self._timing.shutdown_report,
                    )
                raise
            if lost.is_set():
                log.warning("job %s is no longer this worker's; dropped it", job.job_id)
                return
            outcome = CANCELED
        finally:
            beat.cancel()
            # Not ``await beat`` under suppress(CancelledError): that would also swallow
            # a cancellation of this worker arriving while the beat winds down.
            await asyncio.wait([beat])
            if not beat.cancelled() and (error := beat.exception()) is not None:
                log.warning("the heartbeat of job %s failed", job.job_id, exc_info=error)
        await self._complete(job.job_id, outcome)

    async def _apply(self, job: AcquiredJob) -> Outcome:
        sink = self._source.log_sink(job.job_id, self.worker_id)
        try:
            spec = self._host.spec(job)
            kind = spec.template.backend.type.value
            backend = self._host.backends.get(kind)
            if backend is None:
                raise BuildFailed(f"no {kind!r} backend is configured on this provisioner")
            if job.transition is not Transition.START:
                await self._shut_agents_down(job)
            records = await backend.apply(spec, job.transition, sink)
        except BuildFailed as exc:
            return Outcome("failed", exc.message, exc.code)
        except Exception as exc:
            log.exception("job %s failed unexpectedly", job.job_id)
            return Outcome("failed", f"internal error: {exc}")
        return Outcome("succeeded", resources=records)

    async def _shut_agents_down(self, job: AcquiredJob) -> None:
        """Let the agents run their stop scripts first; this never keeps the stop from
        happening (the source bounds the wait by the scripts' timeouts)."""
        try:
            while not await self._source.shutdown_agents(
                job.job_id, self.worker_id, wait=self._timing.shutdown_wait
            ):
                pass
        except JobLost:
            raise
        except _RETRYABLE as exc:
            log.warning("job %s: could not run the stop scripts: %s", job.job_id, exc)

    async def _heartbeat(
        self, job_id: uuid.UUID, task: asyncio.Task[Outcome], lost: asyncio.Event
    ) -> None:
        while not task.done():
            try:
                status = await self._source.heartbeat(
                    job_id, self.worker_id, wait=self._timing.heartbeat_wait
                )
            except JobLost:
                lost.set()
                task.cancel()
                return
            except _RETRYABLE as exc:
                log.warning("job %s: heartbeat failed: %s", job_id, exc)
                await asyncio.sleep(self._timing.retry_after)
                continue
            if status != "running":  # canceling, or completed behind this worker's back
                if status != "canceling":
                    lost.set()
                task.cancel()
                return

    async def _complete(self, job_id: uuid.UUID, outcome: Outcome) -> None:
        """Report the outcome, retrying while the source is unreachable (it may restart)."""
        attempts = self._timing.complete_attempts
        for attempt in range(attempts):
            try:
                status = await self._source.complete(job_id, self.worker_id, outcome)
            except JobLost as exc:
                log.warning("job %s: the server did not take its result: %s", job_id, exc)
                return
            except KeyRefused:
                raise
            except _RETRYABLE as exc:
                if attempt + 1 == attempts:
                    raise
                log.warning("job %s: could not report its result (%s); retrying", job_id, exc)
                await asyncio.sleep(self._timing.retry_after)
            else:
                log.info("job %s: %s", job_id, status)
                return
