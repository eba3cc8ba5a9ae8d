"""The workspaces service (DESIGN §5, §6): start, stop, delete, cancel, status, visibility.

Builds after the first one, their cancellation, the status a workspace shows, exec
without an agent, and who may act on a workspace. Every test runs on SQLite and on
Postgres (the ``db`` fixture), with a real build runner and real workers on the fake
backend; nothing of berth is mocked.
"""

from __future__ import annotations

import asyncio
import dataclasses

import anyio
import pytest

from berth.agentconn import AgentGateway
from berth.domain.enums import JobStatus, Transition
from berth.errors import Conflict, InvalidInput, NotFound, Unavailable
from berth.services import accounts, execs, workspace_views, workspaces
from berth.services.workspace_views import workspace_status
from berth.services.workspaces import Started
from tests.support.workspace_steps import HOUR_MS, create, running, status_of, validations_of, ws_id
from tests.support.workspaces import BUILD_TABLES, WAIT, World, fake_template, workspace_id

pytestmark = pytest.mark.anyio


# --- start, stop, delete ------------------------------------------------------------


async def test_start_on_running_and_stop_on_stopped_make_no_new_build(world: World) -> None:
    started = await running(world)
    assert await status_of(world.admin, "w1") == "running"
    again = await workspaces.transition_workspace(world.admin, await ws_id(world), Transition.START)
    assert not again.new_build
    assert again.build.id == started.build.id
    assert (await world.count())["provisioner_jobs"] == 1

    stop = await workspaces.transition_workspace(world.admin, await ws_id(world), Transition.STOP)
    assert stop.new_build
    assert stop.build.build_number == 2
    assert stop.build.transition == "stop"
    assert stop.build.daily_cost == 0
    assert await status_of(world.admin, "w1") == "pending"
    assert await world.run_one()
    assert await status_of(world.admin, "w1") == "stopped"
    assert not world.backend.running(started.workspace.id)
    stop_again = await workspaces.transition_workspace(
        world.admin, await ws_id(world), Transition.STOP
    )
    assert not stop_again.new_build
    assert stop_again.build.id == stop.build.id
    assert (await world.count())["provisioner_jobs"] == 2

    restart = await workspaces.transition_workspace(
        world.admin, await ws_id(world), Transition.START
    )
    assert restart.new_build
    assert restart.build.build_number == 3
    assert await world.run_one()
    assert await status_of(world.admin, "w1") == "running"
    assert world.backend.running(started.workspace.id)
    assert [b.transition for b in await world.builds(started.workspace.id)] == [
        "start",
        "stop",
        "start",
    ]


async def test_a_workspace_already_building_refuses_another_build(world: World) -> None:
    started = await create(world)
    before = await world.count()
    for transition in Transition:
        with pytest.raises(Conflict) as caught:
            await workspaces.transition_workspace(world.admin, await ws_id(world), transition)
        assert caught.value.message == "Workspace 'w1' is already building."
        assert caught.value.detail is not None
        assert "pending" in caught.value.detail
    assert await world.count() == before, "a refused build leaves no job behind"
    assert await world.run_one()
    assert not await world.run_one(), "no stray job was queued"
    stopped = await workspaces.transition_workspace(
        world.admin, await ws_id(world), Transition.STOP
    )
    assert stopped.build.build_number == 2
    assert (await world.job(started.job.id)).status == JobStatus.SUCCEEDED


async def test_concurrent_stops_queue_one_build(world: World) -> None:
    w1 = (await running(world)).workspace.id
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
    started = await running(world)
    deleting = await workspaces.transition_workspace(
        world.admin, await ws_id(world), Transition.DELETE
    )
    assert deleting.new_build
    assert deleting.build.transition == "delete"
    assert not (await world.workspace(started.workspace.id)).deleted, "not before the job ran"
    assert await status_of(world.admin, "w1") == "pending"
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
    reused = await create(world)
    assert reused.workspace.id != started.workspace.id


async def test_a_failed_delete_keeps_the_workspace_and_can_be_retried(world: World) -> None:
    await world.push(fake_template("sticky", fake={"delete": {"fail": "volume busy"}}))
    started = await running(world, template="sticky")
    await workspaces.transition_workspace(world.admin, await ws_id(world), Transition.DELETE)
    assert await world.run_one()
    assert not (await world.workspace(started.workspace.id)).deleted
    assert await status_of(world.admin, "w1") == "failed"
    retry = await workspaces.transition_workspace(
        world.admin, await ws_id(world), Transition.DELETE
    )
    assert retry.new_build
    assert retry.build.build_number == 3


