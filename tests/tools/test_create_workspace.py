"""create_workspace (spec §1.1, §1.2 steps 1–10): the declaration and every early return.

Driven for real: the tool runs against the ``db`` fixture (SQLite and Postgres) with
the provisioner and the fake backend in-process (see :mod:`tests.support.tools`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from berth.db.engine import Database, create_engine
from berth.domain.actors import as_system
from berth.mcp.server import mcp_tool
from berth.services.accounts import create_organization
from berth.tools.registry import TOOLS, tool_by_name
from tests.support.tool_results import error_of, result_of
from tests.support.tools import World, template_yaml

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
