"""start_workspace's flows (spec §2.1): builds, waits, failures, versions and the agent."""

from __future__ import annotations

from typing import Any

import pytest

from berth.domain.enums import Transition
from berth.provisioner.backends.fake import FakeOutcome
from tests.support.tool_results import background, finished, result_of
from tests.support.tool_steps import stopped_workspace, transitions
from tests.support.tools import World, template_yaml

pytestmark = pytest.mark.anyio


UPDATED_MESSAGE = (
    "Workspace started and was updated to the active template version because the template "
    "requires active versions."
)


async def start(world: World, **changes: Any) -> Any:
    return await world.call("start_workspace", **changes)


# --- start_workspace flows ---------------------------------------------------------------


@pytest.mark.spec("sw.flow")
async def test_start_a_running_workspace_builds_nothing(world: World) -> None:
    template = await world.template()
    started = await world.running_workspace(template, "home")
    result = result_of(await start(world))
    assert result == {"started": True, "workspace_name": "home", "no_build": True}
    assert len(await world.builds(started.workspace.id)) == 1
    assert len(world.updates) == 1, "chat-updated re-fired once, nothing bound"


@pytest.mark.spec("sw.flow")
async def test_start_a_stopped_workspace(world: World) -> None:
    workspace_id = await stopped_workspace(world)
    result = result_of(await start(world))
    builds = await world.builds(workspace_id)
    assert transitions(builds) == ["start", "stop", "start"]
    new = builds[-1]
    assert result == {"started": True, "workspace_name": "home", "build_id": str(new.id)}
    assert (await world.job(new.job_id)).status == "succeeded"
    assert [(c.workspace_id, c.build_id) for c in world.updates] == [
        (workspace_id, new.id),
        (workspace_id, new.id),
    ], "bound to the new build, then re-fired"


@pytest.mark.spec("sw.flow")
@pytest.mark.parametrize("outcome", ["failed", "canceled"])
async def test_start_after_a_failed_or_canceled_build(world: World, outcome: str) -> None:
    template = await world.template()
    started = await world.running_workspace(template, "home")
    await world.set_job_status(started.job.id, outcome)
    result = result_of(await start(world))
    builds = await world.builds(started.workspace.id)
    assert transitions(builds) == ["start", "start"]
    assert result == {"started": True, "workspace_name": "home", "build_id": str(builds[-1].id)}


@pytest.mark.spec("sw.flow")
async def test_start_waits_for_a_build_in_progress(world: World) -> None:
    template = await world.template(fake={"hang": True})
    started = await world.start_workspace(template, "home")
    await world.wait_hanging()
    await world.bind(started.workspace.id, None)
    async with background(start(world)) as call:
        [bound] = await world.wait_updates(1)
        assert bound.build_id == started.build.id
        world.fake.release()
        result = result_of(await finished(call))
    assert result == {"started": True, "workspace_name": "home", "no_build": True}
    assert len(await world.builds(started.workspace.id)) == 1


@pytest.mark.spec("sw.flow")
async def test_start_waits_for_a_stop_in_progress_then_starts(world: World) -> None:
    template = await world.template(fake={"stop": {"hang": True}})
    started = await world.running_workspace(template, "home")
    await world.transition(started.workspace.id, Transition.STOP)
    await world.wait_hanging()
    async with background(start(world)) as call:
        await world.wait_updates(1)
        world.fake.release()
        result = result_of(await finished(call))
    builds = await world.builds(started.workspace.id)
    assert transitions(builds) == ["start", "stop", "start"]
    assert result == {"started": True, "workspace_name": "home", "build_id": str(builds[-1].id)}


@pytest.mark.spec("sw.flow")
async def test_start_in_progress_build_fails(world: World) -> None:
    template = await world.template()
    world.fake.plan(FakeOutcome(fail="disk full", hang=True))
    started = await world.start_workspace(template, "home")
    await world.wait_hanging()
    await world.bind(started.workspace.id, started.build.id)
    async with background(start(world)) as call:
        await world.wait_updates(1)
        world.fake.release()
        result = result_of(await finished(call))
    assert result == {
        "error": "waiting for in-progress build: disk full",
        "build_id": str(started.build.id),
    }


@pytest.mark.spec("sw.flow", "resp.build-failure")
async def test_start_build_fails(world: World) -> None:
    workspace_id = await stopped_workspace(world)
    world.fake.plan(FakeOutcome(fail="no capacity", transition=Transition.START))
    result = result_of(await start(world))
    new = (await world.builds(workspace_id))[-1]
    assert result == {
        "error": "workspace start build failed: no capacity",
        "build_id": str(new.id),
    }
    assert len(world.updates) == 1, "bound, not re-fired"


@pytest.mark.spec("sw.flow", "resp.build-failure")
async def test_start_build_fails_on_quota(world: World) -> None:
    workspace_id = await stopped_workspace(world, daily_cost=10)
    await world.set_quota(5)
    result = result_of(await start(world))
    new = (await world.builds(workspace_id))[-1]
    assert result == {
        "error": "workspace start build failed: insufficient quota: this workspace costs 10 "
        "credits a day, 0 of 5 are in use",
        "error_code": "INSUFFICIENT_QUOTA",
        "title": "Workspace quota reached",
        "message": "berth could not start this workspace because your workspace quota is "
        "full. Delete a workspace you no longer need to free quota, or ask an administrator "
        "to raise your group quota allowance.",
        "build_id": str(new.id),
        "quota": {"credits_consumed": 0, "budget": 5},
    }


@pytest.mark.spec("sw.flow")
async def test_start_updates_to_the_active_version_when_required(world: World) -> None:
    workspace_id = await stopped_workspace(world, require_active_version=True)
    v2 = await world.push(template_yaml(require_active_version=True, description="v2"))
    result = result_of(await start(world))
    new = (await world.builds(workspace_id))[-1]
    assert new.template_version_id == v2.version.id
    assert result == {
        "started": True,
        "workspace_name": "home",
        "build_id": str(new.id),
        "updated_to_active_version": True,
        "update_reason": "template requires active versions",
        "message": UPDATED_MESSAGE,
    }


@pytest.mark.spec("sw.flow")
async def test_start_keeps_its_version_when_not_required(world: World) -> None:
    workspace_id = await stopped_workspace(world)
    first = (await world.builds(workspace_id))[0]
    await world.push(template_yaml(description="v2"))
    result = result_of(await start(world))
    new = (await world.builds(workspace_id))[-1]
    assert new.template_version_id == first.template_version_id
    assert result == {"started": True, "workspace_name": "home", "build_id": str(new.id)}


@pytest.mark.spec("sw.flow")
async def test_start_reports_the_agent(world: World) -> None:
    await stopped_workspace(world, "plain")
    world.sim.lifecycle = ("starting", "start_error")
    result = result_of(await start(world))
    assert result == {
        "started": True,
        "workspace_name": "plain",
        "build_id": result["build_id"],
        "startup_scripts": "startup_scripts_failed",
        "lifecycle_state": "start_error",
    }


@pytest.mark.spec("sw.flow")
async def test_start_without_agents(world: World) -> None:
    await stopped_workspace(world, "headless", agents=[])
    result = result_of(await start(world))
    assert result == {
        "started": True,
        "workspace_name": "headless",
        "build_id": result["build_id"],
        "agent_status": "no_agent",
    }
