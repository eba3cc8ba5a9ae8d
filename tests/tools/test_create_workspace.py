"""create_workspace (spec §1.1, §1.2, §4, §5): declaration, every early return, the flow.

Driven for real: the tool runs against the ``db`` fixture (SQLite and Postgres) with
the provisioner and the fake backend in-process (see ``tool_support``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import uuid
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest

from berth.agentconn import AgentGateway
from berth.clock import FakeClock
from berth.db.engine import Database, create_engine
from berth.domain.actors import as_system
from berth.domain.names import is_valid_name
from berth.errors import BerthError, BuildFailed, Validation
from berth.mcp.server import mcp_tool
from berth.services import workspaces
from berth.services.accounts import create_organization
from berth.services.base import Ctx
from berth.tools.registry import TOOLS, tool_by_name
from berth.tools.responses import api_error, build_failure
from tests.support.tools import (
    FAST,
    HEX4,
    World,
    background,
    error_of,
    finished,
    open_world,
    result_of,
    template_yaml,
)

pytestmark = pytest.mark.anyio

DESCRIPTION = (
    "Create a new workspace from a template only when workspace-backed file inspection, "
    "command execution, or file editing is required, or when the user explicitly asks for "
    "one. Do not use this as a default first step for requests answerable from "
    "conversation context, provider tools, or external MCP tools. Requires a template_id "
    "(from list_templates). Optionally provide a name and parameter values (from "
    "read_template). If no name is given, one will be generated. Provide a preset_id (from "
    "read_template) to apply preset parameters and potentially claim a prebuilt workspace "
    "for faster startup. This tool is idempotent. If the chat already has a workspace that "
    "is building or running, the existing workspace is returned."
)
EXTERNAL_MESSAGE = (
    "create_workspace cannot create workspaces from templates with externally managed "
    "agents. Use list_templates to choose a different template, or if the user wants to "
    "use an external workspace, they should create it and start it up fully themselves "
    "first, then attach it to this chat"
)
CROSS_ORG = (
    "template belongs to a different organization than this chat; use list_templates to "
    "find templates in the correct organization"
)
NOT_ALLOWED = (
    "template not available for chat workspaces; use list_templates to find allowed templates"
)
QUOTA_TITLE = "Workspace quota reached"


def quota_message(action: str) -> str:
    return (
        f"berth could not {action} this workspace because your workspace quota is full. "
        "Delete a workspace you no longer need to free quota, or ask an administrator to "
        "raise your group quota allowance."
    )


@pytest.fixture
async def world(db: Database, clock: FakeClock, tmp_path: Path) -> AsyncGenerator[World]:
    async with open_world(db, clock, tmp_path) as w:
        yield w


@pytest.fixture
async def unreachable(tmp_path: Path) -> AsyncGenerator[Database]:
    """A database that cannot be opened: any access fails."""
    database = Database(create_engine(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/berth.db"))
    try:
        yield database
    finally:
        await database.dispose()


# --- declaration ----------------------------------------------------------------------


@pytest.mark.spec("cw.decl")
def test_declaration_is_verbatim() -> None:
    spec = tool_by_name("create_workspace")
    assert spec is not None
    assert spec in TOOLS
    tool = mcp_tool(spec)
    assert tool.name == "create_workspace"
    assert tool.description == DESCRIPTION
    schema = tool.input_schema
    assert schema["type"] == "object"
    assert schema["required"] == ["template_id"]
    props = schema["properties"]
    assert list(props) == ["template_id", "name", "parameters", "preset_id"]
    assert props["template_id"]["type"] == "string"
    assert props["template_id"]["description"] == (
        "The UUIDv4 of the template to create the workspace from. Obtain this from list_templates."
    )
    assert props["name"]["type"] == "string"
    assert props["name"]["description"] == (
        "The name of the workspace to create. If not provided, a random name will be generated."
    )
    assert props["parameters"]["type"] == "object"
    assert props["parameters"]["additionalProperties"] == {"type": "string"}
    assert props["parameters"]["description"] == (
        "Key-value pairs of template parameters to use when creating the workspace. Obtain "
        "available parameters from read_template."
    )
    assert props["preset_id"]["type"] == "string"
    assert props["preset_id"]["description"] == (
        "The UUIDv4 of a template version preset to use. Obtain available presets from "
        "read_template. When provided, the preset's parameters are applied automatically "
        "and the workspace may claim a prebuilt instance for faster startup."
    )
    annotations = tool.annotations
    assert annotations is not None
    assert annotations.idempotent_hint is True
    assert annotations.read_only_hint is False
    assert annotations.destructive_hint is False


# --- early returns before any database access -----------------------------------------


@pytest.mark.spec("cw.not-configured")
async def test_not_configured(world: World, unreachable: Database) -> None:
    template = await world.template()
    for db in (world.db, unreachable):
        result = await world.create(
            {"create_enabled": False, "db": db}, template_id=str(template.id)
        )
        assert error_of(result) == "workspace creator is not configured"
    assert await world.workspaces() == []


@pytest.mark.spec("cw.template-id-required")
@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
async def test_template_id_required(world: World, unreachable: Database, value: str) -> None:
    result = await world.create({"db": unreachable}, template_id=value)
    assert error_of(result) == "template_id is required; use list_templates to find one"


@pytest.mark.spec("cw.template-id-required")
async def test_template_id_missing(world: World, unreachable: Database) -> None:
    """Omitted altogether, as models sometimes do: the same text error, not a schema one."""
    result = await world.call("create_workspace", {"name": "x"}, db=unreachable)
    assert error_of(result) == "template_id is required; use list_templates to find one"


@pytest.mark.spec("cw.template-id-invalid")
@pytest.mark.parametrize(
    ("value", "parse_error"),
    [
        ("abc", "invalid UUID length: 3"),
        ("dev", "invalid UUID length: 3"),
        ("g" * 36, "invalid UUID format"),
        ("0123456789abcdef0123456789abcdeg", "invalid UUID format"),
        ("01234567-89ab-cdef-0123456789abcdef", "invalid UUID length: 35"),
        ("0123456-789ab-cdef-0123-456789abcdef", "invalid UUID format"),
        ("{0123456789abcdef0123456789abcdef}", "invalid UUID length: 34"),
        ("xxxxxxxxx01234567-89ab-cdef-0123-456789abcdef", 'invalid urn prefix: "xxxxxxxxx"'),
        ("é" * 18, "invalid UUID format"),
    ],
)
async def test_template_id_invalid(
    world: World, unreachable: Database, value: str, parse_error: str
) -> None:
    result = await world.create({"db": unreachable}, template_id=value)
    assert error_of(result) == f"invalid template_id: {parse_error}"


@pytest.mark.spec("cw.template-id-invalid", "cw.template-id-required")
async def test_template_id_forms_go_accepts_are_accepted(world: World) -> None:
    """Trimmed, and every form Go's ``uuid.Parse`` reads: braces, urn, bare hex, upper case."""
    template = await world.template()
    forms = [
        f"  {template.id}  ",
        f"{{{template.id}}}",
        f"urn:uuid:{template.id}",
        f"URN:UUID:{str(template.id).upper()}",
        template.id.hex,
    ]
    for i, form in enumerate(forms):
        world.chat_id = await world.new_chat()
        result = result_of(await world.create(template_id=form, name=f"form-{i}"))
        assert result["created"] is True
    names = sorted(w.name for w in await world.workspaces())
    assert names == [f"form-{i}" for i in range(len(forms))]


