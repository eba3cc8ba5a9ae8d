"""create_workspace with the chat's workspace still building (spec §1.3, cw.existing.building).

The build is waited for, then the chat agent's readiness; a failed build, also on quota,
is reported with the action of the build's transition.
"""

from __future__ import annotations

import pytest

from berth.domain.enums import Transition
from berth.provisioner.backends.fake import FakeOutcome
from tests.support.tool_results import QUOTA_TITLE, background, finished, quota_message, result_of
from tests.support.tool_steps import names
from tests.support.tools import World, run_job

pytestmark = pytest.mark.anyio


# --- a build in progress -----------------------------------------------------------------


@pytest.mark.spec("cw.existing.building")
async def test_build_in_progress_is_waited_for(world: World) -> None:
    template = await world.template(fake={"hang": True})
    old = await world.start_workspace(template, "home")
    await world.wait_hanging()
    await world.bind(old.workspace.id, None)
    async with background(world.create(template_id=str(template.id), name="other")) as call:
        [bound] = await world.wait_updates(1)
        assert (bound.workspace_id, bound.build_id, bound.agent_id) == (
            old.workspace.id,
            old.build.id,
            None,
        )
        assert not call.done()
        world.fake.release()
        result = result_of(await finished(call))
    assert result == {
        "created": False,
        "workspace_name": "home",
        "status": "already_exists",
        "message": "workspace build completed",
        "build_id": str(old.build.id),
    }
    assert await names(world) == ["home"]
    assert len(world.updates) == 1, "the existing-workspace path does not re-fire"


@pytest.mark.spec("cw.existing.building")
async def test_build_in_progress_then_the_agent_readiness(world: World) -> None:
    world.sim.lifecycle = ("starting", "start_timeout")
    template = await world.template(fake={"hang": True})
    old = await world.start_workspace(template, "home")
    await world.wait_hanging()
    await world.bind(old.workspace.id, old.build.id)
    async with background(world.create(template_id=str(template.id))) as call:
        await world.wait_updates(1)
        world.fake.release()
        result = result_of(await finished(call))
    assert result == {
        "created": False,
        "workspace_name": "home",
        "status": "already_exists",
        "message": "workspace build completed",
        "build_id": str(old.build.id),
        "startup_scripts": "startup_scripts_failed",
        "lifecycle_state": "start_timeout",
    }


@pytest.mark.spec("cw.existing.building")
async def test_build_in_progress_without_agents(world: World) -> None:
    template = await world.template("headless", fake={"hang": True}, agents=[])
    old = await world.start_workspace(template, "home")
    await world.wait_hanging()
    await world.bind(old.workspace.id, old.build.id)
    async with background(world.create(template_id=str(template.id))) as call:
        await world.wait_updates(1)
        world.fake.release()
        result = result_of(await finished(call))
    assert result == {
        "created": False,
        "workspace_name": "home",
        "status": "already_exists",
        "message": "workspace build completed",
        "build_id": str(old.build.id),
    }


@pytest.mark.spec("cw.existing.building", "resp.build-failure")
async def test_build_in_progress_fails(world: World) -> None:
    template = await world.template(fake={"hang": True})
    world.fake.plan(FakeOutcome(fail="disk full", hang=True))
    old = await world.start_workspace(template, "home")
    await world.wait_hanging()
    await world.bind(old.workspace.id, old.build.id)
    async with background(world.create(template_id=str(template.id), name="other")) as call:
        await world.wait_updates(1)
        world.fake.release()
        result = result_of(await finished(call))
    assert result == {
        "error": "existing workspace build failed: disk full",
        "build_id": str(old.build.id),
    }
    assert await names(world) == ["home"], "a failed build is reported, not replaced"


@pytest.mark.spec("cw.existing.building", "resp.build-failure")
async def test_start_build_in_progress_fails_on_quota(manual: World) -> None:
    """A ``start`` build: the quota message says "start"."""
    world = manual
    template = await world.template(daily_cost=10)
    await world.set_quota(5)
    old = await world.start_workspace(template, "home")
    await world.bind(old.workspace.id, old.build.id)
    async with background(world.create(template_id=str(template.id))) as call:
        await world.wait_updates(1)
        await run_job(world)
        result = result_of(await finished(call))
    assert result == {
        "error": "existing workspace build failed: insufficient quota: this workspace costs "
        "10 credits a day, 0 of 5 are in use",
        "error_code": "INSUFFICIENT_QUOTA",
        "title": QUOTA_TITLE,
        "message": quota_message("start"),
        "build_id": str(old.build.id),
        "quota": {"credits_consumed": 0, "budget": 5},
    }


@pytest.mark.spec("cw.existing.building", "resp.build-failure")
async def test_other_build_in_progress_fails_on_quota(manual: World) -> None:
    """Not a ``start`` build (here a stop): the quota message says "create"."""
    world = manual
    template = await world.template(daily_cost=2)
    await world.set_quota(5)
    old = await world.start_workspace(template, "home")
    await run_job(world)
    stopping = await world.transition(old.workspace.id, Transition.STOP)
    await world.bind(old.workspace.id, old.build.id)
    world.fake.plan(
        FakeOutcome(fail="quota says no", code="INSUFFICIENT_QUOTA", transition=Transition.STOP)
    )
    async with background(world.create(template_id=str(template.id))) as call:
        [bound] = await world.wait_updates(1)
        assert bound.build_id == stopping.build.id
        await run_job(world)
        result = result_of(await finished(call))
    assert result == {
        "error": "existing workspace build failed: quota says no",
        "error_code": "INSUFFICIENT_QUOTA",
        "title": QUOTA_TITLE,
        "message": quota_message("create"),
        "build_id": str(stopping.build.id),
        "quota": {"credits_consumed": 0, "budget": 5},
    }


@pytest.mark.spec("cw.existing.building")
async def test_build_in_progress_selection_error_falls_back_to_the_first_agent(
    world: World,
) -> None:
    template = await world.template(fake={"hang": True}, agents=[{"name": "zzz", "chat": True}])
    old = await world.start_workspace(template, "home")
    await world.wait_hanging()
    [zzz] = await world.agents(old.job.id)
    aaa = await world.insert_agent(zzz.resource_id, "aaa", chat=True)
    await world.driver.lifecycle(aaa.id, "start_error")
    await world.bind(old.workspace.id, old.build.id)
    async with background(world.create(template_id=str(template.id))) as call:
        await world.wait_updates(1)
        world.fake.release()
        result = result_of(await finished(call))
    assert result == {
        "created": False,
        "workspace_name": "home",
        "status": "already_exists",
        "message": "workspace build completed",
        "build_id": str(old.build.id),
        "startup_scripts": "startup_scripts_failed",
        "lifecycle_state": "start_error",
    }
