"""The workspaces service (DESIGN §5, §6): create, builds, cancel, TTL, status, visibility.

Every test runs on SQLite and on Postgres (the ``db`` fixture), with a real build
runner and real workers on the fake backend; nothing of berth is mocked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from berth.agentconn import AgentGateway
from berth.clock import FakeClock
from berth.db.engine import Database
from berth.domain.actors import as_system
from berth.domain.enums import JobStatus, Transition
from berth.errors import BerthError, Conflict, InvalidInput, NotFound, Unavailable
from berth.records import WorkspaceBuild
from berth.services import accounts, execs, refs, templates, workspace_views, workspaces
from berth.services.base import Ctx
from berth.services.workspace_views import workspace_status
from berth.services.workspaces import Started
from tests.support.workspaces import (
    BUILD_TABLES,
    WAIT,
    World,
    fake_template,
    open_world,
    workspace_id,
)

pytestmark = pytest.mark.anyio

HOUR_MS = 3600 * 1000


@pytest.fixture
async def world(db: Database, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(db, tmp_path / "state") as w:
        await w.push(fake_template("basic"))
        yield w


async def _create(world: World, name: str = "w1", **kw: Any) -> Started:
    return await workspaces.create_workspace(
        world.admin, template=kw.pop("template", "basic"), name=name, **kw
    )


async def _running(world: World, name: str = "w1", **kw: Any) -> Started:
    """A workspace whose first start build has succeeded."""
    started = await _create(world, name, **kw)
    assert await world.run_one()
    assert (await world.job(started.job.id)).status == JobStatus.SUCCEEDED
    return started


async def _id(world: World, ref: str = "w1") -> uuid.UUID:
    """The admin's workspace ``ref``, resolved as an API route resolves it."""
    return await workspace_id(world.admin, ref)


async def _status(ctx: Ctx, ref: str) -> str:
    return (await workspace_views.get_workspace(ctx, await workspace_id(ctx, ref))).status


async def _template(world: World, ref: str) -> templates.TemplateDetail:
    return await templates.get_template(world.admin, await refs.template(world.admin, ref))


async def _params(world: World, build: WorkspaceBuild) -> dict[str, str]:
    async with world.db.read(as_system()) as raw:
        rows = await raw.list_workspace_build_parameters(build.id)
    return {p.name: p.value for p in rows}


def _validations(exc: BerthError) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for v in exc.validations:
        found.setdefault(v.field, []).append(v.detail)
    return found


# --- create -----------------------------------------------------------------------


async def test_create_inserts_workspace_build_and_pending_job(world: World) -> None:
    started = await _create(world)
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
    assert await _status(world.admin, "w1") == "pending"
    assert await _status(world.admin, str(started.workspace.id)) == "pending"
    assert await _status(world.admin, "admin/w1") == "pending"


async def test_create_trims_the_name_and_accepts_the_longest_valid_one(world: World) -> None:
    assert (await _create(world, "  padded  ")).workspace.name == "padded"
    longest = "a" * 31 + "b"
    assert (await _create(world, longest)).workspace.name == longest


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
        await _create(world, name)
    assert caught.value.message == "Invalid workspace name."
    assert _validations(caught.value) == {"name": [detail]}
    assert set((await world.count()).values()) == {0}


async def test_duplicate_name_is_a_conflict_on_name_and_stores_nothing(world: World) -> None:
    await _create(world)
    before = await world.count()
    for again in ("w1", "W1"):  # names are unique per owner regardless of case
        with pytest.raises(Conflict) as caught:
            await _create(world, again)
        assert list(_validations(caught.value)) == ["name"]
        assert "already exists" in caught.value.message
    assert await world.count() == before
    # Another owner may use the name.
    bob = await world.add_member("bob")
    mine = await workspaces.create_workspace(bob, template="basic", name="w1")
    assert mine.workspace.owner_id != world.admin_user.id


