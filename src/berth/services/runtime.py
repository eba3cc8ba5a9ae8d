"""The server's long-lived parts, opened and closed together: the composition root.

:func:`open_runtime` migrates and bootstraps the database, starts the event bus, and
runs the background loops — the built-in provisioner workers and the reaper — until
the block ends; ``berth server`` (the API's lifespan) and the tests use it alike, so a
test server is the real one. :func:`prepare_database` is its first step on its own,
for a caller that wants a clear start-up error before serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from berth.agentconn import AgentGateway, Relay, Verifier
from berth.db.engine import Database, create_engine
from berth.db.migrate import migrate
from berth.domain.actors import Actor, as_mesh, as_provisioner
from berth.events import EventBus, Subscription, bus_for_url, messages
from berth.provisioner.backends.registry import make_backends
from berth.provisioner.jobs import Host
from berth.provisioner.spec import Backend
from berth.provisioner.worker import Worker, WorkerTiming
from berth.services import builds
from berth.services.autostop import Autostop
from berth.services.base import Ctx
from berth.services.bootstrap import Bootstrapped, bootstrap
from berth.services.jobs import LocalJobs
from berth.services.prebuilds import Reconciler
from berth.services.replicas import Registry
from berth.settings import Settings

log = logging.getLogger("berth.server")


@dataclass(frozen=True, slots=True)
class ReapTiming:
    stale_after: dt.timedelta = dt.timedelta(seconds=30)
    """A running job whose worker has not heart-beaten for this long is failed."""
    interval: float = 10.0


def timings_for(stale_after_seconds: float) -> tuple[WorkerTiming, ReapTiming]:
    """Worker and reaper timing for a staleness: reap twice per window, beat four times."""
    worker = WorkerTiming(heartbeat_wait=max(0.1, min(2.0, stale_after_seconds / 4)))
    reap = ReapTiming(
        stale_after=dt.timedelta(seconds=stale_after_seconds),
        interval=max(0.2, min(10.0, stale_after_seconds / 2)),
    )
    return worker, reap


class BuildLoops:
    """``workers`` built-in workers and the reaper, as background tasks of this process.

    The reaper runs even without built-in workers: standalone provisioners (``berth
    provisioner``) can die mid-build too, and only a server reaps.
    """

    def __init__(
        self,
        ctx: Ctx,
        host: Host,
        *,
        server_url: str,
        workers: int = 2,
        gateway: AgentGateway | None = None,
        worker_timing: WorkerTiming | None = None,
        reap_timing: ReapTiming | None = None,
    ) -> None:
        self._ctx = ctx.acting_as(as_provisioner())
        self.host = host
        self.server_url = server_url
        self.jobs = LocalJobs(self._ctx, server_url=server_url, gateway=gateway)
        self.workers = [Worker(self.jobs, host, timing=worker_timing) for _ in range(workers)]
        self.reap_timing = reap_timing or ReapTiming()
        self._tasks: list[asyncio.Task[None]] = []

    async def reap_once(self) -> int:
        """Reap every stale job now; returns how many."""
        return await builds.reap(
            self._ctx,
            self.host,
            stale_after=self.reap_timing.stale_after,
            server_url=self.server_url,
        )

    async def _reap_forever(self) -> None:
        while True:
            await self.reap_once()
            await asyncio.sleep(self.reap_timing.interval)

    def start(self) -> None:
        for worker in self.workers:
            self._tasks.append(
                asyncio.create_task(_forever(worker.run_forever), name=worker.worker_id)
            )
        self._tasks.append(asyncio.create_task(_forever(self._reap_forever), name="reaper"))

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
            log.exception("background loop crashed; restarting in 1s")
            await asyncio.sleep(1)


@dataclass(frozen=True, slots=True)
class Runtime:
    """The parts of a running server that requests use."""

    settings: Settings
    db: Database
    bus: EventBus
    gateway: AgentGateway
    agent_zipapp: Path
    builds: BuildLoops
    relay_verifier: Verifier
    """Checks the requests other replicas relay to this one's agents."""
    bootstrapped: Bootstrapped | None
    """What the first start created (the admin's token); ``None`` on later starts."""
    followers: set[Subscription] = field(default_factory=lambda: set[Subscription]())
    """The subscriptions of the requests that follow state for as long as their client
    stays (:meth:`follow`)."""

    def ctx(self, actor: Actor) -> Ctx:
        """A service context for ``actor`` on this server's database and bus."""
        return Ctx(self.db, actor, self.bus)

    @contextlib.asynccontextmanager
    async def follow(self, *channels: str) -> AsyncGenerator[Subscription]:
        """A bus subscription for a request that never ends on its own (a live page, a
        watch): :meth:`stop_following` ends it when the server starts to stop, so the
        request can end cleanly instead of holding the shutdown until its client leaves."""
        async with self.bus.subscribe(*channels) as subscription:
            self.followers.add(subscription)
            try:
                yield subscription
            finally:
                self.followers.discard(subscription)

    def stop_following(self) -> None:
        """End every :meth:`follow` subscription (their ``get`` raises
        :class:`~berth.events.SubscriptionClosed` once their queue is read)."""
        for subscription in list(self.followers):
            subscription.close()


