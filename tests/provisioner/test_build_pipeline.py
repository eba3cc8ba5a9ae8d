"""The build pipeline (DESIGN §6, §10): quotas, agents and tokens, logs, failures, cancel.

Every test runs on SQLite and on Postgres with real workers and the fake backend,
scripted through the template's ``backend.fake`` settings.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from berth.db.engine import Database
from berth.domain.actors import as_system
from berth.domain.enums import JobStatus, Transition
from berth.errors import INSUFFICIENT_QUOTA
from berth.provisioner.backends.fake import FakeOutcome
from berth.records import JobLog
from berth.services import builds, workspace_views, workspaces
from berth.services.workspaces import Started
from tests.support.workspaces import (
    WAIT,
    World,
    fake_template,
    open_world,
    workspace_id,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def world(db: Database, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(db, tmp_path / "state") as w:
        yield w


async def _set_allowance(world: World, allowance: int) -> None:
    """Give the default organization's Everyone group ``allowance`` credits (as the owner)."""
    async with world.db.write(as_system()) as raw:
        store = raw.acting_as(world.admin.actor)
        everyone = await store.get_everyone_group(world.organization_id)
        assert everyone is not None
        assert await store.update_group_quota_allowance(everyone.id, allowance) is not None


async def _start(world: World, name: str, template: str) -> Started:
    """Create a workspace and let a worker take its build to the end.

    A build that cannot be prepared (over quota) is failed as the worker acquires it
    and never handed to the worker, so the worker may have run nothing.
    """
    started = await workspaces.create_workspace(world.admin, template=template, name=name)
    await world.run_one()
    assert JobStatus((await world.job(started.job.id)).status).is_terminal
    return started


async def _logs(world: World, started: Started) -> list[JobLog]:
    async with world.db.read(as_system()) as raw:
        return await raw.list_provisioner_job_logs(started.job.id)


# --- quotas -----------------------------------------------------------------------


async def test_a_start_over_quota_fails_with_insufficient_quota(world: World) -> None:
    await world.push(fake_template("costly", daily_cost=2))
    await _set_allowance(world, 3)
    first = await _start(world, "w1", "costly")
    assert (await world.job(first.job.id)).status == JobStatus.SUCCEEDED

    second = await _start(world, "w2", "costly")
    job = await world.job(second.job.id)
    assert job.status == JobStatus.FAILED
    assert job.error_code == INSUFFICIENT_QUOTA
    assert (
        job.error == "insufficient quota: this workspace costs 2 credits a day, 2 of 3 are in use"
    )
    assert (
        await workspace_views.get_workspace(world.admin, await workspace_id(world.admin, "w2"))
    ).status == "failed"
    # Nothing of the refused build reached the backend or the agents table.
    assert [a.spec.workspace_id for a in world.backend.applies] == [first.workspace.id]
    async with world.db.read(as_system()) as store:
        assert await store.list_workspace_agents_by_job(second.job.id) == []
        assert await store.list_workspace_resources_by_job(second.job.id) == []
    logs = await _logs(world, second)
    assert (logs[-1].stage, logs[-1].level, logs[-1].output) == ("error", "error", job.error)

    # A stopped workspace costs nothing: stopping w1 makes room for w2.
    await workspaces.transition_workspace(
        world.admin, await workspace_id(world.admin, "w1"), Transition.STOP
    )
    assert await world.run_one()
    retry = await workspaces.transition_workspace(
        world.admin, await workspace_id(world.admin, "w2"), Transition.START
    )
    assert await world.run_one()
    assert (await world.job(retry.job.id)).status == JobStatus.SUCCEEDED


async def test_the_budget_is_the_sum_of_the_users_groups(world: World) -> None:
    await world.push(fake_template("costly", daily_cost=2))
    await _set_allowance(world, 3)
    async with world.db.write(as_system()) as raw:
        store = raw.acting_as(world.admin.actor)
        group = await store.insert_group(
            organization_id=world.organization_id, name="builders", quota_allowance=1
        )
        await store.insert_group_member(group_id=group.id, user_id=world.admin_user.id)
    first = await _start(world, "w1", "costly")
    second = await _start(world, "w2", "costly")
    assert (await world.job(first.job.id)).status == JobStatus.SUCCEEDED
    assert (await world.job(second.job.id)).status == JobStatus.SUCCEEDED, "2 + 2 <= 3 + 1"
    third = await _start(world, "w3", "costly")
    assert (await world.job(third.job.id)).error_code == INSUFFICIENT_QUOTA


