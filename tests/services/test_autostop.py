"""Autostop (DESIGN §10): the timer logic, with the test's clock and real builds.

A start build sets the deadline; activity pushes it; at the deadline one ``stop`` build
with reason ``autostop`` runs, whatever number of replicas see it; a workspace with a
build in progress is left alone until it settles. Each test runs on SQLite and Postgres.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from berth.clock import FakeClock
from berth.db.engine import Database, create_engine
from berth.domain.enums import JobStatus, Transition
from berth.events import messages
from berth.services import workspace_views, workspaces
from berth.services.autostop import Autostop, stop_at_deadline
from berth.services.base import Ctx
from berth.services.workspaces import ACTIVITY_EVERY, Started
from tests.support.workspaces import WAIT, World, fake_template, open_world

pytestmark = pytest.mark.anyio

TTL = dt.timedelta(minutes=1)
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
async def world(db: Database, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(db, tmp_path / "state") as w:
        await w.push(fake_template("basic", default_ttl="1m"))
        yield w


async def _running(world: World, name: str = "w1") -> Started:
    started = await workspaces.create_workspace(world.admin, template="basic", name=name)
    assert await world.run_one()
    assert (await world.job(started.job.id)).status == JobStatus.SUCCEEDED
    return started


def _autostop(world: World) -> Autostop:
    """A timer that re-checks hourly without events: what it does, it does by deadline."""
    return Autostop(world.admin, recheck=3600)


async def test_a_start_build_sets_the_deadline_and_the_timer_stops_the_workspace_at_it(
    world: World, clock: FakeClock
) -> None:
    started = await _running(world)
    deadline = clock.now() + TTL
    assert (await world.workspace(started.workspace.id)).deadline == deadline
    timer = _autostop(world)
    # The timer sleeps until the deadline, not a minute tick.
    assert await timer.stop_due() == deadline
    assert timer.delay(deadline) == pytest.approx(TTL.total_seconds())
    clock.advance(TTL - SECOND)
    assert await timer.stop_due() == deadline
    assert timer.delay(deadline) == pytest.approx(1.0)
    assert [b.transition for b in await world.builds(started.workspace.id)] == ["start"]
    clock.advance(SECOND)
    assert timer.delay(deadline) == 0.0
    assert await timer.stop_due() is None
    builds = await world.builds(started.workspace.id)
    assert [(b.transition, b.reason) for b in builds] == [
        ("start", "initiator"),
        ("stop", "autostop"),
    ]
    assert await world.run_one()
    view = await workspace_views.get_workspace(world.admin, started.workspace.id)
    assert view.status == "stopped"
    assert view.build is not None
    assert view.build.reason == "autostop"
    assert view.workspace.deadline is None
    # A stopped workspace is never stopped again, nor given a deadline by activity.
    await workspaces.record_activity(world.admin, started.workspace.id)
    assert (await world.workspace(started.workspace.id)).deadline is None
    clock.advance(TTL * 10)
    assert await timer.stop_due() is None
    assert len(await world.builds(started.workspace.id)) == 2


async def test_activity_pushes_the_deadline_at_most_every_few_seconds(
    world: World, clock: FakeClock
) -> None:
    started = await _running(world)
    first = clock.now() + TTL
    clock.advance(ACTIVITY_EVERY - SECOND)
    await workspaces.record_activity(world.admin, started.workspace.id)
    assert (await world.workspace(started.workspace.id)).deadline == first, "not written yet"
    clock.advance(dt.timedelta(seconds=20))
    await workspaces.record_activity(world.admin, started.workspace.id)
    pushed = (await world.workspace(started.workspace.id)).deadline
    assert pushed == clock.now() + TTL
    # Past the old deadline, the workspace still runs: its last activity is within TTL.
    clock.advance(TTL - dt.timedelta(seconds=10))
    assert clock.now() > first
    timer = _autostop(world)
    assert await timer.stop_due() == pushed
    assert [b.transition for b in await world.builds(started.workspace.id)] == ["start"]
    clock.advance(dt.timedelta(seconds=10))
    assert await timer.stop_due() is None
    assert [b.reason for b in await world.builds(started.workspace.id)][-1] == "autostop"


async def test_a_workspace_with_a_build_in_progress_is_left_alone_until_it_settles(
    world: World, clock: FakeClock
) -> None:
    started = await _running(world)
    stopping = await workspaces.transition_workspace(
        world.admin, started.workspace.id, Transition.STOP
    )
    clock.advance(TTL * 2)
    assert await stop_at_deadline(world.admin, started.workspace.id, clock.now()) is None
    assert len(await world.builds(started.workspace.id)) == 2, "no second build"
    assert await world.run_one()
    assert (await world.job(stopping.job.id)).status == JobStatus.SUCCEEDED
    assert (await world.workspace(started.workspace.id)).deadline is None
    assert await _autostop(world).stop_due() is None
    assert len(await world.builds(started.workspace.id)) == 2


async def test_a_ttl_change_moves_the_deadline_and_zero_means_never(
    world: World, clock: FakeClock
) -> None:
    started = await _running(world)
    hour = await workspaces.update_ttl(world.admin, started.workspace.id, 3_600_000)
    assert hour.deadline is not None
    assert hour.deadline == (hour.last_used_at or clock.now()) + dt.timedelta(hours=1)
    never = await workspaces.update_ttl(world.admin, started.workspace.id, 0)
    assert (never.ttl_ms, never.deadline) == (None, None)
    clock.advance(dt.timedelta(days=30))
    assert await _autostop(world).stop_due() is None
    assert len(await world.builds(started.workspace.id)) == 1


async def test_replicas_that_see_a_deadline_together_make_one_stop_build(
    world: World, clock: FakeClock, database_url: str
) -> None:
    started = await _running(world)
    clock.advance(TTL)
    replicas = [Database(create_engine(database_url), clock=clock) for _ in range(4)]
    try:
        timers = [Autostop(Ctx(db, world.admin.actor, world.bus)) for db in replicas]
        with anyio.fail_after(WAIT):
            await asyncio.gather(*(timer.stop_due() for timer in timers))
    finally:
        for db in replicas:
            await db.dispose()
    builds = await world.builds(started.workspace.id)
    assert [(b.transition, b.reason) for b in builds] == [
        ("start", "initiator"),
        ("stop", "autostop"),
    ]


async def test_the_timer_wakes_when_a_deadline_changes(world: World, clock: FakeClock) -> None:
    """The loop sleeps up to ``recheck``; a deadline-changed event wakes it at once."""
    started = await _running(world)
    timer = Autostop(world.admin, recheck=3600)
    async with world.bus.subscribe(messages.workspace(started.workspace.id)) as events:
        task = asyncio.create_task(timer.run_forever())
        try:
            clock.advance(TTL)  # due now, but the sleeping timer cannot know
            await world.bus.publish(
                messages.DEADLINES,
                messages.DeadlinesChanged(workspace_id=started.workspace.id).model_dump(
                    mode="json"
                ),
            )
            with anyio.fail_after(WAIT):
                while len(await world.builds(started.workspace.id)) < 2:
                    await events.get(timeout=WAIT)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert (await world.builds(started.workspace.id))[-1].reason == "autostop"


async def test_a_jump_of_the_wall_clock_moves_deadlines_instead_of_stopping(
    world: World, clock: FakeClock
) -> None:
    late = await _running(world, "late")
    timer = _autostop(world)
    assert await timer.stop_due() == clock.now() + TTL  # the first check notes the time
    clock.advance(TTL / 2)
    fresh = await _running(world, "fresh")
    deadline = clock.now() + TTL
    clock.advance(TTL * 2 / 3)  # "late" is due by the time that passed; "fresh" is not

    # The wall clock jumps two hours ahead while a second passes.
    jump = dt.timedelta(hours=2)
    clock.set(clock.now() + jump)
    clock.advance(SECOND)
    assert await timer.stop_due() == deadline + jump
    assert [b.reason for b in await world.builds(late.workspace.id)][-1] == "autostop"
    assert [b.transition for b in await world.builds(fresh.workspace.id)] == ["start"]
    assert (await world.workspace(fresh.workspace.id)).deadline == deadline + jump
    # Another replica that saw the same jump moves nothing twice.
    assert await _autostop(world).stop_due() == deadline + jump
    assert (await world.workspace(fresh.workspace.id)).deadline == deadline + jump

    # Real time then reaches the moved deadline: it stops.
    clock.advance(TTL)
    assert await timer.stop_due() is None
    assert [b.reason for b in await world.builds(fresh.workspace.id)][-1] == "autostop"
