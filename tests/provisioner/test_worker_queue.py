"""The job queue (DESIGN §6): acquisition order and exclusivity, heartbeats, reaping.

Every test runs on SQLite and on Postgres (the ``db``/``database_url`` fixtures) with
real workers and a real reaper; the backend is the fake one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from berth.clock import FakeClock
from berth.db.engine import Database, create_engine
from berth.domain.actors import as_provisioner, as_system
from berth.domain.enums import JobStatus, Transition
from berth.provisioner.backends.fake import FakeBackend
from berth.provisioner.jobs import Host
from berth.provisioner.worker import WorkerTiming
from berth.records import ProvisionerJob
from berth.services import builds, workspace_views, workspaces
from berth.services.base import Ctx
from berth.services.runtime import BuildLoops, ReapTiming
from tests.support.waiting import until
from tests.support.workspaces import (
    WAIT,
    World,
    fake_template,
    open_world,
    workspace_id,
)

pytestmark = pytest.mark.anyio

STALE = dt.timedelta(seconds=30)


@pytest.fixture
async def world(db: Database, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(db, tmp_path / "state") as w:
        await w.push(fake_template("basic"))
        await w.push(fake_template("slow", fake={"hang": True}))
        yield w


async def _insert_job(world: World, priority: int) -> ProvisionerJob:
    async with world.db.write(as_system()) as raw:
        return await raw.insert_provisioner_job(
            type="workspace_build",
            organization_id=world.organization_id,
            initiator_id=world.admin_user.id,
            input={},
            priority=priority,
        )


async def _acquire(db: Database, worker_id: str) -> ProvisionerJob | None:
    async with db.write(as_system()) as raw:
        return await raw.acting_as(as_provisioner()).acquire_provisioner_job(worker_id)


async def _reap(world: World) -> int:
    """Reap as the server does, with the default staleness (30 s)."""
    return await builds.reap(
        world.admin, world.host, stale_after=STALE, server_url="http://127.0.0.1:9"
    )


def _loops(world: World, backend: FakeBackend, tmp_path: Path, workers: int) -> BuildLoops:
    """The server's build loops on ``backend``, never re-checking or reaping on a timer."""
    return BuildLoops(
        Ctx(world.db, world.admin.actor, world.bus),
        Host({"fake": backend}, tmp_path / "berth-agent.pyz", tmp_path / "state"),
        server_url="http://127.0.0.1:9",
        workers=workers,
        worker_timing=WorkerTiming(acquire_wait=3600),
        reap_timing=ReapTiming(interval=3600),
    )


async def _heartbeat(db: Database, job_id: uuid.UUID, worker_id: str) -> ProvisionerJob | None:
    async with db.write(as_system()) as raw:
        return await raw.acting_as(as_provisioner()).update_provisioner_job_heartbeat(
            job_id, worker_id
        )


# --- acquisition ------------------------------------------------------------------


async def test_humans_go_before_prebuilds_and_the_oldest_first(
    world: World, clock: FakeClock
) -> None:
    human, prebuild = workspaces.PRIORITY_HUMAN, workspaces.PRIORITY_PREBUILD
    order: list[ProvisionerJob] = []
    for priority in (prebuild, human, prebuild, human):
        order.append(await _insert_job(world, priority))
        clock.advance(dt.timedelta(seconds=1))
    old_prebuild, old_human, new_prebuild, new_human = order
    acquired = [await _acquire(world.db, "w") for _ in range(5)]
    assert [j.id if j else None for j in acquired] == [
        old_human.id,
        new_human.id,
        old_prebuild.id,
        new_prebuild.id,
        None,
    ]
    for job in filter(None, acquired):
        assert job.status == JobStatus.RUNNING
        assert job.worker_id == "w"
        assert job.started_at == clock.now()
        assert job.heartbeat_at == clock.now()


async def test_only_pending_jobs_are_acquired(world: World) -> None:
    started = await workspaces.create_workspace(world.admin, template="basic", name="w1")
    await workspaces.cancel_build(world.admin, await workspace_id(world.admin, "w1"))
    assert await _acquire(world.db, "w") is None
    assert (await world.job(started.job.id)).worker_id is None


