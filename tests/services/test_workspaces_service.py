"""The workspaces service (DESIGN §5, §6): create, parameters and presets, rendering, TTL.

Every test runs on SQLite and on Postgres (the ``db`` fixture), with a real build
runner and real workers on the fake backend; nothing of berth is mocked.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import anyio
import pytest

from berth.clock import FakeClock
from berth.domain.actors import as_system
from berth.domain.enums import Transition
from berth.errors import Conflict, InvalidInput, NotFound
from berth.records import WorkspaceBuild
from berth.services import refs, templates, workspaces
from berth.services.workspaces import Started
from tests.support.workspace_steps import HOUR_MS, create, running, status_of, validations_of, ws_id
from tests.support.workspaces import WAIT, World, fake_template

pytestmark = pytest.mark.anyio


async def _template(world: World, ref: str) -> templates.TemplateDetail:
    return await templates.get_template(world.admin, await refs.template(world.admin, ref))


async def _params(world: World, build: WorkspaceBuild) -> dict[str, str]:
    async with world.db.read(as_system()) as raw:
        rows = await raw.list_workspace_build_parameters(build.id)
    return {p.name: p.value for p in rows}


# --- create -----------------------------------------------------------------------


async def test_create_inserts_workspace_build_and_pending_job(world: World) -> None:
    started = await create(world)
    assert started.new_build
    assert started.workspace.name == "w1"
    assert started.workspace.owner_id == world.admin_user.id
    assert not started.workspace.deleted
    assert started.build.build_number == 1
    assert started.build.transition == "start"
    assert started.build.job_id == started.job.id
    assert started.build.initiator_id == world.admin_user.id
    assert started.build.daily_cost == 1
    assert started.job.status == "pending"
    assert started.job.priority == workspaces.PRIORITY_HUMAN
    assert started.job.input == {"workspace_id": str(started.workspace.id)}
    assert await world.count() == {
        "workspaces": 1,
        "workspace_builds": 1,
        "workspace_build_parameters": 0,
        "provisioner_jobs": 1,
    }
    assert await status_of(world.admin, "w1") == "pending"
    assert await status_of(world.admin, str(started.workspace.id)) == "pending"
    assert await status_of(world.admin, "admin/w1") == "pending"


async def test_create_trims_the_name_and_accepts_the_longest_valid_one(world: World) -> None:
    assert (await create(world, "  padded  ")).workspace.name == "padded"
    longest = "a" * 31 + "b"
    assert (await create(world, longest)).workspace.name == longest


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("", "must be >= 1 character"),
        ("   ", "must be >= 1 character"),
        ("a" * 33, "must be <= 32 characters"),
        ("new", 'cannot use "new" as a name'),
        ("create", 'cannot use "create" as a name'),
        ("-lead", "must be alphanumeric with hyphens"),
        ("trail-", "must be alphanumeric with hyphens"),
        ("two--hyphens", "must be alphanumeric with hyphens"),
        ("has space", "must be alphanumeric with hyphens"),
        ("under_score", "must be alphanumeric with hyphens"),
        ("caf\u00e9", "must be alphanumeric with hyphens"),
    ],
)
async def test_create_refuses_invalid_names_and_stores_nothing(
    world: World, name: str, detail: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await create(world, name)
    assert caught.value.message == "Invalid workspace name."
    assert validations_of(caught.value) == {"name": [detail]}
    assert set((await world.count()).values()) == {0}


async def test_duplicate_name_is_a_conflict_on_name_and_stores_nothing(world: World) -> None:
    await create(world)
    before = await world.count()
    for again in ("w1", "W1"):  # names are unique per owner regardless of case
        with pytest.raises(Conflict) as caught:
            await create(world, again)
        assert list(validations_of(caught.value)) == ["name"]
        assert "already exists" in caught.value.message
    assert await world.count() == before
    # Another owner may use the name.
    bob = await world.add_member("bob")
    mine = await workspaces.create_workspace(bob, template="basic", name="w1")
    assert mine.workspace.owner_id != world.admin_user.id


async def test_concurrent_creates_of_one_name_store_one_workspace(world: World) -> None:
    with anyio.fail_after(WAIT * 3):
        results = await asyncio.gather(
            *(create(world, "race") for _ in range(6)), return_exceptions=True
        )
    created = [r for r in results if isinstance(r, Started)]
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(created) == 1, results
    assert len(conflicts) == 5, results
    assert all(list(validations_of(c)) == ["name"] for c in conflicts)
    counts = await world.count()
    assert counts["workspaces"] == counts["workspace_builds"] == counts["provisioner_jobs"] == 1


async def test_unknown_template_is_not_found(world: World) -> None:
    for ref in ("no-such-template", str(uuid.uuid4())):
        with pytest.raises(NotFound):
            await create(world, template=ref)
    assert set((await world.count()).values()) == {0}


# --- parameters -------------------------------------------------------------------

PARAMETERS: list[dict[str, Any]] = [
    {"name": "cpus", "type": "number", "default": "2", "validation": {"min": 1, "max": 8}},
    {
        "name": "region",
        "type": "string",
        "default": "eu",
        "options": [{"name": "Europe", "value": "eu"}, {"name": "US", "value": "us"}],
    },
    {"name": "debug", "type": "bool", "default": "false"},
    {
        "name": "branch",
        "type": "string",
        "default": "main",
        "validation": {"regex": "^[a-z]+$", "error": "{value} is not lowercase letters"},
    },
    {"name": "token", "type": "string"},  # no default: required
]


@pytest.fixture
async def param_world(world: World) -> World:
    await world.push(
        fake_template(
            "params",
            parameters=PARAMETERS,
            presets=[
                {"name": "big", "parameters": {"cpus": "8", "region": "us"}},
                {"name": "small", "default": True, "parameters": {"cpus": "1"}},
            ],
        )
    )
    return world


async def test_parameter_errors_name_every_field_and_rule(param_world: World) -> None:
    bad = {"cpus": "many", "region": "mars", "debug": "yes", "branch": "Main", "nope": "x"}
    with pytest.raises(InvalidInput) as caught:
        await create(param_world, template="params", parameters=bad)
    assert caught.value.message == "Invalid parameter values."
    assert validations_of(caught.value) == {
        "nope": ["no parameter with this name in the template"],
        "cpus": ['must be a number, got "many"'],
        "region": ['must be one of the options: "eu", "us"'],
        "debug": ['must be true or false, got "yes"'],
        "branch": ["Main is not lowercase letters"],
        "token": ["a value is required"],
    }
    with pytest.raises(InvalidInput) as caught:
        await create(param_world, template="params", parameters={"cpus": "9", "token": ""})
    assert validations_of(caught.value) == {
        "cpus": ["must be <= 8"],
        "token": ["a value is required"],
    }
    assert set((await param_world.count()).values()) == {0}


async def test_valid_parameters_are_resolved_with_defaults_and_stored(param_world: World) -> None:
    started = await create(
        param_world, template="params", parameters={"token": "s3cret", "debug": "true"}
    )
    assert await _params(param_world, started.build) == {
        "cpus": "2",
        "region": "eu",
        "debug": "true",
        "branch": "main",
        "token": "s3cret",
    }
    assert started.build.preset_id is None


async def test_preset_values_apply_and_explicit_values_win(param_world: World) -> None:
    detail = await templates.get_template(
        param_world.admin, await refs.template(param_world.admin, "params")
    )
    presets = {preset.name: preset for preset, _ in detail.presets}
    big = presets["big"]
    started = await create(
        param_world,
        template="params",
        preset_ref=str(big.id),
        parameters={"cpus": "4", "token": "t"},
    )
    assert started.build.preset_id == big.id
    values = await _params(param_world, started.build)
    assert values["region"] == "us", "the preset's value applies"
    assert values["cpus"] == "4", "an explicit value overrides the preset's"
    # A preset value that breaks a rule is refused like any other value.
    with pytest.raises(InvalidInput) as caught:
        await create(
            param_world,
            "w2",
            template="params",
            preset_ref=str(big.id),
            parameters={"token": "t", "region": "mars"},
        )
    assert list(validations_of(caught.value)) == ["region"]


async def test_a_preset_of_another_template_or_no_preset_is_refused(param_world: World) -> None:
    other = await param_world.push(
        fake_template("other", presets=[{"name": "solo", "parameters": {}}])
    )
    detail = await templates.get_template(
        param_world.admin, await refs.template(param_world.admin, str(other.template.id))
    )
    foreign = detail.presets[0][0]
    before = await param_world.count()
    for preset_id in (str(foreign.id), str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(InvalidInput) as caught:
            await create(
                param_world, template="params", preset_ref=preset_id, parameters={"token": "t"}
            )
        assert list(validations_of(caught.value)) == ["preset_id"]
    assert await param_world.count() == before


# --- rendering and TTL ------------------------------------------------------------


async def test_the_rendered_template_is_stored_on_the_build(world: World) -> None:
    await world.push(
        fake_template(
            "rendered",
            fake={"logs": ["hello {{ owner.name }} in {{ workspace.name }}"]},
            parameters=[{"name": "region", "type": "string", "default": "eu"}],
            agents=[
                {
                    "name": "main",
                    "chat": True,
                    "directory": "/home/{{ owner.username }}/{{ workspace.name }}",
                    "env": {
                        "OWNER": "{{ owner.username }}",
                        "WS": "{{ workspace.name }}",
                        "WS_ID": "{{ workspace.id }}",
                        "WS_OWNER": "{{ workspace.owner }}",
                        "TPL": "{{ template.name }}",
                        "REGION": "{{ parameters.region }}",
                    },
                    "scripts": [
                        {
                            "display_name": "greet {{ workspace.name }}",
                            "script": "echo {{ parameters.region | shquote }}",
                        }
                    ],
                }
            ],
        )
    )
    started = await create(world, "rw", template="rendered", parameters={"region": "us east"})
    rendered = started.build.rendered
    assert rendered is not None
    agent = rendered["agents"][0]
    assert agent["env"] == {
        "OWNER": "admin",
        "WS": "rw",
        "WS_ID": str(started.workspace.id),
        "WS_OWNER": "admin",
        "TPL": "rendered",
        "REGION": "us east",
    }
    assert agent["directory"] == "/home/admin/rw"
    assert agent["scripts"][0]["display_name"] == "greet rw"
    assert agent["scripts"][0]["script"] == "echo 'us east'"
    # The stored build is what the runner uses: the fake backend logs the rendered line.
    assert await world.run_one()
    async with world.db.read(as_system()) as raw:
        logs = await raw.list_provisioner_job_logs(started.job.id)
    assert "hello Administrator in rw" in [entry.output for entry in logs]
    # The template version itself keeps the Jinja source.
    detail = await _template(world, "rendered")
    assert detail.version is not None
    source_env = detail.version.document["agents"][0]["env"]
    assert source_env["OWNER"] == "{{ owner.username }}"


async def test_the_ttl_defaults_to_the_templates_and_sets_the_deadline(
    world: World, clock: FakeClock
) -> None:
    started = await create(world)
    assert started.workspace.ttl_ms == 2 * HOUR_MS
    assert started.workspace.deadline is None
    assert await world.run_one()
    after = await world.workspace(started.workspace.id)
    assert after.deadline == clock.now() + dt.timedelta(hours=2)

    explicit = await create(world, "w2", ttl_ms=60_000)
    assert explicit.workspace.ttl_ms == 60_000
    await world.push(fake_template("forever", default_ttl="0s"))
    never = await create(world, "w3", template="forever")
    assert never.workspace.ttl_ms is None
    assert await world.run_one()
    assert await world.run_one()
    assert (await world.workspace(never.workspace.id)).deadline is None
    with pytest.raises(InvalidInput) as caught:
        await create(world, "w4", ttl_ms=-1)
    assert list(validations_of(caught.value)) == ["ttl_ms"]


async def test_update_ttl(world: World, clock: FakeClock) -> None:
    started = await running(world)
    created_at = started.workspace.last_used_at
    assert created_at is not None
    clock.advance(dt.timedelta(minutes=10))
    updated = await workspaces.update_ttl(world.admin, await ws_id(world), HOUR_MS)
    assert updated.ttl_ms == HOUR_MS
    assert updated.deadline == created_at + dt.timedelta(hours=1)
    cleared = await workspaces.update_ttl(world.admin, await ws_id(world), None)
    assert cleared.ttl_ms is None
    assert cleared.deadline is None
    zero = await workspaces.update_ttl(world.admin, await ws_id(world), 0)
    assert zero.ttl_ms is None
    assert zero.deadline is None
    with pytest.raises(InvalidInput) as caught:
        await workspaces.update_ttl(world.admin, await ws_id(world), -5)
    assert list(validations_of(caught.value)) == ["ttl_ms"]
    # A workspace with no deadline (stopped) gets a TTL but no deadline.
    await workspaces.transition_workspace(world.admin, await ws_id(world), Transition.STOP)
    assert await world.run_one()
    stopped = await workspaces.update_ttl(world.admin, await ws_id(world), HOUR_MS)
    assert stopped.ttl_ms == HOUR_MS
    assert stopped.deadline is None