async def test_concurrent_creates_of_one_name_store_one_workspace(world: World) -> None:
    with anyio.fail_after(WAIT * 3):
        results = await asyncio.gather(
            *(_create(world, "race") for _ in range(6)), return_exceptions=True
        )
    created = [r for r in results if isinstance(r, Started)]
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(created) == 1, results
    assert len(conflicts) == 5, results
    assert all(list(_validations(c)) == ["name"] for c in conflicts)
    counts = await world.count()
    assert counts["workspaces"] == counts["workspace_builds"] == counts["provisioner_jobs"] == 1


async def test_unknown_template_is_not_found(world: World) -> None:
    for ref in ("no-such-template", str(uuid.uuid4())):
        with pytest.raises(NotFound):
            await _create(world, template=ref)
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
        await _create(param_world, template="params", parameters=bad)
    assert caught.value.message == "Invalid parameter values."
    assert _validations(caught.value) == {
        "nope": ["no parameter with this name in the template"],
        "cpus": ['must be a number, got "many"'],
        "region": ['must be one of the options: "eu", "us"'],
        "debug": ['must be true or false, got "yes"'],
        "branch": ["Main is not lowercase letters"],
        "token": ["a value is required"],
    }
    with pytest.raises(InvalidInput) as caught:
        await _create(param_world, template="params", parameters={"cpus": "9", "token": ""})
    assert _validations(caught.value) == {
        "cpus": ["must be <= 8"],
        "token": ["a value is required"],
    }
    assert set((await param_world.count()).values()) == {0}


