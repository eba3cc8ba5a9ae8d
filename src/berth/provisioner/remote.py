"""A standalone provisioner: the same workers, building over the server's HTTP API.

``berth provisioner`` runs :class:`RemoteProvisioner` on any host with a backend
(bwrap, Docker). It authenticates with a provisioner key and never sees the database:
the server runs the database steps of :mod:`berth.provisioner.runner` for it and
the worker runs only the backend's ``apply``. The protocol, under ``/api/v1/provisioner``:

``GET key``
    The calling key (``{id, name, organization_id}``): checks the key at start-up.
``POST jobs/acquire {worker_id, wait_seconds, backends}``
    Long-poll (at most :data:`MAX_WAIT_SECONDS`) for the most urgent pending job of the
    key's organization. The server claims it and prepares it (quota check; agent rows
    and fresh tokens); a job that fails there is completed at once and never handed out.
    ``204`` when none came; else ``200`` with an :class:`AcquiredJob`.
``POST jobs/{id}/heartbeat {worker_id, wait_seconds}``
    Records a heartbeat and answers ``{status}``, waiting up to ``wait_seconds`` for the
    status to change, so a cancel arrives within milliseconds. ``canceling``, or a
    404/409 (the job is gone or not this worker's any more) cancels the apply.
``POST jobs/{id}/logs {worker_id, entries: [{stage, level, output}]}``
    Build output, stored in order and streamed to watchers.
``POST jobs/{id}/complete {worker_id, status, error?, error_code?, resources?}``
    ``succeeded`` (with the backend's resources), ``failed`` or ``canceled``: the server
    records and completes exactly as the built-in runner does.

The agent zipapp comes from the server (``/api/v1/agent/berth-agent.pyz``) once per
start, cached in the data dir by its hash (and revalidated with its ETag).

A provisioner that vanishes mid-build stops heart-beating; its job is then failed by
the server's reaper, which (today) runs only on a server with built-in workers
(``provisioner_workers > 0``). A server that hangs up mid-build is retried: log lines
are dropped, heartbeats and the final report are sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from berth.provisioner.remote_client import (
    JobLost,
    KeyRefused,
    ProvisionerAPI,
    RemoteError,
)
from berth.provisioner.spec import (
    Backend,
    BuildFailed,
)
from berth.provisioner.wire import (
    COMPLETE_ATTEMPTS,
    AcquiredJob,
    KeyOut,
    Outcome,
)
from berth.provisioner.worker import new_worker_id

log = logging.getLogger("berth.provisioner")


@dataclass(frozen=True, slots=True)
class RemoteTiming:
    acquire_wait: float = 25.0
    """How long one acquire request waits for a job (the server caps it at 30 s)."""
    heartbeat_wait: float = 5.0
    """How long one heartbeat waits for a status change; well below the stale timeout."""
    retry_after: float = 2.0
    """Pause after a failed request before trying again (the server may be restarting)."""


class RemoteJobLog:
    """The :class:`~berth.provisioner.spec.LogSink` of a remote job: POSTed to the server.

    A log line that cannot be delivered is logged here and dropped; it never fails the build.
    """

    def __init__(self, api: ProvisionerAPI, job_id: uuid.UUID, worker_id: str) -> None:
        self._api = api
        self._job_id = job_id
        self._worker_id = worker_id

    async def __call__(self, output: str, *, stage: str = "apply", level: str = "info") -> None:
        try:
            await self._api.logs(self._job_id, self._worker_id, [(stage, level, output)])
        except RemoteError as exc:
            log.warning("job %s: could not send a log line: %s", self._job_id, exc)


class RemoteWorker:
    """One job at a time, like :class:`~berth.provisioner.worker.Worker`, over HTTP."""

    def __init__(
        self,
        api: ProvisionerAPI,
        backends: Mapping[str, Backend],
        *,
        agent_zipapp: Path,
        state_dir: Path,
        worker_id: str | None = None,
        timing: RemoteTiming | None = None,
    ) -> None:
        self._api = api
        self._backends = backends
        self._agent_zipapp = agent_zipapp
        self._state_dir = state_dir
        self.worker_id = worker_id or new_worker_id()
        self._timing = timing or RemoteTiming()

    async def run_forever(self) -> None:
        """Acquire and run jobs until cancelled; :class:`KeyRefused` ends it."""
        while True:
            try:
                await self.run_once(wait_seconds=self._timing.acquire_wait)
            except KeyRefused:
                raise
            except RemoteError as exc:
                log.warning("worker %s: %s; retrying", self.worker_id, exc)
                await asyncio.sleep(self._timing.retry_after)

    async def run_once(self, *, wait_seconds: float = 0.0) -> bool:
        """Acquire and run one job; ``False`` when none came within ``wait_seconds``."""
        job = await self._api.acquire(
            self.worker_id, wait_seconds=wait_seconds, backends=sorted(self._backends)
        )
        if job is None:
            return False
        log.info("worker %s runs job %s", self.worker_id, job.job_id)
        await self._run(job)
        return True

    async def _run(self, job: AcquiredJob) -> None:
        lost = asyncio.Event()
        task = asyncio.create_task(self._apply(job))
        beat = asyncio.create_task(self._heartbeat(job.job_id, task, lost))
        try:
            outcome = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not task.cancelled() or (current is not None and current.cancelling()):
                # The worker itself is stopping: tell the server, briefly, then stop.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self._complete(job.job_id, Outcome("canceled", "the build was canceled")),
                        timeout=5.0,
                    )
                raise
            if lost.is_set():
                log.warning("job %s is no longer this worker's; dropped it", job.job_id)
                return
            outcome = Outcome("canceled", "the build was canceled")
        finally:
            beat.cancel()
            # Not ``await beat`` under suppress(CancelledError): that would also swallow
            # a cancellation of this worker arriving while the beat winds down.
            await asyncio.wait([beat])
            if not beat.cancelled() and (error := beat.exception()) is not None:
                log.warning("the heartbeat of job %s failed", job.job_id, exc_info=error)
        await self._complete(job.job_id, outcome)

    async def _complete(self, job_id: uuid.UUID, outcome: Outcome) -> None:
        """Report the outcome, retrying while the server is unreachable (it may restart)."""
        for attempt in range(COMPLETE_ATTEMPTS):
            try:
                status = await self._api.complete(job_id, self.worker_id, outcome)
            except (JobLost, KeyRefused) as exc:
                log.warning("job %s: the server did not take its result: %s", job_id, exc)
                if isinstance(exc, KeyRefused):
                    raise
                return
            except RemoteError as exc:
                if attempt + 1 == COMPLETE_ATTEMPTS:
                    raise
                log.warning("job %s: could not report its result (%s); retrying", job_id, exc)
                await asyncio.sleep(self._timing.retry_after)
            else:
                log.info("job %s: %s", job_id, status)
                return

    async def _apply(self, job: AcquiredJob) -> Outcome:
        sink = RemoteJobLog(self._api, job.job_id, self.worker_id)
        try:
            spec = job.build_spec(agent_zipapp=self._agent_zipapp, state_dir=self._state_dir)
            backend = self._backends.get(spec.template.backend.type.value)
            if backend is None:
                raise BuildFailed(
                    f"no {spec.template.backend.type.value!r} backend is configured"
                    " on this provisioner"
                )
            records = await backend.apply(spec, job.transition, sink)
        except BuildFailed as exc:
            return Outcome("failed", exc.message, exc.code)
        except Exception as exc:
            log.exception("job %s failed unexpectedly", job.job_id)
            return Outcome("failed", f"internal error: {exc}")
        return Outcome("succeeded", resources=records)

    async def _heartbeat(
        self, job_id: uuid.UUID, task: asyncio.Task[Outcome], lost: asyncio.Event
    ) -> None:
        while not task.done():
            try:
                status = await self._api.heartbeat(
                    job_id, self.worker_id, wait_seconds=self._timing.heartbeat_wait
                )
            except JobLost:
                lost.set()
                task.cancel()
                return
            except RemoteError as exc:
                log.warning("job %s: heartbeat failed: %s", job_id, exc)
                await asyncio.sleep(self._timing.retry_after)
                continue
            if status != "running":  # canceling, or completed behind this worker's back
                if status != "canceling":
                    lost.set()
                task.cancel()
                return


class RemoteProvisioner:
    """``workers`` remote workers against one server, until cancelled.

    ``data_dir`` holds the agent zipapp cache (``agent/``) and, unless ``state_dir``
    says otherwise, the backends' per-workspace state (``workspaces/``).
    """

    def __init__(
        self,
        api: ProvisionerAPI,
        backends: Mapping[str, Backend],
        *,
        data_dir: Path,
        workers: int = 2,
        state_dir: Path | None = None,
        timing: RemoteTiming | None = None,
    ) -> None:
        self.api = api
        self.backends = backends
        self.data_dir = data_dir
        self.state_dir = state_dir or data_dir / "workspaces"
        self.workers = max(workers, 1)
        self.timing = timing or RemoteTiming()
        self.key: KeyOut | None = None
        self.agent_zipapp: Path | None = None

    async def connect(self) -> KeyOut:
        """Check the key and fetch the agent zipapp; raises :class:`RemoteError` for a person."""
        self.key = await self.api.whoami()
        self.agent_zipapp = await self.api.agent_zipapp(self.data_dir / "agent")
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.key

    async def run(self) -> None:
        """Connect (unless done), then run the workers until cancelled or the key is refused."""
        if self.agent_zipapp is None:
            await self.connect()
        zipapp = self.agent_zipapp
        assert zipapp is not None
        workers = [
            RemoteWorker(
                self.api,
                self.backends,
                agent_zipapp=zipapp,
                state_dir=self.state_dir,
                timing=self.timing,
            )
            for _ in range(self.workers)
        ]
        try:
            async with asyncio.TaskGroup() as group:
                for worker in workers:
                    group.create_task(_forever(worker), name=worker.worker_id)
        except BaseExceptionGroup as group:
            raise _first_leaf(group) from None


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception inside ``group`` (nested groups unwrapped)."""
    first: BaseException = group.exceptions[0]
    if isinstance(first, BaseExceptionGroup):
        return _first_leaf(cast("BaseExceptionGroup[BaseException]", first))
    return first


async def _forever(worker: RemoteWorker) -> None:
    """Run a worker, restarting it after an unexpected crash; a refused key ends it."""
    while True:
        try:
            await worker.run_forever()
        except (asyncio.CancelledError, KeyRefused):
            raise
        except Exception:
            log.exception("worker %s crashed; restarting in 1s", worker.worker_id)
            await asyncio.sleep(1)