@pytest.mark.spec("cw.allowlist")
async def test_allowlist(world: World, unreachable: Database) -> None:
    allowed = await world.template("allowed")
    other = await world.template("other")

    async def only_allowed() -> frozenset[uuid.UUID]:
        return frozenset({allowed.id})

    async def empty() -> frozenset[uuid.UUID]:
        return frozenset()

    # Refused without touching the database.
    result = await world.create(
        {"allowlist": only_allowed, "db": unreachable}, template_id=str(other.id)
    )
    assert error_of(result) == NOT_ALLOWED
    # Refused before the existing-workspace check: a chat with a running workspace too.
    first = result_of(
        await world.create({"allowlist": only_allowed}, template_id=str(allowed.id), name="a")
    )
    assert first["created"] is True
    result = await world.create({"allowlist": only_allowed}, template_id=str(other.id))
    assert error_of(result) == NOT_ALLOWED
    # An empty or unset allowlist allows every template.
    world.chat_id = await world.new_chat()
    result = result_of(
        await world.create({"allowlist": empty}, template_id=str(other.id), name="b")
    )
    assert result["created"] is True
    world.chat_id = await world.new_chat()
    result = result_of(await world.create({"allowlist": None}, template_id=str(other.id), name="c"))
    assert result["created"] is True
    assert sorted(w.name for w in await world.workspaces()) == ["a", "b", "c"]


# --- as the owner: template lookup, organization, external agents --------------------


