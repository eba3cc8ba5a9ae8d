"""stop_workspace's flows (spec §2.2): the stop build and the builds it waits for first."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from berth.domain.enums import Transition
from berth.provisioner.backends.fake import FakeOutcome
from tests.support.timings import FAST
from tests.support.tool_results import DELETED, TIMED_OUT, background, error_of, finished, result_of
from tests.support.tool_steps import stopped_workspace, transitions
from tests.support.tools import World

pytestmark = pytest.mark.anyio


async def stop(world: World, **changes: Any) -> Any:
    return await world.call("stop_workspace", **changes)


# --- stop_workspace flows ---------------------------------------------------------------


@pytest.mark.spec("stw.flow")
async def test_stop_a_running_workspace(world: World) -> None:
    template = await world.template()
    started = await world.running_workspace(template, "home")
    assert world.fake.running(started.workspace.id)
    result = result_of(await stop(world))
    builds = await world.builds(started.workspace.id)
    assert transitions(builds) == ["start", "stop"]
    assert result == {"stopped": True, "workspace_name": "home", "build_id": str(builds[-1].id)}
    assert not world.fake.running(started.workspace.id)
    assert [(c.workspace_id, c.build_id) for c in world.updates] == [
        (started.workspace.id, builds[-1].id),
        (started.workspace.id, builds[-1].id),
    ], "bound to the stop build, then re-fired"


@pytest.mark.spec("stw.flow")
async def test_stop_a_stopped_workspace_builds_nothing(world: World) -> None:
    workspace_id = await stopped_workspace(world)
    result = result_of(await stop(world))
    assert result == {"stopped": True, "workspace_name": "home", "no_build": True}
    assert transitions(await world.builds(workspace_id)) == ["start", "stop"]
    assert world.updates == []


@pytest.mark.spec("stw.flow")
async def test_stop_waits_for_a_start_in_progress_then_stops(world: World) -> None:
    template = await world.template(fake={"hang": True})
    started = await world.start_workspace(template, "home")
    await world.wait_hanging()
    await world.bind(started.workspace.id, None)
    async with background(stop(world)) as call:
        [bound] = await world.wait_updates(1)
        assert bound.build_id == started.build.id
        world.fake.release()
        result = result_of(await finished(call))
    builds = await world.builds(started.workspace.id)
    assert transitions(builds) == ["start", "stop"]
    assert result == {"stopped": True, "workspace_name": "home", "build_id": str(builds[-1].id)}


@pytest.mark.spec("stw.flow")
async def test_stop_waits_for_a_stop_in_progress(world: World) -> None:
    template = await world.template(fake={"stop": {"hang": True}})
    started = await world.running_workspace(template, "home")
    await world.transition(started.workspace.id, Transition.STOP)
    await world.wait_hanging()
    async with background(stop(world)) as call:
        await world.wait_updates(1)
        world.fake.release()
        result = result_of(await finished(call))
    assert result == {"stopped": True, "workspace_name": "home", "no_build": True}
    assert transitions(await world.builds(started.workspace.id)) == ["start", "stop"]


@pytest.mark.spec("stw.flow")
async def test_stop_after_an_in_progress_build_failed(world: World) -> None:
    """The wait failed but the job is over: the workspace is stopped anyway."""
    template = await world.template()
    world.fake.plan(FakeOutcome(fail="disk full", hang=True))
    started = await world.start_workspace(template, "home")
    await world.wait_hanging()
    await world.bind(started.workspace.id, started.build.id)
    async with background(stop(world)) as call:
        await world.wait_updates(1)
        world.fake.release()
        result = result_of(await finished(call))
    builds = await world.builds(started.workspace.id)
    assert transitions(builds) == ["start", "stop"]
    assert result == {"stopped": True, "workspace_name": "home", "build_id": str(builds[-1].id)}


@pytest.mark.spec("stw.flow")
async def test_stop_gives_up_on_a_build_that_does_not_finish(world: World) -> None:
    world.timings = dataclasses.replace(FAST, build_timeout=dt.timedelta(milliseconds=300))
    template = await world.template(fake={"hang": True})
    started = await world.start_workspace(template, "home")
    await world.wait_hanging()
    await world.bind(started.workspace.id, started.build.id)
    result = result_of(await stop(world))
    assert result == {
        "error": f"waiting for in-progress build: {TIMED_OUT}",
        "build_id": str(started.build.id),
    }
    assert len(await world.builds(started.workspace.id)) == 1
    world.fake.release()


@pytest.mark.spec("stw.flow", "stw.errors")
async def test_stop_waits_for_a_delete_in_progress(world: World) -> None:
    template = await world.template(fake={"delete": {"hang": True}})
    started = await world.running_workspace(template, "home")
    await world.transition(started.workspace.id, Transition.DELETE)
    await world.wait_hanging()
    async with background(stop(world)) as call:
        await world.wait_updates(1)
        world.fake.release()
        assert error_of(await finished(call)) == DELETED


@pytest.mark.spec("stw.flow")
async def test_stop_build_fails(world: World) -> None:
    template = await world.template(fake={"stop": {"fail": "stuck"}})
    started = await world.running_workspace(template, "home")
    result = result_of(await stop(world))
    builds = await world.builds(started.workspace.id)
    assert result == {"error": "workspace stop build failed: stuck", "build_id": str(builds[-1].id)}
    assert len(world.updates) == 1, "bound, not re-fired"
