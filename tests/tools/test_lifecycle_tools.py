"""start_workspace and stop_workspace (spec §2): declarations, text errors, flows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest

from berth.clock import FakeClock
from berth.db.engine import Database
from berth.domain.actors import as_system
from berth.domain.enums import Transition
from berth.mcp.server import mcp_tool
from berth.provisioner.backends.fake import FakeOutcome
from berth.services import workspaces
from berth.tools.registry import TOOLS, tool_by_name
from tests.support.tools import (
    FAST,
    World,
    background,
    error_of,
    finished,
    open_world,
    result_of,
    template_yaml,
)

pytestmark = pytest.mark.anyio

START_DESCRIPTION = (
    "Start the chat's workspace if it is currently stopped. This tool is idempotent — if the "
    "workspace is already running, it returns immediately. Use create_workspace first if no "
    "workspace exists yet."
)
STOP_DESCRIPTION = (
    "Stop the chat's workspace and wait for the stop build to complete. If another workspace "
    "build is already in progress, this waits for that build first, then stops the workspace "
    "if needed. After waiting, this tool is idempotent if the workspace is already stopped or "
    "the in-progress build stopped it. Use this when the user explicitly asks to stop the "
    "workspace, or when a workspace-agent error tells you to stop and then start the "
    "workspace. Stopping a workspace terminates running processes and may discard unsaved "
    "in-memory state. This tool does not delete the workspace."
)
UPDATED_MESSAGE = (
    "Workspace started and was updated to the active template version because the template "
    "requires active versions."
)
NO_WORKSPACE = "chat has no workspace; use create_workspace first"
DELETED = "workspace was deleted; use create_workspace to make a new one"
TIMED_OUT = "timed out waiting for workspace build: context deadline exceeded"


@pytest.fixture
async def world(db: Database, clock: FakeClock, tmp_path: Path) -> AsyncGenerator[World]:
    async with open_world(db, clock, tmp_path) as w:
        yield w


async def start(world: World, **changes: Any) -> Any:
    return await world.call("start_workspace", **changes)


async def stop(world: World, **changes: Any) -> Any:
    return await world.call("stop_workspace", **changes)


async def stopped_workspace(world: World, name: str = "home", **template: Any) -> uuid.UUID:
    """A workspace of alice's chat whose latest build is a succeeded stop."""
    tpl = await world.template(**template)
    started = await world.running_workspace(tpl, name)
    stopping = await world.transition(started.workspace.id, Transition.STOP)
    assert (await world.wait_job(stopping.job.id)).status == "succeeded"
    return started.workspace.id


def transitions(builds: list[Any]) -> list[str]:
    return [b.transition for b in builds]


# --- declarations -------------------------------------------------------------------------


@pytest.mark.spec("sw.decl")
def test_start_declaration() -> None:
    spec = tool_by_name("start_workspace")
    assert spec is not None
    assert spec in TOOLS
    tool = mcp_tool(spec)
    assert tool.name == "start_workspace"
    assert tool.description == START_DESCRIPTION
    assert tool.input_schema["properties"] == {}
    assert "required" not in tool.input_schema
    assert tool.annotations is not None
    assert tool.annotations.read_only_hint is False
    assert tool.annotations.idempotent_hint is True


@pytest.mark.spec("stw.decl")
def test_stop_declaration() -> None:
    spec = tool_by_name("stop_workspace")
    assert spec is not None
    assert spec in TOOLS
    tool = mcp_tool(spec)
    assert tool.name == "stop_workspace"
    assert tool.description == STOP_DESCRIPTION
    assert tool.input_schema["properties"] == {}
    assert "required" not in tool.input_schema
    assert tool.annotations is not None
    assert tool.annotations.read_only_hint is False
    assert tool.annotations.idempotent_hint is True


@pytest.mark.spec("sw.decl", "stw.decl")
@pytest.mark.parametrize("tool", ["start_workspace", "stop_workspace"])
async def test_no_arguments_are_taken(world: World, tool: str) -> None:
    result = await world.call(tool, {"workspace": "home"})
    assert error_of(result) == "invalid arguments: workspace: unknown argument"


# --- text errors ------------------------------------------------------------------------


@pytest.mark.spec("sw.errors", "stw.errors")
@pytest.mark.parametrize(
    ("tool", "flag", "message"),
    [
        ("start_workspace", "start_enabled", "workspace starter is not configured"),
        ("stop_workspace", "stop_enabled", "workspace stopper is not configured"),
    ],
)
async def test_not_configured(world: World, tool: str, flag: str, message: str) -> None:
    await stopped_workspace(world)
    result = await world.call(tool, None, **{flag: False})
    assert error_of(result) == message


@pytest.mark.spec("sw.errors", "stw.errors")
@pytest.mark.parametrize("tool", ["start_workspace", "stop_workspace"])
async def test_lookup_errors(world: World, tool: str) -> None:
    assert error_of(await world.call(tool, chat_id=uuid.uuid4())) == "load chat: chat not found"
    assert error_of(await world.call(tool)) == NO_WORKSPACE
    await world.bind(uuid.uuid4(), None)
    assert error_of(await world.call(tool)) == "load workspace: workspace not found"
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
    assert error_of(await world.call(tool)) == "get latest build: workspace build not found"


@pytest.mark.spec("sw.errors", "stw.errors")
@pytest.mark.parametrize("tool", ["start_workspace", "stop_workspace"])
async def test_deleted_workspace(world: World, tool: str) -> None:
    template = await world.template()
    started = await world.running_workspace(template, "home")
    deleting = await world.transition(started.workspace.id, Transition.DELETE)
    await world.wait_job(deleting.job.id)
    assert error_of(await world.call(tool)) == DELETED


@pytest.mark.spec("sw.errors", "stw.errors")
@pytest.mark.parametrize("tool", ["start_workspace", "stop_workspace"])
async def test_owner_authorization_error(world: World, tool: str) -> None:
    await stopped_workspace(world)
    result = await world.call(tool, owner_id=uuid.uuid4())
    assert error_of(result) == "load user authorization: user not found"


@pytest.mark.spec("sw.errors", "stw.errors")
@pytest.mark.parametrize("tool", ["start_workspace", "stop_workspace"])
async def test_build_refused_by_the_service(world: World, tool: str) -> None:
    """The chat is bound to a workspace its owner may not change: the service's message."""
    template = await world.template()
    admins = await workspaces.create_workspace(
        world.service(world.admin), template=str(template.id), name="admins"
    )
    await world.wait_job(admins.job.id)
    if tool == "start_workspace":
        stopping = await workspaces.transition_workspace(
            world.service(world.admin), admins.workspace.id, Transition.STOP
        )
        await world.wait_job(stopping.job.id)
    await world.bind(admins.workspace.id, None)
    assert error_of(await world.call(tool)) == "workspace not found"


@pytest.mark.spec("sw.errors", "stw.errors")
@pytest.mark.parametrize(
    ("tool", "verb"), [("start_workspace", "start"), ("stop_workspace", "stop")]
)
async def test_other_build_errors(
    world: World, monkeypatch: pytest.MonkeyPatch, tool: str, verb: str
) -> None:
    if tool == "start_workspace":
        await stopped_workspace(world)
    else:
        await world.running_workspace(await world.template(), "home")

    async def broken(*_: Any, **__: Any) -> workspaces.Started:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(workspaces, "transition_workspace", broken)
    assert error_of(await world.call(tool)) == f"{verb} workspace: the disk is on fire"


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