@pytest.mark.spec("cw.as-owner")
async def test_owner_authorization_failure(world: World) -> None:
    template = await world.template()
    result = await world.create({"owner_id": uuid.uuid4()}, template_id=str(template.id))
    assert error_of(result) == "load user authorization: user not found"
    assert await world.workspaces() == []


@pytest.mark.spec("cw.as-owner", "cw.template-lookup", "cw.cross-org")
async def test_lookup_runs_as_the_chat_owner(world: World) -> None:
    """A template alice cannot see is "not found" for her chat, but is found for admin's."""
    await create_organization(world.service(world.admin), name="elsewhere")
    template = (await world.push(template_yaml("far"), organization="elsewhere")).template
    result = await world.create(template_id=str(template.id))
    assert error_of(result) == "look up template: template not found"
    # The site owner sees every organization's templates: the org check answers.
    admin_chat = await world.new_chat(world.admin)
    result = await world.create(
        {"chat_id": admin_chat, "owner_id": world.admin_id}, template_id=str(template.id)
    )
    assert error_of(result) == CROSS_ORG


@pytest.mark.spec("cw.template-lookup")
async def test_template_missing_or_deleted(world: World) -> None:
    result = await world.create(template_id=str(uuid.uuid4()))
    assert error_of(result) == "look up template: template not found"
    template = await world.template("gone")
    async with world.db.write(as_system()) as raw:
        await raw.acting_as(world.admin).mark_template_deleted(template.id)
    result = await world.create(template_id=str(template.id))
    assert error_of(result) == "look up template: template not found"
    assert await world.workspaces() == []


@pytest.mark.spec("cw.cross-org")
async def test_template_of_another_organization(world: World) -> None:
    org = await create_organization(world.service(world.admin), name="elsewhere")
    async with world.db.write(as_system()) as raw:
        await raw.insert_organization_member(organization_id=org.id, user_id=world.owner_id)
    template = (await world.push(template_yaml("far"), organization="elsewhere")).template
    result = await world.create(template_id=str(template.id))
    assert error_of(result) == CROSS_ORG
    assert await world.workspaces() == []


@pytest.mark.spec("cw.external")
async def test_external_agent_template_is_refused(world: World) -> None:
    template = await world.template(
        "ext", agents=[{"name": "main"}, {"name": "laptop", "external": True}]
    )
    result = await world.create(template_id=str(template.id))
    assert error_of(result) == EXTERNAL_MESSAGE
    assert await world.workspaces() == []


@pytest.mark.spec("cw.external", "cw.api-error")
async def test_missing_version_counts_as_not_external(world: World) -> None:
    """A template without a version row passes the check; the create itself then fails."""
    async with world.db.write(as_system()) as raw:
        bare = await raw.acting_as(world.admin).insert_template(
            organization_id=world.org_id, name="bare", created_by=world.admin_id
        )
    result = result_of(await world.create(template_id=str(bare.id)))
    assert result == {"error": "Template 'bare' has no active version."}


# --- TTL, presets, names, parameters ---------------------------------------------------


@pytest.mark.spec("cw.ttl")
@pytest.mark.parametrize(
    ("setting", "ttl_ms"),
    [
        ("2h0m0s", 7_200_000),
        ("90m", 5_400_000),
        ("1.5s", 1_500),
        ("1.001s", 1_001),
        ("1m0.001s", 60_001),
        ("0s", 3_600_000),
        ("0", 3_600_000),
        ("", 3_600_000),
        (None, 3_600_000),
        ("bogus", 3_600_000),
        ("-5m", 3_600_000),
    ],
)
async def test_chat_workspace_ttl(
    world: World, setting: str | None, ttl_ms: int, caplog: pytest.LogCaptureFixture
) -> None:
    template = await world.template("ttl", default_ttl="1h")
    if setting is not None:
        await world.set_site_config("chat_workspace_ttl", setting)
    with caplog.at_level(logging.WARNING, logger="berth.tools"):
        result_of(await world.create(template_id=str(template.id), name="ttl"))
    [workspace] = await world.workspaces()
    assert workspace.ttl_ms == ttl_ms
    logged = any("chat workspace TTL" in r.getMessage() for r in caplog.records)
    assert logged == (setting in ("bogus", "-5m"))


@pytest.mark.spec("cw.ttl")
async def test_chat_workspace_ttl_zero_and_no_template_default(world: World) -> None:
    template = await world.template("nottl")
    await world.set_site_config("chat_workspace_ttl", "0s")
    result_of(await world.create(template_id=str(template.id), name="forever"))
    [workspace] = await world.workspaces()
    assert workspace.ttl_ms is None


