"""Host affinity (DESIGN §6): a workspace's builds run only where its resources are.

Two hosts share one database, as two servers (or a server and a ``berth provisioner``)
on one Postgres do: host A and host B, each with its own state directory, hence its own
place. Their workers are real :class:`~berth.provisioner.worker.Worker` s on the
server's job source; the backend is the fake one (one instance for both hosts, so only
the routing keeps B off A's workspaces), and in the last test the real local one
(bubblewrap), where a delete on the wrong host used to report success while the sandbox
ran on. Every test runs on SQLite and on Postgres.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from berth.clock import FakeClock
from berth.db.engine import Database
from berth.domain.actors import as_provisioner, as_system
from berth.domain.enums import JobStatus, Transition
from berth.provisioner.backends.fake import FakeBackend
from berth.provisioner.backends.local import LocalBackend
from berth.provisioner.jobs import Host
from berth.provisioner.spec import Place
from berth.provisioner.worker import Worker
from berth.records import ProvisionerJob, Workspace
from berth.services import builds, placement, workspace_views, workspaces
from berth.services.workspaces import Started
from tests.support.backends import LOCAL_TEMPLATE, LogLines, write_stand_in_agent
from tests.support.workspaces import WAIT, World, fake_template, open_world

pytestmark = pytest.mark.anyio


@dataclass
class Hosts:
    world: World
    a: Host
    b: Host

    async def place(self, host: Host, backend: str = "fake") -> Place:
        return (await host.places())[backend]

    def worker(self, host: Host, name: str) -> Worker:
        return Worker(self.world.jobs, host, worker_id=name)

    async def run(self, host: Host, name: str) -> bool:
        """One job on ``host``, if one it can reach is pending now."""
        with anyio.fail_after(WAIT):
            return await self.worker(host, name).run_once(wait=0)

    async def create(self, name: str, template: str = "basic") -> Started:
        return await workspaces.create_workspace(self.world.admin, template=template, name=name)

    async def transition(self, workspace_id: uuid.UUID, transition: Transition) -> Started:
        return await workspaces.transition_workspace(self.world.admin, workspace_id, transition)

    async def job(self, started: Started) -> ProvisionerJob:
        async with self.world.db.read(as_system()) as raw:
            job = await raw.get_provisioner_job_by_id(started.job.id)
        assert job is not None
        return job

    async def workspace(self, workspace_id: uuid.UUID) -> Workspace:
        async with self.world.db.read(as_system()) as raw:
            found = await raw.get_workspace_by_id(workspace_id)
        assert found is not None
        return found

    async def log(self, started: Started) -> list[tuple[str, str]]:
        async with self.world.db.read(as_system()) as raw:
            lines = await raw.list_provisioner_job_logs(started.job.id)
        return [(line.stage, line.output) for line in lines]


def _waiting(label: str) -> tuple[str, str]:
    line = f"waiting for a provisioner that serves {label}, where this workspace's resources are"
    return ("queue", line)


@pytest.fixture
async def hosts(db: Database, tmp_path: Path) -> AsyncIterator[Hosts]:
    async with open_world(db, tmp_path / "a") as world:
        await world.push(fake_template("basic"))
        b = Host({"fake": world.backend}, world.host.agent_zipapp, tmp_path / "b")
        yield Hosts(world, world.host, b)


# --- the store ----------------------------------------------------------------------


async def test_a_job_requiring_a_place_goes_only_to_a_worker_serving_it(hosts: Hosts) -> None:
    world = hosts.world

    async def insert(required: str | None) -> ProvisionerJob:
        async with world.db.write(as_system()) as raw:
            return await raw.insert_provisioner_job(
                type="workspace_build",
                organization_id=world.organization_id,
                initiator_id=world.admin_user.id,
                input={},
                priority=1,
                required_place=required,
            )

    async def acquire(worker: str, *places: str) -> uuid.UUID | None:
        async with world.db.write(as_system()) as raw:
            store = raw.acting_as(as_provisioner())
            job = await store.acquire_provisioner_job(worker, places=places)
        return job and job.id

    on_a = await insert("fake:aaaa")
    anywhere = await insert(None)
    # The oldest job is A's: a worker elsewhere passes it by instead of waiting behind it.
    assert await acquire("b", "fake:bbbb") == anywhere.id
    assert await acquire("b", "fake:bbbb") is None
    assert await acquire("old") is None  # a worker naming no place: only unbound jobs
    assert await acquire("a", "docker:cccc", "fake:aaaa") == on_a.id


async def test_a_local_place_is_this_machine_and_the_state_dir(tmp_path: Path) -> None:
    backend = LocalBackend()
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    here = await backend.place(tmp_path / "real")
    assert here.id.startswith("local:")
    assert len(here.id) == len("local:") + 32
    assert here.label == f"{socket.gethostname()}:{tmp_path / 'real'}"
    assert await LocalBackend().place(tmp_path / "link") == here  # the same directory
    assert (await backend.place(tmp_path / "other")).id != here.id
    assert (await FakeBackend().place(tmp_path / "real")).id != here.id  # another backend
    named = await FakeBackend(place_name="x").place(tmp_path / "real")
    assert named == await FakeBackend(place_name="x").place(tmp_path / "other")


# --- routing by the services ----------------------------------------------------------


async def test_the_builds_of_a_workspace_built_on_a_run_only_on_a(hosts: Hosts) -> None:
    """Stop, start and delete of A's workspace wait (and say so) while only B runs."""
    a_place, b_place = await hosts.place(hosts.a), await hosts.place(hosts.b)
    assert a_place.id != b_place.id
    created = await hosts.create("w1")
    assert await hosts.run(hosts.a, "a")
    ws = await hosts.workspace(created.workspace.id)
    assert (ws.place, ws.place_label) == (a_place.id, a_place.label)
    view = await workspace_views.get_workspace(hosts.world.admin, ws.id)
    assert (view.status, view.host, view.waiting_for_host) == ("running", a_place.label, None)

    for transition, done in (
        (Transition.STOP, "stopped"),
        (Transition.START, "running"),
        (Transition.DELETE, "deleted"),
    ):
        started = await hosts.transition(ws.id, transition)
        assert started.job.required_place == a_place.id
        assert not await hosts.run(hosts.b, "b"), f"B took the {transition} of A's workspace"
        assert (await hosts.job(started)).status == JobStatus.PENDING
        assert await hosts.log(started) == [_waiting(a_place.label)]
        if transition is not Transition.DELETE:
            view = await workspace_views.get_workspace(hosts.world.admin, ws.id)
            assert (view.status, view.waiting_for_host) == ("pending", a_place.label)
        assert await hosts.run(hosts.a, "a")
        job = await hosts.job(started)
        assert (job.status, job.worker_id) == (JobStatus.SUCCEEDED, "a")
        if transition is not Transition.DELETE:
            view = await workspace_views.get_workspace(hosts.world.admin, ws.id)
            assert (view.status, view.waiting_for_host) == (done, None)
    assert not hosts.world.backend.running(ws.id)


