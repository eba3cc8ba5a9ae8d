"""create_workspace with a workspace already bound to the chat (spec §1.2 step 6, §1.3).

The check's place in the flow, the states that proceed to create, and those that return
the existing workspace; a build still in progress is in
``test_create_workspace_existing_building.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest

from berth.agentconn import AgentGateway
from berth.domain.actors import as_system
from berth.domain.enums import Transition
from berth.services import workspaces
from tests.support.timings import FAST
from tests.support.tool_results import NOT_CONNECTED, background, error_of, finished, result_of
from tests.support.tool_steps import names
from tests.support.tools import World, run_job

pytestmark = pytest.mark.anyio

SHORT_CONNECT = dataclasses.replace(FAST, agent_connect_timeout=dt.timedelta(milliseconds=300))


# --- the check's place in the flow ------------------------------------------------------


@pytest.mark.spec("cw.existing")
async def test_chat_that_does_not_exist(world: World) -> None:
    template = await world.template()
    result = await world.create({"chat_id": uuid.uuid4()}, template_id=str(template.id))
    assert error_of(result) == "load chat: chat not found"


@pytest.mark.spec("cw.existing")
async def test_workspace_that_cannot_be_loaded(world: World) -> None:
    template = await world.template()
    await world.bind(uuid.uuid4(), None)
    result = await world.create(template_id=str(template.id))
    assert error_of(result) == "load workspace: workspace not found"
    assert await names(world) == []


@pytest.mark.spec("cw.existing", "cw.existing.running")
async def test_running_workspace_is_returned_before_any_template_lookup(world: World) -> None:
    """Even for a template that does not exist, or an owner who cannot be loaded."""
    template = await world.template()
    await world.running_workspace(template, "home")
    expected = {
        "created": False,
        "workspace_name": "home",
        "status": "already_exists",
        "message": "workspace is already running and recently connected",
    }
    result = await world.create(template_id=str(uuid.uuid4()))
    assert result_of(result) == expected
    result = await world.create({"owner_id": uuid.uuid4()}, template_id=str(template.id))
    assert result_of(result) == expected
    assert await names(world) == ["home"]
    assert world.updates == [], "nothing was bound or re-fired"


@pytest.mark.spec("cw.existing.none")
async def test_no_workspace_proceeds_to_create(world: World) -> None:
    template = await world.template()
    assert (await world.chat()).workspace_id is None
    result = result_of(await world.create(template_id=str(template.id), name="fresh"))
    assert result["created"] is True
    assert await names(world) == ["fresh"]


# --- proceed to create ------------------------------------------------------------------


@pytest.mark.spec("cw.existing.deleted")
async def test_deleted_workspace(world: World) -> None:
    template = await world.template()
    old = await world.running_workspace(template, "old")
    deleting = await world.transition(old.workspace.id, Transition.DELETE)
    await world.wait_job(deleting.job.id)
    assert (await world.workspace(old.workspace.id)).deleted
    result = result_of(await world.create(template_id=str(template.id), name="new-one"))
    assert result["created"] is True
    assert await names(world) == ["new-one"]
    assert (await world.chat()).workspace_id != old.workspace.id


@pytest.mark.spec("cw.existing.unreadable")
async def test_workspace_without_a_build(world: World) -> None:
    template = await world.template()
    async with world.db.write(as_system()) as raw:
        orphan = await raw.insert_workspace(
            owner_id=world.owner_id,
            organization_id=world.org_id,
            template_id=template.id,
            name="orphan",
            ttl_ms=None,
        )
    await world.bind(orphan.id, None)
    result = result_of(await world.create(template_id=str(template.id), name="fresh"))
    assert result["created"] is True
    assert await names(world) == ["fresh", "orphan"]
    assert (await world.chat()).workspace_id != orphan.id


@pytest.mark.spec("cw.existing.failed")
async def test_failed_build(world: World) -> None:
    broken = await world.template("broken", fake={"fail": "no capacity"})
    good = await world.template("good")
    old = await world.start_workspace(broken, "old")
    assert (await world.wait_job(old.job.id)).status == "failed"
    await world.bind(old.workspace.id, old.build.id)
    result = result_of(await world.create(template_id=str(good.id), name="fresh"))
    assert result["created"] is True
    assert await names(world) == ["fresh", "old"]


@pytest.mark.spec("cw.existing.failed")
async def test_canceled_build(manual: World) -> None:
    world = manual
    template = await world.template()
    old = await world.start_workspace(template, "old")
    await workspaces.cancel_build(world.service(), old.workspace.id)
    assert (await world.job(old.job.id)).status == "canceled"
    await world.bind(old.workspace.id, old.build.id)
    async with background(world.create(template_id=str(template.id), name="fresh")) as call:
        await world.wait_updates(1)  # bound to the new workspace: its build is queued
        await run_job(world)
        result = result_of(await finished(call))
    assert result["created"] is True
    assert await names(world) == ["fresh", "old"]


@pytest.mark.spec("cw.existing.failed")
@pytest.mark.parametrize("status", ["canceling", "exploded"])
async def test_other_job_states_proceed(world: World, status: str) -> None:
    template = await world.template()
    old = await world.running_workspace(template, "old")
    await world.set_job_status(old.job.id, status)
    result = result_of(await world.create(template_id=str(template.id), name="fresh"))
    assert result["created"] is True
    assert await names(world) == ["fresh", "old"]


@pytest.mark.spec("cw.existing.dead-agent")
async def test_disconnected_agent(world: World) -> None:
    template = await world.template()
    old = await world.running_workspace(template, "old")
    [agent] = await world.agents(old.job.id)
    await world.driver.disconnect(agent.id)
    result = result_of(await world.create(template_id=str(template.id), name="fresh"))
    assert result["created"] is True
    assert await names(world) == ["fresh", "old"]


@pytest.mark.spec("cw.existing.dead-agent")
async def test_agent_silent_longer_than_the_inactive_timeout(world: World) -> None:
    template = await world.template()
    await world.running_workspace(template, "old")
    world.clock.advance(dt.timedelta(seconds=31))
    result = result_of(await world.create(template_id=str(template.id), name="fresh"))
    assert result["created"] is True
    assert await names(world) == ["fresh", "old"]


@pytest.mark.spec("cw.existing.dead-agent")
async def test_agent_that_never_connected_within_its_timeout(world: World) -> None:
    world.sim.connect = False
    template = await world.template(agents=[{"name": "main", "connection_timeout": "1m"}])
    await world.running_workspace(template, "old")
    world.clock.advance(dt.timedelta(minutes=2))
    result = result_of(await world.create(template_id=str(template.id), name="fresh"))
    assert result["created"] is True
    assert await names(world) == ["fresh", "old"]


@pytest.mark.spec("cw.existing.dead-agent")
async def test_running_workspace_without_agents(world: World) -> None:
    template = await world.template("headless", agents=[])
    await world.running_workspace(template, "old")
    result = result_of(await world.create(template_id=str(template.id), name="fresh"))
    assert result["created"] is True
    assert await names(world) == ["fresh", "old"]


# --- return the existing workspace -------------------------------------------------------


@pytest.mark.spec("cw.existing.stopped")
async def test_stopped_workspace(world: World) -> None:
    template = await world.template()
    old = await world.running_workspace(template, "home")
    stopping = await world.transition(old.workspace.id, Transition.STOP)
    await world.wait_job(stopping.job.id)
    result = result_of(await world.create(template_id=str(template.id), name="other"))
    assert result == {
        "created": False,
        "workspace_name": "home",
        "status": "stopped",
        "message": "workspace is stopped; use start_workspace to start it",
    }
    assert await names(world) == ["home"]


@pytest.mark.spec("cw.existing.running")
async def test_connected_agent_skips_the_connect_phase(world: World) -> None:
    """A gateway that cannot reach the agent would make a connect phase fail."""
    template = await world.template()
    await world.running_workspace(template, "home")
    gateway = AgentGateway()
    result = await world.create(
        {"gateway": gateway, "timings": SHORT_CONNECT}, template_id=str(template.id)
    )
    assert result_of(result) == {
        "created": False,
        "workspace_name": "home",
        "status": "already_exists",
        "message": "workspace is already running and recently connected",
    }


@pytest.mark.spec("cw.existing.running")
async def test_connected_agent_still_waits_for_its_startup_scripts(world: World) -> None:
    world.sim.lifecycle = ("starting",)
    template = await world.template()
    old = await world.running_workspace(template, "home")
    [agent] = await world.agents(old.job.id)
    async with background(world.create(template_id=str(template.id))) as call:
        await world.driver.lifecycle(agent.id, "start_error")
        result = result_of(await finished(call))
    assert result == {
        "created": False,
        "workspace_name": "home",
        "status": "already_exists",
        "message": "workspace is already running and recently connected",
        "startup_scripts": "startup_scripts_failed",
        "lifecycle_state": "start_error",
    }


@pytest.mark.spec("cw.existing.running")
async def test_connecting_agent_gets_the_full_readiness_wait(world: World) -> None:
    world.sim.connect = False
    template = await world.template()
    await world.running_workspace(template, "home")
    gateway = AgentGateway()
    result = await world.create(
        {"gateway": gateway, "timings": SHORT_CONNECT}, template_id=str(template.id)
    )
    assert result_of(result) == {
        "created": False,
        "workspace_name": "home",
        "status": "already_exists",
        "message": "workspace exists and the agent is still connecting",
        "agent_status": "not_ready",
        "agent_error": NOT_CONNECTED,
    }
    # Without a connection to try, the lifecycle phase alone answers.
    result = await world.create(template_id=str(template.id))
    assert result_of(result) == {
        "created": False,
        "workspace_name": "home",
        "status": "already_exists",
        "message": "workspace exists and the agent is still connecting",
    }
    assert await names(world) == ["home"]


@pytest.mark.spec("cw.existing.running")
async def test_status_of_the_chat_agent_decides(world: World) -> None:
    """Two agents: the one marked ``chat`` is the one whose status counts."""
    template = await world.template(agents=[{"name": "aaa"}, {"name": "talker", "chat": True}])
    old = await world.running_workspace(template, "home")
    talker = next(a for a in await world.agents(old.job.id) if a.name == "talker")
    await world.driver.disconnect(talker.id)
    result = result_of(await world.create(template_id=str(template.id), name="fresh"))
    assert result["created"] is True
    assert await names(world) == ["fresh", "home"]


@pytest.mark.spec("cw.existing.running")
async def test_selection_error_falls_back_to_the_first_agent(world: World) -> None:
    """Two chat agents: the first ("aaa", never connected) decides, not the connected one."""
    template = await world.template(agents=[{"name": "zzz", "chat": True}])
    old = await world.running_workspace(template, "home")
    [zzz] = await world.agents(old.job.id)
    aaa = await world.insert_agent(zzz.resource_id, "aaa", chat=True)
    await world.driver.lifecycle(aaa.id, "ready")
    result = result_of(await world.create(template_id=str(template.id)))
    assert result == {
        "created": False,
        "workspace_name": "home",
        "status": "already_exists",
        "message": "workspace exists and the agent is still connecting",
    }
