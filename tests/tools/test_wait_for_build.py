"""Waiting for a build (spec §3.1).

``wait_for_build`` is called directly with a tool context, against real builds and jobs.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import anyio
import pytest

from berth.domain.enums import JobStatus
from berth.errors import BuildFailed
from berth.provisioner.backends.fake import FakeOutcome
from berth.services import workspaces
from berth.tools.waits import wait_for_build
from tests.support.timings import LONG, MS, WAIT, timings
from tests.support.tool_results import TIMED_OUT, background, finished, result_of
from tests.support.tools import World, run_job

pytestmark = pytest.mark.anyio


async def queued(world: World, **template: Any) -> workspaces.Started:
    """A workspace whose first build is queued (pending)."""
    return await world.start_workspace(await world.template(**template), "w")


async def build_error(world: World, build_id: uuid.UUID, **changes: Any) -> BuildFailed:
    with anyio.fail_after(WAIT), pytest.raises(BuildFailed) as caught:
        await wait_for_build(world.ctx(**changes), build_id)
    return caught.value


# --- builds -------------------------------------------------------------------------------


@pytest.mark.spec("wait.build")
async def test_succeeded_build_returns_at_the_first_check(manual: World) -> None:
    started = await queued(manual)
    await run_job(manual)
    ctx = manual.ctx(timings=timings(build_poll_interval=LONG))
    with anyio.fail_after(WAIT):
        await wait_for_build(ctx, started.build.id)


@pytest.mark.spec("wait.build")
async def test_wakes_on_the_jobs_events(manual: World) -> None:
    started = await queued(manual)
    ctx = manual.ctx(timings=timings(build_poll_interval=LONG))
    async with background(wait_for_build(ctx, started.build.id)) as waiting:
        await asyncio.sleep(0)  # let it make its first check: pending
        await run_job(manual)
        await finished(waiting)
    assert (await manual.job(started.job.id)).status == "succeeded"


@pytest.mark.spec("wait.build")
async def test_rechecks_without_events(manual: World) -> None:
    """No bus at all: the poll interval alone finds the change."""
    started = await queued(manual)
    ctx = manual.ctx(bus=None)
    async with background(wait_for_build(ctx, started.build.id)) as waiting:
        await asyncio.sleep(0)
        await manual.finish_job(started.job.id, JobStatus.SUCCEEDED)
        await finished(waiting)


@pytest.mark.spec("wait.build")
async def test_failed_build_carries_the_error_and_its_code(manual: World) -> None:
    manual.fake.plan(FakeOutcome(fail="disk full", code="E_DISK"))
    started = await queued(manual)
    await run_job(manual)
    error = await build_error(manual, started.build.id)
    assert (error.message, str(error), error.code) == ("disk full", "disk full", "E_DISK")


@pytest.mark.spec("wait.build")
async def test_failed_build_without_an_error_text(manual: World) -> None:
    started = await queued(manual)
    await manual.finish_job(started.job.id, JobStatus.FAILED, error=None)
    error = await build_error(manual, started.build.id)
    assert (error.message, error.code) == ("build failed", None)


@pytest.mark.spec("wait.build")
async def test_canceled_build(manual: World) -> None:
    started = await queued(manual)
    await workspaces.cancel_build(manual.service(), started.workspace.id)
    error = await build_error(manual, started.build.id)
    assert (error.message, error.code) == ("build was canceled", None)


@pytest.mark.spec("wait.build")
async def test_canceled_while_running(world: World) -> None:
    """A running build canceled through the service: canceling, then canceled."""
    started = await queued(world, fake={"hang": True})
    await world.wait_hanging()
    async with background(wait_for_build(world.ctx(), started.build.id)) as waiting:
        job = await workspaces.cancel_build(world.service(), started.workspace.id)
        assert job.status == "canceling"
        with pytest.raises(BuildFailed, match=r"^build was canceled$"):
            await finished(waiting)


@pytest.mark.spec("wait.build")
@pytest.mark.parametrize("status", ["pending", "running", "canceling"])
async def test_in_progress_states_keep_waiting_until_the_timeout(
    manual: World, status: str
) -> None:
    started = await queued(manual)
    await manual.set_job_status(started.job.id, status)
    error = await build_error(manual, started.build.id, timings=timings(build_timeout=300 * MS))
    assert (error.message, error.code) == (TIMED_OUT, None)


@pytest.mark.spec("wait.build")
async def test_unexpected_status(manual: World) -> None:
    started = await queued(manual)
    await manual.set_job_status(started.job.id, "exploded")
    error = await build_error(manual, started.build.id)
    assert error.message == "unexpected job status: exploded"


@pytest.mark.spec("wait.build")
async def test_unknown_build(manual: World) -> None:
    error = await build_error(manual, uuid.uuid4())
    assert error.message == "get build: workspace build not found"


@pytest.mark.spec("wait.build", "cw.wait-build")
async def test_create_workspace_reports_the_timeout(world: World) -> None:
    template = await world.template(fake={"hang": True})
    result = await world.create(
        {"timings": timings(build_timeout=300 * MS)}, template_id=str(template.id), name="w"
    )
    [workspace] = await world.workspaces()
    [build] = await world.builds(workspace.id)
    assert result_of(result) == {
        "error": f"workspace build failed: {TIMED_OUT}",
        "build_id": str(build.id),
    }
    world.fake.release()
