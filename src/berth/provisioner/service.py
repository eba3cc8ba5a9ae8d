"""The provisioner as one runnable unit: workers plus the reaper, started and stopped together."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from berth.db.engine import Database
from berth.events import EventBus
from berth.provisioner.runner import BuildRunner, RunnerConfig
from berth.provisioner.spec import Backend
from berth.provisioner.worker import Reaper, Worker, WorkerTiming

log = logging.getLogger("berth.provisioner")


class Provisioner:
    """``workers`` build workers and one reaper as background tasks."""

    def __init__(
        self,
        db: Database,
        bus: EventBus | None,
        backends: Mapping[str, Backend],
        *,
        server_url: str,
        state_dir: Path,
        agent_zipapp: Callable[[], Path],
        workers: int = 2,
        timing: WorkerTiming | None = None,
    ) -> None:
        self.timing = timing or WorkerTiming()
        self.runner = BuildRunner(
            db,
            bus,
            backends,
            RunnerConfig(server_url=server_url, state_dir=state_dir, agent_zipapp=agent_zipapp),
        )
        self.workers = [Worker(db, bus, self.runner, timing=self.timing) for _ in range(workers)]
        self.reaper = Reaper(self.runner, db, self.timing)
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def stale_after(cls, seconds: float) -> WorkerTiming:
        """Timing for a given staleness: reap at least twice per window, at most every 10s."""
        return WorkerTiming(
            stale_after=dt.timedelta(seconds=seconds),
            reap_interval=max(0.2, min(10.0, seconds / 2)),
            heartbeat_interval=max(0.1, min(2.0, seconds / 4)),
        )

    def start(self) -> None:
        for worker in self.workers:
            self._tasks.append(
                asyncio.create_task(_forever(worker.run_forever), name=worker.worker_id)
            )
        # The reaper runs even without built-in workers: standalone provisioners
        # (berth provisioner) can die mid-build too, and only the server reaps.
        self._tasks.append(asyncio.create_task(_forever(self.reaper.run_forever), name="reaper"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        # gather, not ``await task`` under suppress(CancelledError): a cancellation of
        # the caller must propagate, not be taken for one of the tasks ending.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


async def _forever(loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a loop, restarting it (after a pause) if it crashes, until cancelled."""
    while True:
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("provisioner loop crashed; restarting in 1s")
            await asyncio.sleep(1)
