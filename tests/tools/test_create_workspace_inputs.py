"""create_workspace's inputs and the create (spec §1.2 steps 11–16, §4.2, §5).

TTL, presets, names and parameters; then the create itself: the name retry, API errors.

Driven for real: the tool runs against the ``db`` fixture (SQLite and Postgres) with
the provisioner and the fake backend in-process (see :mod:`tests.support.tools`).
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import pytest

from berth.domain.actors import as_system
from berth.domain.names import is_valid_name
from berth.errors import BerthError, Validation
from berth.services import workspaces
from berth.services.base import Ctx
from berth.tools.responses import api_error
from tests.support.tool_results import error_of, result_of
from tests.support.tools import World, template_yaml

pytestmark = pytest.mark.anyio

HEX4 = r"[0-9a-f]{4}"


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