SIZED: dict[str, Any] = {
    "parameters": [
        {"name": "size", "default": "small", "mutable": True},
        {"name": "region", "default": "us", "mutable": True},
    ],
    "presets": [
        {"name": "big", "parameters": {"size": "large", "region": "eu"}},
        {"name": "warm", "parameters": {"size": "medium"}, "prebuilds": {"instances": 1}},
    ],
}


async def preset_ids(world: World, version_id: uuid.UUID) -> dict[str, uuid.UUID]:
    async with world.db.read(as_system()) as raw:
        presets = await raw.acting_as(world.admin).list_template_version_presets(version_id)
    return {p.name: p.id for p in presets}


@pytest.mark.spec("cw.preset")
@pytest.mark.parametrize(
    ("value", "parse_error"),
    [("not-a-uuid", "invalid UUID length: 10"), ("z" * 36, "invalid UUID format")],
)
async def test_invalid_preset_id(world: World, value: str, parse_error: str) -> None:
    template = await world.template("sized", **SIZED)
    result = await world.create(template_id=str(template.id), preset_id=value)
    assert error_of(result) == f"invalid preset_id: {parse_error}"
    assert await world.workspaces() == []


@pytest.mark.spec("cw.preset", "cw.parameters")
async def test_preset_parameters_apply_and_explicit_ones_win(world: World) -> None:
    pushed = await world.push(template_yaml("sized", **SIZED))
    big = (await preset_ids(world, pushed.version.id))["big"]
    result = result_of(
        await world.create(
            template_id=str(pushed.template.id),
            name="box",
            preset_id=f"  {big}  ",
            parameters={"region": "ap"},
        )
    )
    build = await world.build(uuid.UUID(result["build_id"]))
    assert build.preset_id == big
    assert await world.build_parameters(build.id) == {"size": "large", "region": "ap"}


@pytest.mark.spec("cw.preset")
async def test_blank_preset_id_means_no_preset(world: World) -> None:
    template = await world.template("sized", **SIZED)
    result = result_of(await world.create(template_id=str(template.id), name="box", preset_id=" "))
    build = await world.build(uuid.UUID(result["build_id"]))
    assert build.preset_id is None
    assert await world.build_parameters(build.id) == {"size": "small", "region": "us"}


@pytest.mark.spec("cw.prebuild", "cw.preset")
async def test_preset_without_a_ready_prebuild_builds_normally(world: World) -> None:
    pushed = await world.push(template_yaml("sized", **SIZED))
    warm = (await preset_ids(world, pushed.version.id))["warm"]
    result = result_of(
        await world.create(template_id=str(pushed.template.id), name="quick", preset_id=str(warm))
    )
    [workspace] = await world.workspaces()
    assert result == {
        "created": True,
        "workspace_name": "alice/quick",
        "build_id": result["build_id"],
    }
    build = await world.build(uuid.UUID(result["build_id"]))
    assert (build.workspace_id, build.build_number, build.reason) == (workspace.id, 1, "initiator")
    assert build.preset_id == warm
    assert await world.build_parameters(build.id) == {"size": "medium", "region": "us"}
    assert [(a.spec.workspace_id, a.transition.value) for a in world.fake.applies] == [
        (workspace.id, "start")
    ]


@pytest.mark.spec("cw.api-error", "cw.preset")
async def test_preset_of_no_active_version_is_an_api_error(world: World) -> None:
    template = await world.template("sized", **SIZED)
    result = result_of(
        await world.create(template_id=str(template.id), preset_id=str(uuid.uuid4()))
    )
    assert result == {
        "error": "Invalid preset.",
        "validations": [
            {"field": "preset_id", "detail": "not a preset of the template's active version"}
        ],
    }
    assert await world.workspaces() == []


@pytest.mark.spec("cw.name")
@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("", rf"dev-env-{HEX4}"),
        ("   ", rf"dev-env-{HEX4}"),
        ("My Project!", rf"myproject-{HEX4}"),
        ("bob@example.com", rf"bob-{HEX4}"),
        ("under_score", rf"underscore-{HEX4}"),
        ("new", rf"[a-z]+-[a-z]+-{HEX4}"),
        ("a" * 33, rf"[a-z]+-[a-z]+-{HEX4}"),
        (" good-name ", "good-name"),
        ("Mixed-Case-1", "Mixed-Case-1"),
        ("x" * 32, "x" * 32),
    ],
)
async def test_workspace_name(world: World, requested: str, expected: str) -> None:
    template = await world.template("dev-env")
    result = result_of(await world.create(template_id=str(template.id), name=requested))
    [workspace] = await world.workspaces()
    assert re.fullmatch(expected, workspace.name), workspace.name
    assert is_valid_name(workspace.name)
    assert result["workspace_name"] == f"alice/{workspace.name}"