async def prepare_database(db: Database, settings: Settings) -> Bootstrapped | None:
    """Migrate the database and, when it is empty, bootstrap it. Safe to repeat."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    await migrate(db.engine)
    return await bootstrap(db, install_examples=settings.install_examples)


def backends_for(settings: Settings) -> Mapping[str, Backend]:
    return make_backends(fake=settings.fake_backend)


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings, *, agent_zipapp: Path) -> AsyncGenerator[Runtime]:
    """Open everything, run the loops for the block, then stop and close it all."""
    url = settings.resolved_database_url()
    db = Database(create_engine(url))
    bus = bus_for_url(url)
    loops: BuildLoops | None = None
    registry: Registry | None = None
    relay: Relay | None = None
    background: list[asyncio.Task[None]] = []
    try:
        bootstrapped = await prepare_database(db, settings)
        await bus.start()
        server_url = settings.resolved_access_url()
        worker_timing, reap_timing = timings_for(settings.job_stale_after_seconds)
        host = Host(backends_for(settings), agent_zipapp, settings.data_dir / "workspaces")
        replica_id = uuid.uuid4()
        registry = Registry(
            Ctx(db, as_mesh(), bus), replica_id, relay_url=settings.resolved_relay_url()
        )
        secret = await registry.register()
        # SQLite is one process by design: an agent not held here is not connected.
        if db.dialect == "postgresql":
            relay = Relay(replica_id, secret, registry)
        gateway = AgentGateway(replica_id, relay=relay)
        loops = BuildLoops(
            Ctx(db, as_provisioner(), bus),
            host,
            server_url=server_url,
            workers=settings.provisioner_workers,
            gateway=gateway,
            worker_timing=worker_timing,
            reap_timing=reap_timing,
        )
        loops.start()
        ctx = Ctx(db, as_provisioner(), bus)
        reconciler = Reconciler(
            ctx,
            holder=str(gateway.replica_id),
            interval=settings.prebuilds_interval,
            site_max=settings.prebuilds_max,
        )
        for name, loop in (
            ("autostop", Autostop(ctx).run_forever),
            ("prebuilds", reconciler.run_forever),
            ("manifests", lambda: push_manifests(bus, gateway)),
            ("replica", registry.run_forever),
        ):
            background.append(asyncio.create_task(_forever(loop), name=name))
        verifier = Verifier(replica_id, secret)
        yield Runtime(settings, db, bus, gateway, agent_zipapp, loops, verifier, bootstrapped)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if loops is not None:
            await loops.stop()
        if registry is not None:
            await registry.deregister()
        if relay is not None:
            await relay.aclose()
        await bus.close()
        await db.dispose()


async def push_manifests(bus: EventBus, gateway: AgentGateway) -> None:
    """Re-send a rewritten manifest (a claim) to its agent, if this replica holds it."""
    async with bus.subscribe(messages.AGENT_MANIFESTS) as events:
        async for event in events:
            message = messages.parse(event)
            if isinstance(message, messages.ManifestChanged):
                await gateway.resend_manifest(message.agent_id)


async def prepare_server(settings: Settings) -> Bootstrapped | None:
    """:func:`prepare_database` on a connection of its own, before the server starts."""
    db = Database(create_engine(settings.resolved_database_url()))
    try:
        return await prepare_database(db, settings)
    finally:
        await db.dispose()
