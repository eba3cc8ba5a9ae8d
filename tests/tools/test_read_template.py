"""``read_template`` (spec §12) on real databases: its errors in order and its result."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from berth.clock import FakeClock
from berth.db.engine import Database
from berth.tools.context import ChatContext
from berth.tools.registry import call_tool, tool_by_name
from tests.support.chats import Org, add_template, error_text, make_org, payload

pytestmark = pytest.mark.anyio


@pytest.fixture
async def org(db: Database, clock: FakeClock) -> Org:
    return await make_org(db, clock)


def _allow(*ids: uuid.UUID) -> Callable[[], Awaitable[frozenset[uuid.UUID]]]:
    async def read() -> frozenset[uuid.UUID]:
        return frozenset(ids)

    return read


async def _read(ctx: ChatContext, template_id: Any) -> Any:
    return await call_tool(ctx, "read_template", {"template_id": template_id})


@pytest.mark.spec("rt.decl")
def test_declaration() -> None:
    """[rt.decl] Name, description and argument verbatim; read-only."""
    spec = tool_by_name("read_template")
    assert spec is not None
    assert spec.description == (
        "Get details about a workspace template, including its configurable parameters and "
        "available presets. Use this after finding a template with list_templates and before "
        "creating a workspace with create_workspace."
    )
    schema = spec.input_schema()
    assert schema["required"] == ["template_id"]
    assert schema["properties"]["template_id"]["type"] == "string"
    assert schema["properties"]["template_id"]["description"] == (
        "The UUIDv4 of the template to read details for. Obtain this from list_templates."
    )
    assert spec.hints.read_only
    assert not spec.hints.destructive


@pytest.mark.spec("rt.errors")
async def test_errors_in_order(org: Org) -> None:
    """[rt.errors] required → invalid → allowlist → owner → missing / other org."""
    tpl = await add_template(org, "dev")
    foreign = await add_template(org, "foreign", organization_id=org.other_org_id)
    ctx = org.ctx()
    assert error_text(await _read(ctx, "  ")) == "template_id is required"
    assert error_text(await call_tool(ctx, "read_template", {})) == "template_id is required"
    assert error_text(await _read(ctx, "abc")) == "invalid template_id: invalid UUID length: 3"
    bad = "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"
    assert error_text(await _read(ctx, bad)) == "invalid template_id: invalid UUID format"
    # The allowlist is checked before the owner: no database access is needed for it.
    nobody = ChatContext(
        db=org.db,
        chat_id=org.chat.id,
        organization_id=org.org_id,
        owner_id=uuid.uuid4(),
        allowlist=_allow(foreign.id),
    )
    assert error_text(await _read(nobody, str(tpl.id))) == "template not found"
    assert (
        error_text(await _read(nobody, str(foreign.id)))
        == "load user authorization: user not found"
    )
    assert error_text(await _read(ctx, str(uuid.uuid4()))) == "template not found"
    assert error_text(await _read(ctx, str(foreign.id))) == "template not found"
    gone = await add_template(org, "gone", deleted=True)
    assert error_text(await _read(ctx, str(gone.id))) == "template not found"
    # Allowed and visible: a result, with surrounding blanks ignored.
    assert payload(await _read(ctx, f"  {tpl.id} "))["template"]["name"] == "dev"


README = "---\nowner: platform\n---\n# Dev\n\nUse **this** one.\n"


@pytest.mark.spec("rt.result")
async def test_result_shape(org: Org) -> None:
    """[rt.result] template, readme, parameters and presets, each optional key only when set."""
    tpl = await add_template(
        org,
        "dev",
        display_name=" Dev box ",
        description=" For development. ",
        readme=README,
        parameters=[
            {
                "name": "region",
                "display_name": "Region",
                "description": "r" * 350,
                "type": "string",
                "form_type": "dropdown",
                "default_value": "eu",
                "mutable": True,
                "ephemeral": True,
                "options": [
                    {"name": "Europe", "value": "eu", "description": "", "icon": ""},
                    {"name": "US", "value": "us", "description": "East", "icon": "/us.svg"},
                ],
                "validation_regex": "^[a-z]+$",
            },
            {
                "name": "cpus",
                "type": "number",
                "form_type": "",
                "required": True,
                "validation_min": 1.0,
                "validation_max": 2.5,
            },
        ],
        presets=[
            {
                "name": "small",
                "description": " Small ",
                "icon": "/s.svg",
                "is_default": True,
                "desired_prebuild_instances": 2,
                "parameters": {"cpus": "1", "region": "us"},
            },
            {
                "name": "zbare",
                "description": "",
                "icon": "",
                "is_default": False,
                "desired_prebuild_instances": 0,
                "parameters": {},
            },
        ],
    )
    result = payload(await _read(org.ctx(), str(tpl.id)))
    assert result["template"] == {
        "id": str(tpl.id),
        "name": "dev",
        "active_version_id": str(tpl.active_version_id),
        "display_name": "Dev box",
        "description": "For development.",
    }
    assert result["readme"] == "Dev\nUse this one."
    assert result["parameters"] == [
        {
            "name": "region",
            "type": "string",
            "required": False,
            "mutable": True,
            "display_name": "Region",
            "description": "r" * 299 + "…",
            "default": "eu",
            "ephemeral": True,
            "form_type": "dropdown",
            "options": [
                {"name": "Europe", "value": "eu"},
                {"name": "US", "value": "us", "description": "East", "icon": "/us.svg"},
            ],
            "validation_regex": "^[a-z]+$",
        },
        {
            "name": "cpus",
            "type": "number",
            "required": True,
            "mutable": False,
            "validation_min": 1,
            "validation_max": 2.5,
        },
    ]
    small, bare = result["presets"]
    assert small == {
        "id": small["id"],
        "name": "small",
        "default": True,
        "description": "Small",
        "icon": "/s.svg",
        "desired_prebuild_instances": 2,
        "parameters": [{"name": "cpus", "value": "1"}, {"name": "region", "value": "us"}],
    }
    assert bare == {"id": bare["id"], "name": "zbare", "default": False, "parameters": []}


@pytest.mark.spec("rt.result")
async def test_minimal_template(org: Org) -> None:
    """[rt.result] No presets key without presets; a long README is cut at 8000 characters."""
    tpl = await add_template(org, "plain", readme="x" * 9000)
    result = payload(await _read(org.ctx(), str(tpl.id)))
    assert set(result) == {"template", "readme", "parameters"}
    assert set(result["template"]) == {"id", "name", "active_version_id"}
    assert result["parameters"] == []
    assert len(result["readme"]) == 8000
    assert result["readme"].endswith("x…")
    empty = await add_template(org, "empty")
    assert payload(await _read(org.ctx(), str(empty.id)))["readme"] == ""