async def test_without_any_allowance_or_cost_there_is_no_limit(world: World) -> None:
    await world.push(fake_template("costly", daily_cost=50))
    await world.push(fake_template("free", daily_cost=0))
    for i in range(3):  # no group has an allowance: unlimited
        started = await _start(world, f"w{i}", "costly")
        assert (await world.job(started.job.id)).status == JobStatus.SUCCEEDED
    await _set_allowance(world, 1)
    free = await _start(world, "gratis", "free")
    assert (await world.job(free.job.id)).status == JobStatus.SUCCEEDED, "a free start fits"
    costly = await _start(world, "pricey", "costly")
    assert (await world.job(costly.job.id)).error_code == INSUFFICIENT_QUOTA


# --- agents, logs -----------------------------------------------------------------


async def test_a_start_build_mints_one_token_per_agent_and_stores_only_its_hash(
    world: World,
) -> None:
    await world.push(
        fake_template(
            "two-agents",
            agents=[
                {"name": "main", "chat": True, "directory": "~/project"},
                {"name": "sidecar", "display_order": 1, "env": {"ROLE": "helper"}},
            ],
        )
    )
    started = await _start(world, "w1", "two-agents")
    (applied,) = world.backend.applies
    tokens = {a.name: a.token for a in applied.spec.agents}
    assert set(tokens) == {"main", "sidecar"}
    assert len(set(tokens.values())) == 2
    assert applied.spec.agents[1].env == {"ROLE": "helper"}
    view = await workspace_views.get_workspace(world.admin, await workspace_id(world.admin, "w1"))
    assert [a.agent.name for a in view.agents] == ["main", "sidecar"]
    for agent_view in view.agents:
        agent = agent_view.agent
        assert agent.auth_token_hash == hashlib.sha256(tokens[agent.name].encode()).digest()
        assert agent.lifecycle_state == "created"
    assert view.agents[0].agent.chat
    assert view.agents[0].agent.directory == "~/project"
    assert applied.spec.labels == {
        "berth.workspace_id": str(started.workspace.id),
        "berth.build_id": str(started.build.id),
    }
    # A stop build creates no agents.
    stop = await workspaces.transition_workspace(
        world.admin, await workspace_id(world.admin, "w1"), Transition.STOP
    )
    assert await world.run_one()
    assert world.backend.applies[-1].spec.agents == []
    async with world.db.read(as_system()) as raw:
        assert await raw.list_workspace_agents_by_job(stop.job.id) == []


async def test_build_logs_are_stored_in_order(world: World) -> None:
    lines = [f"step {i}" for i in range(12)]
    await world.push(fake_template("chatty", fake={"logs": [*lines, "multi\nline"]}))
    started = await _start(world, "w1", "chatty")
    logs = await _logs(world, started)
    place = (await world.host.places())["fake"]
    assert [(entry.stage, entry.output) for entry in logs] == [
        ("init", "build 1: start w1"),
        ("init", f"this workspace's resources live on {place.label}"),
        ("init", "agents: main"),
        *(("apply", line) for line in lines),
        ("apply", "multi"),
        ("apply", "line"),
    ]
    ids = [entry.id for entry in logs]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    # The workspace's log view pages by id.
    view, tail = await workspace_views.build_logs(
        world.admin, await workspace_id(world.admin, "w1"), after_id=logs[5].id
    )
    assert view.status == "running"
    assert [entry.id for entry in tail] == ids[6:]
    # The stop that follows must run there: its log says so from the moment it is queued.
    stop = await workspaces.transition_workspace(world.admin, started.workspace.id, Transition.STOP)
    (queued,) = await _logs(world, stop)
    assert (queued.stage, queued.output) == (
        "queue",
        f"waiting for a provisioner that serves {place.label}, where this workspace's "
        "resources are",
    )


# --- failures and cancel ------------------------------------------------------------


async def test_a_backend_failure_fails_the_job_with_its_message_and_code(world: World) -> None:
    await world.push(
        fake_template(
            "flaky",
            fake={
                "fail": "no capacity in region eu",
                "code": "NO_CAPACITY",
                "logs": ["looking for a host"],
                "stop": {"fail": "the host is gone"},
            },
        )
    )
    started = await _start(world, "w1", "flaky")
    job = await world.job(started.job.id)
    assert job.status == JobStatus.FAILED
    assert job.error == "no capacity in region eu"
    assert job.error_code == "NO_CAPACITY"
    assert job.completed_at is not None
    logs = [(e.stage, e.level, e.output) for e in await _logs(world, started)]
    assert logs[-2:] == [
        ("apply", "info", "looking for a host"),
        ("error", "error", "no capacity in region eu"),
    ]
    assert (
        await workspace_views.get_workspace(world.admin, await workspace_id(world.admin, "w1"))
    ).status == "failed"
    assert not world.backend.running(started.workspace.id)

    stop = await workspaces.transition_workspace(
        world.admin, await workspace_id(world.admin, "w1"), Transition.STOP
    )
    assert await world.run_one()
    stopped = await world.job(stop.job.id)
    assert (stopped.status, stopped.error, stopped.error_code) == (
        JobStatus.FAILED,
        "the host is gone",
        None,
    )