async def test_concurrent_workers_never_acquire_the_same_job(
    world: World, database_url: str, clock: FakeClock
) -> None:
    jobs = [await _insert_job(world, i % 2) for i in range(40)]
    databases = [Database(create_engine(database_url), clock=clock) for _ in range(8)]
    claimed: dict[str, list[uuid.UUID]] = {}

    async def worker(db: Database, worker_id: str) -> None:
        mine = claimed.setdefault(worker_id, [])
        while (job := await _acquire(db, worker_id)) is not None:
            assert job.worker_id == worker_id
            mine.append(job.id)

    try:
        with anyio.fail_after(WAIT * 6):
            await asyncio.gather(*(worker(d, f"worker-{i}") for i, d in enumerate(databases)))
    finally:
        for d in databases:
            await d.dispose()
    every = [job_id for ids in claimed.values() for job_id in ids]
    assert len(every) == len(set(every)), "a job was acquired twice"
    assert set(every) == {j.id for j in jobs}
    for worker_id, ids in claimed.items():
        for job_id in ids:
            stored = await world.job(job_id)
            assert stored.status == JobStatus.RUNNING
            assert stored.worker_id == worker_id


# --- heartbeats -------------------------------------------------------------------


async def test_heartbeats_belong_to_the_worker_running_the_job(
    world: World, clock: FakeClock
) -> None:
    job = await _insert_job(world, 1)
    acquired = await _acquire(world.db, "owner")
    assert acquired is not None
    assert acquired.id == job.id
    later = clock.advance(dt.timedelta(seconds=5))
    beat = await _heartbeat(world.db, job.id, "owner")
    assert beat is not None
    assert beat.heartbeat_at == later
    clock.advance(dt.timedelta(seconds=5))
    assert await _heartbeat(world.db, job.id, "intruder") is None
    assert (await world.job(job.id)).heartbeat_at == later
    async with world.db.write(as_system()) as raw:
        store = raw.acting_as(as_provisioner())
        canceling = await store.request_provisioner_job_cancel(job.id)
        assert canceling is not None
        assert canceling.status == JobStatus.CANCELING
    beat = await _heartbeat(world.db, job.id, "owner")
    assert beat is not None, "a canceling job is still the worker's"
    assert beat.status == JobStatus.CANCELING
    await world.finish(job.id, JobStatus.CANCELED, error="canceled")
    assert await _heartbeat(world.db, job.id, "owner") is None


async def test_a_live_worker_keeps_its_job_from_being_reaped(
    world: World, clock: FakeClock
) -> None:
    started = await workspaces.create_workspace(world.admin, template="slow", name="w1")
    timing = WorkerTiming(heartbeat_wait=0.02)
    run = asyncio.create_task(world.worker("alive", timing).run_once())
    try:
        with anyio.fail_after(WAIT):
            await world.backend.hang_started.wait()
        now = clock.advance(STALE * 2)
        await until(lambda: world.job(started.job.id), lambda job: job.heartbeat_at == now)
        assert await _reap(world) == 0
        world.backend.release()
        with anyio.fail_after(WAIT):
            assert await run
    finally:
        run.cancel()
    assert (await world.job(started.job.id)).status == JobStatus.SUCCEEDED


# --- reaping ----------------------------------------------------------------------