async def test_valid_parameters_are_resolved_with_defaults_and_stored(param_world: World) -> None:
    started = await _create(
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
    started = await _create(
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
        await _create(
            param_world,
            "w2",
            template="params",
            preset_ref=str(big.id),
            parameters={"token": "t", "region": "mars"},
        )
    assert list(_validations(caught.value)) == ["region"]


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
            await _create(
                param_world, template="params", preset_ref=preset_id, parameters={"token": "t"}
            )
        assert list(_validations(caught.value)) == ["preset_id"]
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
    started = await _create(world, "rw", template="rendered", parameters={"region": "us east"})
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
    started = await _create(world)
    assert started.workspace.ttl_ms == 2 * HOUR_MS
    assert started.workspace.deadline is None
    assert await world.run_one()
    after = await world.workspace(started.workspace.id)
    assert after.deadline == clock.now() + dt.timedelta(hours=2)

    explicit = await _create(world, "w2", ttl_ms=60_000)
    assert explicit.workspace.ttl_ms == 60_000
    await world.push(fake_template("forever", default_ttl="0s"))
    never = await _create(world, "w3", template="forever")
    assert never.workspace.ttl_ms is None
    assert await world.run_one()
    assert await world.run_one()
    assert (await world.workspace(never.workspace.id)).deadline is None
    with pytest.raises(InvalidInput) as caught:
        await _create(world, "w4", ttl_ms=-1)
    assert list(_validations(caught.value)) == ["ttl_ms"]


async def test_update_ttl(world: World, clock: FakeClock) -> None:
    started = await _running(world)
    created_at = started.workspace.last_used_at
    assert created_at is not None
    clock.advance(dt.timedelta(minutes=10))
    updated = await workspaces.update_ttl(world.admin, await _id(world), HOUR_MS)
    assert updated.ttl_ms == HOUR_MS
    assert updated.deadline == created_at + dt.timedelta(hours=1)
    cleared = await workspaces.update_ttl(world.admin, await _id(world), None)
    assert cleared.ttl_ms is None
    assert cleared.deadline is None
    zero = await workspaces.update_ttl(world.admin, await _id(world), 0)
    assert zero.ttl_ms is None
    assert zero.deadline is None
    with pytest.raises(InvalidInput) as caught:
        await workspaces.update_ttl(world.admin, await _id(world), -5)
    assert list(_validations(caught.value)) == ["ttl_ms"]
    # A workspace with no deadline (stopped) gets a TTL but no deadline.
    await workspaces.transition_workspace(world.admin, await _id(world), Transition.STOP)
    assert await world.run_one()
    stopped = await workspaces.update_ttl(world.admin, await _id(world), HOUR_MS)
    assert stopped.ttl_ms == HOUR_MS
    assert stopped.deadline is None


# --- start, stop, delete ------------------------------------------------------------


async def test_start_on_running_and_stop_on_stopped_make_no_new_build(world: World) -> None:
    started = await _running(world)
    assert await _status(world.admin, "w1") == "running"
    again = await workspaces.transition_workspace(world.admin, await _id(world), Transition.START)
    assert not again.new_build
    assert again.build.id == started.build.id
    assert (await world.count())["provisioner_jobs"] == 1

    stop = await workspaces.transition_workspace(world.admin, await _id(world), Transition.STOP)
    assert stop.new_build
    assert stop.build.build_number == 2
    assert stop.build.transition == "stop"
    assert stop.build.daily_cost == 0
    assert await _status(world.admin, "w1") == "pending"
    assert await world.run_one()
    assert await _status(world.admin, "w1") == "stopped"
    assert not world.backend.running(started.workspace.id)
    stop_again = await workspaces.transition_workspace(
        world.admin, await _id(world), Transition.STOP
    )
    assert not stop_again.new_build
    assert stop_again.build.id == stop.build.id
    assert (await world.count())["provisioner_jobs"] == 2

    restart = await workspaces.transition_workspace(world.admin, await _id(world), Transition.START)
    assert restart.new_build
    assert restart.build.build_number == 3
    assert await world.run_one()
    assert await _status(world.admin, "w1") == "running"
    assert world.backend.running(started.workspace.id)
    assert [b.transition for b in await world.builds(started.workspace.id)] == [
        "start",
        "stop",
        "start",
    ]


async def test_a_workspace_already_building_refuses_another_build(world: World) -> None:
    started = await _create(world)
    before = await world.count()
    for transition in Transition:
        with pytest.raises(Conflict) as caught:
            await workspaces.transition_workspace(world.admin, await _id(world), transition)
        assert caught.value.message == "Workspace 'w1' is already building."
        assert caught.value.detail is not None
        assert "pending" in caught.value.detail
    assert await world.count() == before, "a refused build leaves no job behind"
    assert await world.run_one()
    assert not await world.run_one(), "no stray job was queued"
    stopped = await workspaces.transition_workspace(world.admin, await _id(world), Transition.STOP)
    assert stopped.build.build_number == 2
    assert (await world.job(started.job.id)).status == JobStatus.SUCCEEDED


async def test_concurrent_stops_queue_one_build(world: World) -> None:
    w1 = (await _running(world)).workspace.id
    with anyio.fail_after(WAIT * 3):
        results = await asyncio.gather(
            *(workspaces.transition_workspace(world.admin, w1, Transition.STOP) for _ in range(5)),
            return_exceptions=True,
        )
    started = [r for r in results if isinstance(r, Started)]
    assert len(started) == 1, [(s.build.build_number, s.job.status) for s in started]
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, Started)), results
    counts = await world.count()
    assert counts["provisioner_jobs"] == counts["workspace_builds"] == 2


async def test_delete_marks_the_workspace_deleted_when_its_job_succeeds(world: World) -> None:
    started = await _running(world)
    deleting = await workspaces.transition_workspace(
        world.admin, await _id(world), Transition.DELETE
    )
    assert deleting.new_build
    assert deleting.build.transition == "delete"
    assert not (await world.workspace(started.workspace.id)).deleted, "not before the job ran"
    assert await _status(world.admin, "w1") == "pending"
    assert await world.run_one()
    gone = await world.workspace(started.workspace.id)
    assert gone.deleted
    assert gone.deadline is None
    assert started.workspace.id not in world.backend.workspaces or not (
        world.backend.workspaces[started.workspace.id].home
    )
    for ref in ("w1", str(started.workspace.id)):
        with pytest.raises(NotFound):
            await workspace_id(world.admin, ref)
    with pytest.raises(NotFound):
        await workspace_views.get_workspace(world.admin, started.workspace.id)
    with pytest.raises(NotFound):
        await workspaces.transition_workspace(world.admin, started.workspace.id, Transition.DELETE)
    assert await workspace_views.list_workspaces(world.admin) == []
    # The name is free again.
    reused = await _create(world)
    assert reused.workspace.id != started.workspace.id