@pytest.mark.spec("cw.parameters")
async def test_parameters_become_build_parameters(world: World) -> None:
    template = await world.template("sized", **SIZED)
    result = result_of(
        await world.create(
            template_id=str(template.id), name="p", parameters={"size": "huge", "region": "eu"}
        )
    )
    build_id = uuid.UUID(result["build_id"])
    assert await world.build_parameters(build_id) == {"size": "huge", "region": "eu"}


@pytest.mark.spec("cw.parameters", "cw.api-error")
async def test_unknown_parameter_is_an_api_error(world: World) -> None:
    template = await world.template("sized", **SIZED)
    result = result_of(
        await world.create(template_id=str(template.id), parameters={"colour": "red"})
    )
    assert result == {
        "error": "Invalid parameter values.",
        "validations": [
            {"field": "colour", "detail": "no parameter with this name in the template"}
        ],
    }
    assert await world.workspaces() == []


# --- create: name retry and API errors -------------------------------------------------


class CreateSpy:
    """Counts calls of the workspaces service's create and records the names asked for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail: Exception | None = None) -> None:
        self.names: list[str] = []
        self._real = workspaces.create_workspace
        self._fail = fail
        monkeypatch.setattr(workspaces, "create_workspace", self)

    async def __call__(self, ctx: Ctx, **kw: Any) -> workspaces.Started:
        self.names.append(kw["name"])
        if self._fail is not None:
            raise self._fail
        return await self._real(ctx, **kw)


@pytest.mark.spec("cw.name-retry")
async def test_a_taken_name_is_retried_once_with_a_generated_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = await world.template()
    await world.start_workspace(template, "taken")
    spy = CreateSpy(monkeypatch)
    result = result_of(await world.create(template_id=str(template.id), name="taken"))
    assert spy.names[0] == "taken"
    assert len(spy.names) == 2
    assert re.fullmatch(rf"taken-{HEX4}", spy.names[1])
    assert result["created"] is True
    assert result["workspace_name"] == f"alice/{spy.names[1]}"
    assert sorted(w.name for w in await world.workspaces()) == sorted(["taken", spy.names[1]])


@pytest.mark.spec("cw.name-retry", "cw.api-error")
async def test_other_conflicts_are_not_retried(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world.db.write(as_system()) as raw:
        bare = await raw.acting_as(world.admin).insert_template(
            organization_id=world.org_id, name="bare", created_by=world.admin_id
        )
    spy = CreateSpy(monkeypatch)
    result = result_of(await world.create(template_id=str(bare.id), name="one"))
    assert result == {"error": "Template 'bare' has no active version."}
    assert spy.names == ["one"]


@pytest.mark.spec("cw.api-error")
async def test_structured_errors_keep_detail_and_validations(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = await world.template()
    CreateSpy(
        monkeypatch,
        fail=BerthError(
            "Nope.", detail="Because.", validations=[Validation("ttl_ms", "must be >= 0")]
        ),
    )
    result = result_of(await world.create(template_id=str(template.id)))
    assert result == {
        "error": "Nope.",
        "detail": "Because.",
        "validations": [{"field": "ttl_ms", "detail": "must be >= 0"}],
    }


@pytest.mark.spec("cw.api-error")
async def test_other_errors_are_text_errors(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    template = await world.template()
    CreateSpy(monkeypatch, fail=RuntimeError("the disk is on fire"))
    result = await world.create(template_id=str(template.id))
    assert error_of(result) == "the disk is on fire"
    assert world.updates == []


@pytest.mark.spec("resp.api-error")
def test_api_error_response() -> None:
    full = api_error(
        BerthError(
            "Invalid workspace name.",
            detail="Names are short.",
            validations=[Validation("name", "must be <= 32 characters"), Validation("x", "y")],
        )
    )
    assert not full.is_error
    assert full.structured == {
        "error": "Invalid workspace name.",
        "detail": "Names are short.",
        "validations": [
            {"field": "name", "detail": "must be <= 32 characters"},
            {"field": "x", "detail": "y"},
        ],
    }
    assert full.text == (
        '{"detail": "Names are short.", "error": "Invalid workspace name.", "validations": '
        '[{"detail": "must be <= 32 characters", "field": "name"}, {"detail": "y", "field": "x"}]}'
    )
    bare = api_error(BerthError(""))
    assert bare.structured == {"error": "request failed"}
    assert not bare.is_error


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