async def test_a_job_whose_worker_stopped_heart_beating_is_failed(
    world: World, clock: FakeClock
) -> None:
    started = await workspaces.create_workspace(world.admin, template="basic", name="w1")
    acquired = await _acquire(world.db, "dead-worker")  # ... and then the worker crashed
    assert acquired is not None
    assert acquired.id == started.job.id
    assert (
        await workspace_views.get_workspace(world.admin, await workspace_id(world.admin, "w1"))
        is not None
    )
    assert (
        await workspace_views.get_workspace(world.admin, await workspace_id(world.admin, "w1"))
    ).status == "starting"

    clock.advance(STALE - dt.timedelta(seconds=1))
    assert await _reap(world) == 0
    assert (await world.job(started.job.id)).status == JobStatus.RUNNING

    clock.advance(dt.timedelta(seconds=2))
    assert await _reap(world) == 1
    job = await world.job(started.job.id)
    assert job.status == JobStatus.FAILED
    assert job.error == (
        "the provisioner running this build (dead-worker) stopped responding: no heartbeat for 30s"
    )
    assert job.completed_at == clock.now()
    view = await workspace_views.get_workspace(world.admin, await workspace_id(world.admin, "w1"))
    assert view.status == "failed"
    # The half-done start build's sandbox is stopped (the fake records a stop apply).
    assert [(a.spec.workspace_id, a.transition) for a in world.backend.applies] == [
        (started.workspace.id, Transition.STOP)
    ]
    assert await _reap(world) == 0, "a reaped job is reaped once"
    assert await _heartbeat(world.db, job.id, "dead-worker") is None
    # The workspace can be started again.
    again = await workspaces.transition_workspace(
        world.admin, await workspace_id(world.admin, "w1"), Transition.START
    )
    assert again.build.build_number == 2
    assert await world.run_one()
    assert (
        await workspace_views.get_workspace(world.admin, await workspace_id(world.admin, "w1"))
    ).status == "running"


async def test_pending_jobs_are_never_reaped(world: World, clock: FakeClock) -> None:
    started = await workspaces.create_workspace(world.admin, template="basic", name="w1")
    clock.advance(dt.timedelta(hours=1))
    assert await _reap(world) == 0
    assert (await world.job(started.job.id)).status == JobStatus.PENDING


async def test_a_stale_canceling_job_is_reaped_too(world: World, clock: FakeClock) -> None:
    started = await workspaces.create_workspace(world.admin, template="basic", name="w1")
    assert await _acquire(world.db, "dead-worker") is not None
    assert (
        await workspaces.cancel_build(world.admin, await workspace_id(world.admin, "w1"))
    ).status == JobStatus.CANCELING
    clock.advance(STALE * 2)
    assert await _reap(world) == 1
    assert (await world.job(started.job.id)).status == JobStatus.FAILED


# --- workers as a service -----------------------------------------------------------


async def test_a_new_job_wakes_an_idle_worker_without_polling(world: World, tmp_path: Path) -> None:
    backend = FakeBackend()
    provisioner = _loops(world, backend, tmp_path, 2)
    provisioner.start()
    try:
        started = await workspaces.create_workspace(world.admin, template="basic", name="w1")
        await until(
            lambda: world.job(started.job.id),
            lambda job: job.status == JobStatus.SUCCEEDED,
        )
        assert backend.running(started.workspace.id)
    finally:
        with anyio.fail_after(WAIT):
            await provisioner.stop()


async def test_stopping_the_provisioner_mid_build_cancels_the_build(
    world: World, tmp_path: Path
) -> None:
    backend = FakeBackend()
    provisioner = _loops(world, backend, tmp_path, 1)
    provisioner.start()
    try:
        started = await workspaces.create_workspace(world.admin, template="slow", name="w1")
        with anyio.fail_after(WAIT):
            await backend.hang_started.wait()
    finally:
        with anyio.fail_after(WAIT):
            await provisioner.stop()
    job = await world.job(started.job.id)
    assert job.status == JobStatus.CANCELED
    assert [a.result for a in backend.applies] == ["canceled"]


async def test_a_worker_task_cancelled_mid_build_ends_cancelled(world: World) -> None:
    started = await workspaces.create_workspace(world.admin, template="slow", name="w1")
    run = asyncio.create_task(world.worker("doomed").run_once())
    with anyio.fail_after(WAIT):
        await world.backend.hang_started.wait()
    run.cancel()
    with anyio.fail_after(WAIT):
        await asyncio.wait([run])
    assert run.cancelled(), "the worker swallowed its own cancellation"
    assert (await world.job(started.job.id)).status == JobStatus.CANCELED