async def test_a_failed_delete_keeps_the_workspace_and_can_be_retried(world: World) -> None:
    await world.push(fake_template("sticky", fake={"delete": {"fail": "volume busy"}}))
    started = await _running(world, template="sticky")
    await workspaces.transition_workspace(world.admin, await _id(world), Transition.DELETE)
    assert await world.run_one()
    assert not (await world.workspace(started.workspace.id)).deleted
    assert await _status(world.admin, "w1") == "failed"
    retry = await workspaces.transition_workspace(world.admin, await _id(world), Transition.DELETE)
    assert retry.new_build
    assert retry.build.build_number == 3


# --- cancel -----------------------------------------------------------------------


async def test_cancel_of_a_pending_build_cancels_it_at_once(world: World) -> None:
    started = await _create(world)
    job = await workspaces.cancel_build(world.admin, await _id(world))
    assert job.id == started.job.id
    assert job.status == JobStatus.CANCELED
    assert job.canceled_at is not None
    assert job.completed_at is not None
    assert await _status(world.admin, "w1") == "canceled"
    assert not await world.run_one(), "a canceled job is never picked up"
    assert world.backend.applies == []
    with pytest.raises(Conflict):
        await workspaces.cancel_build(world.admin, await _id(world))
    again = await workspaces.transition_workspace(world.admin, await _id(world), Transition.START)
    assert again.new_build
    assert again.build.build_number == 2


async def test_cancel_of_a_running_build_is_finished_by_the_worker(world: World) -> None:
    await world.push(fake_template("slow", fake={"hang": True}))
    started = await _create(world, template="slow")
    worker = asyncio.create_task(world.worker("w-cancel").run_once())
    try:
        with anyio.fail_after(WAIT):
            await world.backend.hang_started.wait()
        assert await _status(world.admin, "w1") == "starting"
        job = await workspaces.cancel_build(world.admin, await _id(world))
        assert job.status == JobStatus.CANCELING
        with anyio.fail_after(WAIT):
            assert await worker
    finally:
        worker.cancel()
    final = await world.job(started.job.id)
    assert final.status == JobStatus.CANCELED
    assert final.error == "the build was canceled"
    assert [a.result for a in world.backend.applies] == ["canceled"]
    assert await _status(world.admin, "w1") == "canceled"
    with pytest.raises(Conflict):
        await workspaces.cancel_build(world.admin, await _id(world))


# --- status -------------------------------------------------------------------------


async def test_workspace_status_follows_the_latest_build_and_job(world: World) -> None:
    started = await _create(world)
    build, job = started.build, started.job

    def status(transition: str, job_status: str) -> str:
        return workspace_status(
            dataclasses.replace(build, transition=transition),
            dataclasses.replace(job, status=job_status),
        )

    assert workspace_status(None, None) == "pending"
    assert workspace_status(build, None) == "pending"
    expected = {
        ("start", "pending"): "pending",
        ("start", "running"): "starting",
        ("stop", "running"): "stopping",
        ("delete", "running"): "deleting",
        ("start", "succeeded"): "running",
        ("stop", "succeeded"): "stopped",
        ("delete", "succeeded"): "deleted",
        ("start", "failed"): "failed",
        ("stop", "canceling"): "canceling",
        ("delete", "canceled"): "canceled",
    }
    for (transition, job_status), want in expected.items():
        assert status(transition, job_status) == want, (transition, job_status)


