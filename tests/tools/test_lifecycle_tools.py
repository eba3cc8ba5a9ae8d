"""start_workspace and stop_workspace (spec §2): their declarations and text errors.

The flows are in ``test_start_workspace.py`` and ``test_stop_workspace.py``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from berth.domain.actors import as_system
from berth.domain.enums import Transition
from berth.mcp.server import mcp_tool
from berth.services import workspaces
from berth.tools.registry import TOOLS, tool_by_name
from tests.support.tool_results import DELETED, error_of
from tests.support.tool_steps import stopped_workspace
from tests.support.tools import World

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
NO_WORKSPACE = "chat has no workspace; use create_workspace first"


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