async def test_a_planned_failure_wins_over_the_template(world: World) -> None:
    await world.push(fake_template("basic"))
    world.backend.plan(FakeOutcome(fail="planned", code="PLANNED", transition=Transition.START))
    started = await _start(world, "w1", "basic")
    job = await world.job(started.job.id)
    assert (job.error, job.error_code) == ("planned", "PLANNED")
    again = await workspaces.transition_workspace(
        world.admin, await workspace_id(world.admin, "w1"), Transition.START
    )
    assert await world.run_one()
    assert (await world.job(again.job.id)).status == JobStatus.SUCCEEDED


async def test_bad_fake_settings_and_missing_backends_fail_the_build(world: World) -> None:
    await world.push(fake_template("odd", fake={"explode": True}))
    await world.push(
        {
            "name": "docker-only",
            "backend": {"type": "docker", "image": "python:3.12-slim"},
            "agents": [{"name": "main", "chat": True}],
        }
    )
    odd = await _start(world, "w1", "odd")
    job = await world.job(odd.job.id)
    assert (job.status, job.error_code) == (JobStatus.FAILED, "FAKE_SETTINGS")
    assert job.error == "unknown fake backend setting(s): explode"
    docker = await _start(world, "w2", "docker-only")
    job = await world.job(docker.job.id)
    assert job.status == JobStatus.FAILED
    assert job.error is not None
    assert "no 'docker' backend is configured" in job.error


async def test_a_job_whose_build_is_gone_fails_cleanly(world: World) -> None:
    async with world.db.write(as_system()) as raw:
        job = await raw.insert_provisioner_job(
            type="workspace_build",
            organization_id=world.organization_id,
            initiator_id=world.admin_user.id,
            input={},
            priority=1,
        )
    assert not await world.run_one(), "a job that cannot be prepared never reaches a worker"
    failed = await world.job(job.id)
    assert failed.status == JobStatus.FAILED
    assert failed.error == "the job's workspace build no longer exists"


async def test_a_result_that_cannot_be_recorded_fails_the_build_and_not_the_worker(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug or a database refusal while recording ends the build now, with an error
    that says so, rather than leaving it running until its heartbeat times out."""
    await world.push(fake_template("basic"))
    real_record = builds.record

    async def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("value too long for type character varying(128)")

    monkeypatch.setattr(builds, "record", refuse)
    refused = await _start(world, "w1", "basic")
    job = await world.job(refused.job.id)
    assert (job.status, job.error) == (
        JobStatus.FAILED,
        "the build's result could not be recorded (see the log)",
    )
    monkeypatch.setattr(builds, "record", real_record)
    again = await workspaces.transition_workspace(
        world.admin, await workspace_id(world.admin, "w1"), Transition.START
    )
    assert await world.run_one()  # the same worker goes on
    assert (await world.job(again.job.id)).status == JobStatus.SUCCEEDED


async def test_a_hanging_build_that_is_canceled_ends_canceled(world: World) -> None:
    await world.push(fake_template("stuck", fake={"hang": "stuck-gate", "logs": ["waiting"]}))
    started = await workspaces.create_workspace(world.admin, template="stuck", name="w1")
    run = asyncio.create_task(world.worker("w-hang").run_once())
    try:
        with anyio.fail_after(WAIT):
            await world.backend.hang_started.wait()
        assert [a.result for a in world.backend.hanging] == ["hanging"]
        assert (await world.job(started.job.id)).status == JobStatus.RUNNING
        canceling = await workspaces.cancel_build(
            world.admin, await workspace_id(world.admin, "w1")
        )
        assert canceling.status == JobStatus.CANCELING
        with anyio.fail_after(WAIT):
            assert await run
    finally:
        run.cancel()
    job = await world.job(started.job.id)
    assert job.status == JobStatus.CANCELED
    assert job.canceled_at is not None
    assert world.backend.hanging == []
    assert [a.result for a in world.backend.applies] == ["canceled"]
    assert not world.backend.running(started.workspace.id)
    # Releasing the gate later changes nothing; a new start runs normally.
    world.backend.release("stuck-gate")
    again = await workspaces.transition_workspace(
        world.admin, await workspace_id(world.admin, "w1"), Transition.START
    )
    assert await world.run_one()
    assert (await world.job(again.job.id)).status == JobStatus.SUCCEEDED
    assert world.backend.running(started.workspace.id)