async def test_a_failed_build_shows_as_failed_with_its_error(world: World) -> None:
    await world.push(fake_template("broken", fake={"fail": "no capacity", "code": "CAPACITY"}))
    await _create(world, template="broken")
    assert await world.run_one()
    view = await workspace_views.get_workspace(world.admin, await _id(world))
    assert view.status == "failed"
    assert view.job is not None
    assert view.job.error == "no capacity"
    assert view.job.error_code == "CAPACITY"


# --- exec (without an agent) ----------------------------------------------------------


async def test_exec_needs_a_running_workspace_with_a_connected_agent(world: World) -> None:
    gateway = AgentGateway()
    await _create(world)
    with pytest.raises(Conflict) as caught:
        await execs.exec_command(world.admin, gateway, await _id(world), "true")
    assert caught.value.message == "Workspace 'w1' is pending, not running."
    assert await world.run_one()
    with pytest.raises(Unavailable):
        await execs.exec_command(world.admin, gateway, await _id(world), "true")
    with pytest.raises(InvalidInput) as refused:
        await execs.exec_command(world.admin, gateway, await _id(world), "   ")
    assert list(_validations(refused.value)) == ["command"]
    for timeout_ms in (0, execs.MAX_TIMEOUT_MS + 1):
        with pytest.raises(InvalidInput) as refused:
            await execs.exec_command(
                world.admin,
                gateway,
                await _id(world),
                "true",
                timeout_ms=timeout_ms,
            )
        assert list(_validations(refused.value)) == ["timeout_ms"]


# --- visibility -----------------------------------------------------------------------


async def test_members_act_only_on_their_own_workspaces(world: World) -> None:
    started = await _running(world)
    await accounts.create_organization(world.admin, name="other")
    mallory = await world.add_member("mallory", organization="other")
    bob = await world.add_member("bob")
    gateway = AgentGateway()
    theirs = started.workspace.id
    for outsider in (mallory, bob):
        for ref in (str(theirs), "admin/w1"):  # the edge cannot name it ...
            with pytest.raises(NotFound):
                await workspace_id(outsider, ref)
        # ... and a service given its id refuses it as if it did not exist.
        with pytest.raises(NotFound):
            await workspace_views.get_workspace(outsider, theirs)
        for transition in Transition:
            with pytest.raises(NotFound):
                await workspaces.transition_workspace(outsider, theirs, transition)
        with pytest.raises(NotFound):
            await workspaces.cancel_build(outsider, theirs)
        with pytest.raises(NotFound):
            await workspaces.update_ttl(outsider, theirs, HOUR_MS)
        with pytest.raises(NotFound):
            await workspace_views.build_logs(outsider, theirs)
        with pytest.raises(NotFound):
            await execs.exec_command(outsider, gateway, theirs, "true")
        assert await workspace_views.list_workspaces(outsider, all_users=True) == []
    # Mallory is not in the template's organization; Bob is and builds his own.
    with pytest.raises(NotFound):
        await workspaces.create_workspace(mallory, template="basic", name="mine")
    with pytest.raises(NotFound):
        await workspaces.create_workspace(
            mallory, template=str(started.workspace.template_id), name="mine"
        )
    bobs = await workspaces.create_workspace(bob, template="basic", name="w1")
    assert await world.run_one()
    assert await _status(bob, "w1") == "running"
    await workspaces.transition_workspace(bob, await workspace_id(bob, "w1"), Transition.STOP)
    assert await world.run_one()
    assert await _status(bob, "w1") == "stopped"
    # Nothing the outsiders tried changed the admin's workspace.
    assert await _status(world.admin, "w1") == "running"
    assert [b.build_number for b in await world.builds(started.workspace.id)] == [1]
    # The site owner sees everyone's workspaces.
    every = await workspace_views.list_workspaces(world.admin, all_users=True)
    assert {(v.owner_name, v.workspace.name) for v in every} == {("admin", "w1"), ("bob", "w1")}
    assert bobs.workspace.owner_id != started.workspace.owner_id


async def test_bootstrapped_world_has_no_build_rows(world: World) -> None:
    assert await world.count(*BUILD_TABLES) == dict.fromkeys(BUILD_TABLES, 0)
