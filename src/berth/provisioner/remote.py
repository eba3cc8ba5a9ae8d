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
``POST jobs/{id}/shutdown {worker_id, wait_seconds}``
    Before a stop or delete build's apply: the server asks the workspace's agents to
    run their stop scripts and answers ``{done}`` once they are done (or may be
    skipped), waiting up to ``wait_seconds``; the worker asks again until ``done``.
``POST jobs/{id}/logs {worker_id, entries: [{stage, level, output}]}``
    Build output, stored in order and streamed to watchers.
``POST jobs/{id}/complete {worker_id, status, error?, error_code?, resources?}``
    ``succeeded`` (with the backend's resources), ``failed`` or ``canceled``: the server
    records and completes exactly as the built-in runner does.

The agent zipapp comes from the server (``/api/v1/agent/berth-agent.pyz``) once per
start, cached in the data dir by its hash (and revalidated with its ETag).

The workers are :class:`~berth.provisioner.worker.Worker` s, the same as a server's,
with :class:`~berth.provisioner.remote_client.ProvisionerAPI` as their job source; the
server answers these endpoints with the same job source its own workers use
(:class:`berth.services.jobs.LocalJobs`), so a build runs the same steps either way.

A provisioner that vanishes mid-build stops heart-beating; its job is then failed by
the server's reaper. A server that hangs up mid-build is retried: log lines are dropped,
heartbeats and the final report are sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from berth.errors import KeyRefused
from berth.provisioner.jobs import Host
from berth.provisioner.remote_client import ProvisionerAPI
from berth.provisioner.spec import Backend
from berth.provisioner.wire import KeyOut
from berth.provisioner.worker import Worker, WorkerTiming

log = logging.getLogger("berth.provisioner")

REMOTE_TIMING = WorkerTiming(acquire_wait=25.0, heartbeat_wait=5.0, retry_after=2.0)
"""An acquire is a long poll (the server holds it at most 30 s); heartbeats wait 5 s."""


class RemoteProvisioner:
    """``workers`` workers against one server, until cancelled or the key is refused.

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
        timing: WorkerTiming = REMOTE_TIMING,
    ) -> None:
        self.api = api
        self.backends = backends
        self.data_dir = data_dir
        self.state_dir = state_dir or data_dir / "workspaces"
        self.workers = max(workers, 1)
        self.timing = timing
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
        zipapp = self.agent_zipapp
        if zipapp is None:
            await self.connect()
            zipapp = self.agent_zipapp
        if zipapp is None:  # pragma: no cover - connect() sets it or raises
            raise RuntimeError("the agent zipapp was not fetched")
        host = Host(self.backends, zipapp, self.state_dir)
        workers = [Worker(self.api, host, timing=self.timing) for _ in range(self.workers)]
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


async def _forever(worker: Worker) -> None:
    """Run a worker, restarting it after an unexpected crash; a refused key ends it."""
    while True:
        try:
            await worker.run_forever()
        except (asyncio.CancelledError, KeyRefused):
            raise
        except Exception:
            log.exception("worker %s crashed; restarting in 1s", worker.worker_id)
            await asyncio.sleep(1)