async def test_a_waiting_job_holds_up_no_other_workspace(hosts: Hosts) -> None:
    first = await hosts.create("w1")
    assert await hosts.run(hosts.a, "a")
    stop = await hosts.transition(first.workspace.id, Transition.STOP)
    other = await hosts.create("w2")  # newer than the stop, tied to no place yet
    assert await hosts.run(hosts.b, "b")
    assert (await hosts.job(other)).status == JobStatus.SUCCEEDED
    assert (await hosts.workspace(other.workspace.id)).place == (await hosts.place(hosts.b)).id
    assert (await hosts.job(stop)).status == JobStatus.PENDING
    assert not await hosts.run(hosts.b, "b")


class _Placeless(FakeBackend):
    """A fake backend that cannot tell where it builds (an engine that does not answer)."""

    async def place(self, state_dir: Path) -> None:  # type: ignore[override]
        return None


async def test_a_worker_that_cannot_tell_its_place_binds_no_workspace(hosts: Hosts) -> None:
    lost = Host({"fake": _Placeless()}, hosts.a.agent_zipapp, hosts.a.state_dir)
    created = await hosts.create("w1")
    assert not await hosts.run(lost, "lost")  # failed at the source, never handed out
    job = await hosts.job(created)
    assert (job.status, job.error_code) == (JobStatus.FAILED, placement.PLACE_UNKNOWN)
    assert (await hosts.workspace(created.workspace.id)).place is None


async def test_a_worker_that_names_no_places_builds_only_unbound_workspaces(
    hosts: Hosts,
) -> None:
    """An older worker (``places`` absent) keeps building workspaces tied to no place."""
    created = await hosts.create("w1")
    world = hosts.world
    with anyio.fail_after(WAIT):
        job = await world.jobs.acquire("old", wait=0, backends=["fake"])
    assert job is not None
    assert job.spec.workspace_id == created.workspace.id
    assert (await hosts.workspace(created.workspace.id)).place is None
    await world.finish(job.job_id, JobStatus.FAILED, error="given up")
    bound = await hosts.create("w2")
    assert await hosts.run(hosts.a, "a")
    await hosts.transition(bound.workspace.id, Transition.STOP)
    with anyio.fail_after(WAIT):
        assert await world.jobs.acquire("old", wait=0, backends=["fake"]) is None