# --- cancel -----------------------------------------------------------------------


async def test_cancel_of_a_pending_build_cancels_it_at_once(world: World) -> None:
    started = await create(world)
    job = await workspaces.cancel_build(world.admin, await ws_id(world))
    assert job.id == started.job.id
    assert job.status == JobStatus.CANCELED
    assert job.canceled_at is not None
    assert job.completed_at is not None
    assert await status_of(world.admin, "w1") == "canceled"
    assert not await world.run_one(), "a canceled job is never picked up"
    assert world.backend.applies == []
    with pytest.raises(Conflict):
        await workspaces.cancel_build(world.admin, await ws_id(world))
    again = await workspaces.transition_workspace(world.admin, await ws_id(world), Transition.START)
    assert again.new_build
    assert again.build.build_number == 2


async def test_cancel_of_a_running_build_is_finished_by_the_worker(world: World) -> None:
    await world.push(fake_template("slow", fake={"hang": True}))
    started = await create(world, template="slow")
    worker = asyncio.create_task(world.worker("w-cancel").run_once())
    try:
        with anyio.fail_after(WAIT):
            await world.backend.hang_started.wait()
        assert await status_of(world.admin, "w1") == "starting"
        job = await workspaces.cancel_build(world.admin, await ws_id(world))
        assert job.status == JobStatus.CANCELING
        with anyio.fail_after(WAIT):
            assert await worker
    finally:
        worker.cancel()
    final = await world.job(started.job.id)
    assert final.status == JobStatus.CANCELED
    assert final.error == "the build was canceled"
    assert [a.result for a in world.backend.applies] == ["canceled"]
    assert await status_of(world.admin, "w1") == "canceled"
    with pytest.raises(Conflict):
        await workspaces.cancel_build(world.admin, await ws_id(world))


# --- status -------------------------------------------------------------------------


async def test_workspace_status_follows_the_latest_build_and_job(world: World) -> None:
    started = await create(world)
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
    await create(world, template="broken")
    assert await world.run_one()
    view = await workspace_views.get_workspace(world.admin, await ws_id(world))
    assert view.status == "failed"
    assert view.job is not None
    assert view.job.error == "no capacity"
    assert view.job.error_code == "CAPACITY"


# --- exec (without an agent) ----------------------------------------------------------


async def test_exec_needs_a_running_workspace_with_a_connected_agent(world: World) -> None:
    gateway = AgentGateway()
    await create(world)
    with pytest.raises(Conflict) as caught:
        await execs.exec_command(world.admin, gateway, await ws_id(world), "true")
    assert caught.value.message == "Workspace 'w1' is pending, not running."
    assert await world.run_one()
    with pytest.raises(Unavailable):
        await execs.exec_command(world.admin, gateway, await ws_id(world), "true")
    with pytest.raises(InvalidInput) as refused:
        await execs.exec_command(world.admin, gateway, await ws_id(world), "   ")
    assert list(validations_of(refused.value)) == ["command"]
    for timeout_ms in (0, execs.MAX_TIMEOUT_MS + 1):
        with pytest.raises(InvalidInput) as refused:
            await execs.exec_command(
                world.admin,
                gateway,
                await ws_id(world),
                "true",
                timeout_ms=timeout_ms,
            )
        assert list(validations_of(refused.value)) == ["timeout_ms"]


# --- visibility -----------------------------------------------------------------------


async def test_members_act_only_on_their_own_workspaces(world: World) -> None:
    started = await running(world)
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
    assert await status_of(bob, "w1") == "running"
    await workspaces.transition_workspace(bob, await workspace_id(bob, "w1"), Transition.STOP)
    assert await world.run_one()
    assert await status_of(bob, "w1") == "stopped"
    # Nothing the outsiders tried changed the admin's workspace.
    assert await status_of(world.admin, "w1") == "running"
    assert [b.build_number for b in await world.builds(started.workspace.id)] == [1]
    # The site owner sees everyone's workspaces.
    every = await workspace_views.list_workspaces(world.admin, all_users=True)
    assert {(v.owner_name, v.workspace.name) for v in every} == {("admin", "w1"), ("bob", "w1")}
    assert bobs.workspace.owner_id != started.workspace.owner_id


async def test_bootstrapped_world_has_no_build_rows(world: World) -> None:
    assert await world.count(*BUILD_TABLES) == dict.fromkeys(BUILD_TABLES, 0)
