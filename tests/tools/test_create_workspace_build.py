"""create_workspace after the create (spec §1.2 steps 17–22, §4.1).

The binding, the build wait, the result, the chat agent, and chat-updated fired again.

Driven for real: the tool runs against the ``db`` fixture (SQLite and Postgres) with
the provisioner and the fake backend in-process (see :mod:`tests.support.tools`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest

from berth.agentconn import AgentGateway
from berth.errors import BuildFailed
from berth.tools.responses import build_failure
from tests.support.timings import FAST
from tests.support.tool_results import QUOTA_TITLE, background, finished, quota_message, result_of
from tests.support.tools import World

pytestmark = pytest.mark.anyio


# --- bind, wait, result, agents, re-fire ----------------------------------------------


@pytest.mark.spec("cw.bind", "cw.wait-build", "cw.refire", "cw.result")
async def test_binding_is_published_while_the_build_runs(world: World) -> None:
    template = await world.template(fake={"hang": True})
    async with (
        world.bus.subscribe(f"chat:{world.chat_id}") as chat_events,
        background(world.create(template_id=str(template.id), name="slow")) as call,
    ):
        await world.wait_hanging()
        await world.wait_updates(1)  # the binding is written concurrently with the build
        [workspace] = await world.workspaces()
        [build] = await world.builds(workspace.id)
        chat = await world.chat()
        assert (chat.workspace_id, chat.build_id, chat.agent_id) == (workspace.id, build.id, None)
        assert [(c.workspace_id, c.build_id, c.agent_id) for c in world.updates] == [
            (workspace.id, build.id, None)
        ]
        event = await chat_events.get(timeout=20)
        assert event is not None
        assert event.payload == {"type": "chat-updated"}
        assert not call.done()
        world.fake.release()
        result = result_of(await finished(call))
    assert result == {"created": True, "workspace_name": "alice/slow", "build_id": str(build.id)}
    assert len(world.updates) == 2
    refired, now = world.updates[1], await world.chat()
    assert refired.lock_holder is not None, "re-fired inside the call, which holds the lease"
    binding = (now.workspace_id, now.build_id, now.agent_id)
    assert (refired.workspace_id, refired.build_id, refired.agent_id) == binding


@pytest.mark.spec("cw.result", "cw.refire", "cw.existing.none")
async def test_successful_create(world: World) -> None:
    template = await world.template()
    result = await world.create(template_id=str(template.id), name="box")
    [workspace] = await world.workspaces()
    [build] = await world.builds(workspace.id)
    assert result_of(result) == {
        "created": True,
        "workspace_name": "alice/box",
        "build_id": str(build.id),
    }
    assert result.text == (
        f'{{"build_id": "{build.id}", "created": true, "workspace_name": "alice/box"}}'
    )
    assert (await world.job(build.job_id)).status == "succeeded"
    chat = await world.chat()
    assert (chat.workspace_id, chat.build_id) == (workspace.id, build.id)
    assert len(world.updates) == 2, "chat-updated fires at the binding and after the agent"


@pytest.mark.spec("cw.wait-build", "resp.build-failure", "cw.refire")
async def test_build_failure(world: World) -> None:
    template = await world.template(fake={"fail": "no capacity", "code": "NO_CAPACITY"})
    result = result_of(await world.create(template_id=str(template.id), name="doomed"))
    [workspace] = await world.workspaces()
    [build] = await world.builds(workspace.id)
    assert result == {"error": "workspace build failed: no capacity", "build_id": str(build.id)}
    chat = await world.chat()
    assert (chat.workspace_id, chat.build_id) == (workspace.id, build.id), "the binding stays"
    assert len(world.updates) == 1, "no re-fire after a failed build"


@pytest.mark.spec("resp.build-failure", "cw.wait-build")
async def test_quota_failure(world: World) -> None:
    small = await world.template("small", daily_cost=3)
    big = await world.template("big", daily_cost=4)
    await world.set_quota(5)
    first = await world.start_workspace(small, "first")
    assert (await world.wait_job(first.job.id)).status == "succeeded"
    result = result_of(await world.create(template_id=str(big.id), name="second"))
    second = next(w for w in await world.workspaces() if w.name == "second")
    [build] = await world.builds(second.id)
    assert result == {
        "error": "workspace build failed: insufficient quota: this workspace costs 4 credits "
        "a day, 3 of 5 are in use",
        "error_code": "INSUFFICIENT_QUOTA",
        "title": QUOTA_TITLE,
        "message": quota_message("create"),
        "build_id": str(build.id),
        "quota": {"credits_consumed": 3, "budget": 5},
    }


@pytest.mark.spec("resp.build-failure")
async def test_build_failure_response_shapes(world: World) -> None:
    build_id = uuid.uuid4()
    plain = await build_failure(world.ctx(), "start", build_id, BuildFailed("boom"), "x: boom")
    assert result_of(plain) == {"error": "x: boom", "build_id": str(build_id)}
    no_build = await build_failure(world.ctx(), "create", None, BuildFailed("boom"), "boom")
    assert result_of(no_build) == {"error": "boom"}
    quota = BuildFailed("full", code="INSUFFICIENT_QUOTA")
    # No allowance: the figures read as zero budget.
    with_figures = await build_failure(world.ctx(), "start", None, quota, "full")
    assert result_of(with_figures) == {
        "error": "full",
        "error_code": "INSUFFICIENT_QUOTA",
        "title": QUOTA_TITLE,
        "message": quota_message("start"),
        "quota": {"credits_consumed": 0, "budget": 0},
    }
    # The owner cannot be loaded: the figures are left out, the rest stays.
    unreadable = await build_failure(
        world.ctx(owner_id=uuid.uuid4()), "create", build_id, quota, "full"
    )
    assert result_of(unreadable) == {
        "error": "full",
        "error_code": "INSUFFICIENT_QUOTA",
        "title": QUOTA_TITLE,
        "message": quota_message("create"),
        "build_id": str(build_id),
    }


@pytest.mark.spec("cw.agent-select")
async def test_no_agent(world: World) -> None:
    template = await world.template("headless", agents=[])
    result = result_of(await world.create(template_id=str(template.id), name="h"))
    assert result == {
        "created": True,
        "workspace_name": "alice/h",
        "build_id": result["build_id"],
        "agent_status": "no_agent",
    }
    assert len(world.updates) == 2


@pytest.mark.spec("cw.agent-select")
async def test_two_chat_agents_are_a_selection_error(world: World) -> None:
    """The template validator allows one chat agent; the second row is inserted directly."""
    world.sim.lifecycle = ()  # the agents never become ready: a wait would time out
    world.timings = dataclasses.replace(FAST, startup_script_timeout=dt.timedelta(seconds=5))
    template = await world.template(
        "pair", fake={"hang": True}, agents=[{"name": "main", "chat": True}, {"name": "aux"}]
    )
    async with background(world.create(template_id=str(template.id), name="pair")) as call:
        await world.wait_hanging()
        [workspace] = await world.workspaces()
        [build] = await world.builds(workspace.id)
        [main, _aux] = sorted(await world.agents(build.job_id), key=lambda a: a.name != "main")
        await world.insert_agent(main.resource_id, "Helper", chat=True)
        world.fake.release()
        result = result_of(await finished(call))
    assert result == {
        "created": True,
        "workspace_name": "alice/pair",
        "build_id": str(build.id),
        "agent_status": "selection_error",
        "agent_error": "multiple agents are marked for chat: Helper, main; only one agent "
        "should be",
    }


@pytest.mark.spec("cw.agent-wait", "cw.agent-select")
async def test_waits_for_the_chat_agent_to_become_ready(world: World) -> None:
    world.sim.lifecycle = ("starting",)
    template = await world.template(
        "agents", agents=[{"name": "aaa"}, {"name": "chat-one", "chat": True}]
    )
    async with background(world.create(template_id=str(template.id), name="w")) as call:
        started = [await world.next_agent(), await world.next_agent()]
        chat_agent = next(a for a in started if a.name == "chat-one")
        other = next(a for a in started if a.name == "aaa")
        await world.driver.lifecycle(other.id, "start_error")  # not the chat agent: ignored
        await world.wait_updates(1)
        assert not call.done()
        assert len(world.updates) == 1, "re-fired only once the agent is ready"
        await world.driver.lifecycle(chat_agent.id, "ready")
        result = result_of(await finished(call))
    assert result == {"created": True, "workspace_name": "alice/w", "build_id": result["build_id"]}
    assert len(world.updates) == 2


@pytest.mark.spec("cw.agent-wait")
@pytest.mark.parametrize("state", ["start_error", "start_timeout", "shutting_down", "off"])
async def test_failed_startup_scripts_are_reported(world: World, state: str) -> None:
    world.sim.lifecycle = ("starting", state)
    template = await world.template()
    result = result_of(await world.create(template_id=str(template.id), name="w"))
    assert result == {
        "created": True,
        "workspace_name": "alice/w",
        "build_id": result["build_id"],
        "startup_scripts": "startup_scripts_failed",
        "lifecycle_state": state,
    }
    assert len(world.updates) == 2, "chat-updated re-fires whatever the agent's state"


@pytest.mark.spec("cw.agent-wait")
async def test_unreachable_agent_is_not_ready(world: World) -> None:
    timings = dataclasses.replace(FAST, agent_connect_timeout=dt.timedelta(milliseconds=300))
    template = await world.template()
    gateway = AgentGateway()
    result = result_of(
        await world.create(
            {"gateway": gateway, "timings": timings}, template_id=str(template.id), name="w"
        )
    )
    assert result == {
        "created": True,
        "workspace_name": "alice/w",
        "build_id": result["build_id"],
        "agent_status": "not_ready",
        "agent_error": "the workspace agent is not connected",
    }