async def test_the_reaper_stops_a_dead_build_only_where_it_can_reach(
    hosts: Hosts, clock: FakeClock
) -> None:
    """A worker on A died mid-start, leaving its sandbox up: a server on B reaps the job
    but leaves the sandbox (it cannot reach it); one on A stops it."""
    world = hosts.world
    stale = dt.timedelta(seconds=30)
    left: list[uuid.UUID] = []
    for name in ("w1", "w2"):
        created = await hosts.create(name)
        with anyio.fail_after(WAIT):
            job = await world.jobs.acquire(
                f"dead-{name}", wait=0, backends=["fake"], places=await hosts.a.places()
            )
        assert job is not None
        await world.backend.apply(hosts.a.spec(job), Transition.START, LogLines())
        assert world.backend.running(created.workspace.id)
        left.append(created.workspace.id)
        clock.advance(stale * 2)
        reaper = hosts.b if name == "w1" else hosts.a
        reaped = await builds.reap(
            world.admin, reaper, stale_after=stale, server_url="http://127.0.0.1:9"
        )
        assert reaped == 1
        assert (await hosts.job(created)).status == JobStatus.FAILED
    w1, w2 = left
    assert world.backend.running(w1)
    assert not world.backend.running(w2)
    async with world.db.read(as_system()) as raw:
        build = await raw.get_latest_workspace_build_by_workspace_id(w1)
        assert build is not None
        lines = [line.output for line in await raw.list_provisioner_job_logs(build.job_id)]
    label = (await hosts.place(hosts.a)).label
    reach = f"reconcile: the sandbox is on {label}, out of this server's reach"
    assert any(line.startswith(reach) for line in lines), lines


# --- a real sandbox -----------------------------------------------------------------------


@pytest.mark.bwrap
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not on PATH")
async def test_a_delete_on_another_host_no_longer_leaves_the_sandbox_running(
    db: Database, tmp_path: Path
) -> None:
    """The bug: a delete through a second server (its own data dir, the same database)
    said "deleted" while the bwrap sandbox ran on and its home stayed. Now it waits for
    a worker on the sandbox's host, which stops it and removes the home."""
    zipapp = write_stand_in_agent(tmp_path)
    backend = LocalBackend(stop_timeout=2.0)
    a = Host({"local": backend}, zipapp, tmp_path / "a")
    b = Host({"local": LocalBackend(stop_timeout=2.0)}, zipapp, tmp_path / "b")
    doc: dict[str, Any] = {**LOCAL_TEMPLATE, "backend": {"type": "local", "isolation": "bwrap"}}
    async with open_world(db, tmp_path / "unused") as world:
        await world.push(doc)
        hosts = Hosts(world, a, b)
        try:
            created = await hosts.create("box", template="sandbox")
            assert await hosts.run(a, "a"), "nothing to build"
            assert (await hosts.job(created)).status == JobStatus.SUCCEEDED
            handle = _sandbox_handle(a.state_dir, created.workspace.id)
            assert (await backend.inspect(handle)).running
            home = a.state_dir / "homes" / str(created.workspace.id)
            assert home.is_dir()

            deleting = await hosts.transition(created.workspace.id, Transition.DELETE)
            assert not await hosts.run(b, "b")
            label = (await hosts.place(a, "local")).label
            assert await hosts.log(deleting) == [_waiting(label)]
            assert (await hosts.job(deleting)).status == JobStatus.PENDING
            assert (await backend.inspect(handle)).running

            assert await hosts.run(a, "a")
            job = await hosts.job(deleting)
            assert (job.status, job.worker_id) == (JobStatus.SUCCEEDED, "a")
            assert not (await backend.inspect(handle)).running
            assert not home.exists()
        finally:
            await _destroy_all(backend, a.state_dir)


def _sandbox_handle(state_dir: Path, workspace_id: uuid.UUID) -> dict[str, Any]:
    state = state_dir / "sandboxes" / str(workspace_id) / "sandbox.json"
    data: dict[str, Any] = json.loads(state.read_text())
    return data


async def _destroy_all(backend: LocalBackend, state_dir: Path) -> None:
    for state in (state_dir / "sandboxes").glob("*/sandbox.json"):
        await backend.destroy(json.loads(state.read_text()))
