"""``berth provisioner`` (DESIGN §1): standalone workers building over the HTTP API.

A real server runs with no built-in workers (``provisioner_workers=0``); a real
:class:`~berth.provisioner.remote.RemoteProvisioner` runs as an asyncio task in the
test's event loop, with a :class:`~berth.provisioner.backends.fake.FakeBackend`, and
talks to the server over HTTP with a provisioner key. Waits follow the workspace's
Server-Sent Events and are bounded by ``WAIT``. Every test runs on SQLite and on
Postgres (``BERTH_TEST_DATABASE_URL``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anyio
import httpx
import pytest
import yaml
from httpx_sse import aconnect_sse

from berth.api.server import running_server
from berth.provisioner.backends.fake import FakeBackend
from berth.provisioner.jobs import Host
from berth.provisioner.remote import RemoteProvisioner
from berth.provisioner.remote_client import KeyRefused, ProvisionerAPI
from berth.provisioner.worker import Worker, WorkerTiming
from berth.settings import Settings

pytestmark = pytest.mark.anyio

API = "/api/v1"
WAIT = 20.0
"""Seconds any single wait may take before the test fails."""


@dataclass
class Server:
    url: str
    admin_token: str


@dataclass
class Remote:
    """A provisioner key and a remote provisioner running with it."""

    key: str
    key_id: str
    backend: FakeBackend
    provisioner: RemoteProvisioner


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    settings = Settings(
        data_dir=tmp_path / "server",
        database_url=database_url,
        address="127.0.0.1:0",
        provisioner_workers=0,
        install_examples=False,
    )
    with running_server(settings) as running:
        assert running.runtime.bootstrapped is not None
        yield Server(running.url, running.runtime.bootstrapped.token)


def _client(server: Server, token: str | None) -> httpx.AsyncClient:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.AsyncClient(base_url=server.url + API, headers=headers, timeout=WAIT)


@pytest.fixture
async def admin(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(server, server.admin_token) as client:
        yield client


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return cast("dict[str, Any]", response.json())


async def new_key(admin: httpx.AsyncClient, name: str, **extra: str) -> dict[str, Any]:
    return ok(await admin.post("/provisioner-keys", json={"name": name, **extra}), 201)


@pytest.fixture
async def remote(server: Server, admin: httpx.AsyncClient, tmp_path: Path) -> AsyncIterator[Remote]:
    created = await new_key(admin, "builder")
    backend = FakeBackend()
    api = ProvisionerAPI(server.url, created["key"])
    provisioner = RemoteProvisioner(
        api,
        {"fake": backend},
        data_dir=tmp_path / "provisioner",
        workers=2,
        timing=WorkerTiming(acquire_wait=10.0, heartbeat_wait=5.0),
    )
    with anyio.fail_after(WAIT):
        await provisioner.connect()
    task = asyncio.create_task(provisioner.run())
    try:
        yield Remote(created["key"], created["id"], backend, provisioner)
    finally:
        task.cancel()
        with anyio.fail_after(WAIT):
            await asyncio.wait([task])
        assert task.cancelled(), task.exception()
        await api.aclose()


async def push(admin: httpx.AsyncClient, name: str, **fields: Any) -> None:
    doc: dict[str, Any] = {
        "name": name,
        "description": "A template on the fake backend.",
        "default_ttl": "2h",
        "daily_cost": 1,
        "backend": {"type": "fake"},
        "agents": [{"name": "main", "chat": True}],
    }
    doc.update(fields)
    files = {"template.yaml": yaml.safe_dump(doc)}
    response = await admin.post("/templates", json={"files": files})
    assert response.status_code in (200, 201), response.text


async def create(admin: httpx.AsyncClient, template: str, name: str) -> dict[str, Any]:
    return ok(await admin.post("/workspaces", json={"template": template, "name": name}), 201)


async def wait_status(admin: httpx.AsyncClient, workspace: str, *statuses: str) -> dict[str, Any]:
    """The workspace once its status is one of ``statuses`` (followed over SSE)."""
    seen: list[str] = []
    with anyio.fail_after(WAIT):
        async with aconnect_sse(admin, "GET", f"/workspaces/{workspace}/watch") as source:
            async for event in source.aiter_sse():
                if event.event != "workspace":
                    continue
                data = cast("dict[str, Any]", json.loads(event.data))
                seen.append(data["status"])
                if data["status"] in statuses:
                    return data
    raise AssertionError(f"{workspace} never reached {statuses}; saw {seen}")


def job_of(workspace: dict[str, Any]) -> dict[str, Any]:
    return cast("dict[str, Any]", workspace["latest_build"]["job"])


# --- builds -----------------------------------------------------------------------------


async def test_a_remote_worker_builds_a_workspace(admin: httpx.AsyncClient, remote: Remote) -> None:
    await push(admin, "basic", backend={"type": "fake", "fake": {"logs": ["hello from afar"]}})
    await create(admin, "basic", "w1")
    running = await wait_status(admin, "w1", "running", "failed", "canceled")
    assert running["status"] == "running", job_of(running)
    assert running["deadline"] is not None  # set on start, as the built-in runner does
    [applied] = remote.backend.applies
    assert applied.spec.workspace_name == "w1"
    assert [a.name for a in applied.spec.agents] == ["main"]
    assert applied.spec.agents[0].token  # a fresh agent token travelled with the job
    assert applied.spec.agent_zipapp.is_file()
    assert applied.spec.agent_zipapp.parent == remote.provisioner.data_dir / "agent"
    assert applied.spec.state_dir == remote.provisioner.data_dir / "workspaces"
    logs = [entry["output"] for entry in (await admin.get("/workspaces/w1/logs")).json()]
    assert "build 1: start w1" in logs
    assert "agents: main" in logs
    assert "hello from afar" in logs

    ok(await admin.post("/workspaces/w1/builds", json={"transition": "stop"}), 201)
    stopped = await wait_status(admin, "w1", "stopped", "failed")
    assert stopped["status"] == "stopped", job_of(stopped)
    assert stopped["deadline"] is None
    assert not remote.backend.running(applied.spec.workspace_id)


async def test_a_failing_build_fails_the_job_with_its_message_and_code(
    admin: httpx.AsyncClient, remote: Remote
) -> None:
    await push(
        admin, "broken", backend={"type": "fake", "fake": {"fail": "no capacity", "code": "FULL"}}
    )
    await create(admin, "broken", "w2")
    failed = await wait_status(admin, "w2", "failed", "running")
    job = job_of(failed)
    assert (failed["status"], job["error"], job["error_code"]) == ("failed", "no capacity", "FULL")
    logs = (await admin.get("/workspaces/w2/logs")).json()
    assert {"stage": "error", "level": "error", "output": "no capacity"}.items() <= logs[-1].items()


async def test_canceling_a_hanging_build_cancels_the_remote_apply(
    admin: httpx.AsyncClient, remote: Remote
) -> None:
    await push(admin, "slow", backend={"type": "fake", "fake": {"hang": True}})
    await create(admin, "slow", "w3")
    with anyio.fail_after(WAIT):
        await remote.backend.hang_started.wait()
    ok(await admin.post("/workspaces/w3/cancel"))
    canceled = await wait_status(admin, "w3", "canceled", "failed", "running")
    assert canceled["status"] == "canceled", job_of(canceled)
    assert job_of(canceled)["error"] == "the build was canceled"
    [applied] = remote.backend.applies
    assert applied.result == "canceled"


async def test_insufficient_quota_fails_on_the_server_before_the_worker_applies(
    admin: httpx.AsyncClient, remote: Remote
) -> None:
    ok(await admin.patch("/groups/Everyone", json={"quota_allowance": 1}))
    await push(admin, "costly", daily_cost=5)
    await create(admin, "costly", "w4")
    failed = await wait_status(admin, "w4", "failed", "running")
    job = job_of(failed)
    assert job["error_code"] == "INSUFFICIENT_QUOTA"
    assert job["error"].startswith("insufficient quota: this workspace costs 5 credits a day")
    assert remote.backend.applies == []


async def test_a_backend_the_provisioner_lacks_fails_before_it_is_handed_out(
    admin: httpx.AsyncClient, remote: Remote
) -> None:
    await push(admin, "boxed", backend={"type": "docker", "image": "python:3.12-slim"})
    await create(admin, "boxed", "w5")
    failed = await wait_status(admin, "w5", "failed", "running")
    assert job_of(failed)["error"] == "no 'docker' backend is configured on this provisioner"
    assert remote.backend.applies == []


async def test_a_key_builds_only_its_organizations_jobs(
    server: Server, admin: httpx.AsyncClient, tmp_path: Path
) -> None:
    ok(await admin.post("/organizations", json={"name": "elsewhere"}), 201)
    other = await new_key(admin, "other", organization="elsewhere")
    await push(admin, "basic")
    await create(admin, "basic", "w6")
    backend = FakeBackend()
    api = ProvisionerAPI(server.url, other["key"])
    try:
        worker = Worker(api, Host({"fake": backend}, tmp_path / "a.pyz", tmp_path))
        with anyio.fail_after(WAIT):
            assert await worker.run_once(wait=0) is False
    finally:
        await api.aclose()
    assert backend.applies == []
    assert ok(await admin.get("/workspaces/w6"))["status"] == "pending"


async def test_a_workspace_built_by_one_provisioner_waits_for_it(
    server: Server, admin: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Host affinity over the wire: a provisioner elsewhere (another state directory)
    never takes the stop of a workspace another one built; the workspace says whom it
    waits for, until that one takes it."""
    created = await new_key(admin, "pair")
    await push(admin, "basic")
    api = ProvisionerAPI(server.url, created["key"])
    backend = FakeBackend()
    a = Host({"fake": backend}, tmp_path / "a.pyz", tmp_path / "a")
    b = Host({"fake": backend}, tmp_path / "a.pyz", tmp_path / "b")
    label = (await a.places())["fake"].label
    try:
        with anyio.fail_after(WAIT):
            await create(admin, "basic", "w8")
            assert await Worker(api, a, worker_id="a").run_once(wait=0)
            running = ok(await admin.get("/workspaces/w8"))
            assert (running["status"], running["host"]) == ("running", label)
            assert running["waiting_for_host"] is None
            ok(await admin.post("/workspaces/w8/builds", json={"transition": "stop"}), 201)
            assert not await Worker(api, b, worker_id="b").run_once(wait=0)
            waiting = ok(await admin.get("/workspaces/w8"))
            assert (waiting["status"], waiting["waiting_for_host"]) == ("pending", label)
            assert await Worker(api, a, worker_id="a").run_once(wait=0)
        stopped = ok(await admin.get("/workspaces/w8"))
        assert (stopped["status"], stopped["waiting_for_host"]) == ("stopped", None)
    finally:
        await api.aclose()


@pytest.mark.parametrize(
    "places",
    [
        [{"backend": "fake", "id": "fake:1"}, {"backend": "fake", "id": "fake:2"}],
        [{"backend": "fake", "id": "has spaces"}],
        [{"backend": "fake", "id": "x" * 129}],
        [{"backend": "", "id": "fake:1"}],
        [{"backend": "fake"}],
        [{"backend": "fake", "id": "fake:1", "label": "x" * 513}],
        [{"backend": "fake", "id": "fake:1", "extra": 1}],
        "fake:1",
        [{"backend": "fake", "id": f"fake:{i}"} for i in range(33)],
    ],
)
async def test_bad_places_are_a_clear_422(
    server: Server, admin: httpx.AsyncClient, places: Any
) -> None:
    created = await new_key(admin, "picky")
    body = {"worker_id": "w", "wait_seconds": 0, "backends": ["fake"], "places": places}
    async with _client(server, created["key"]) as prov:
        refused = await prov.post("/provisioner/jobs/acquire", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["message"]


# --- keys and their boundaries ----------------------------------------------------------


async def test_keys_are_listed_without_secrets_and_deleted_by_name(
    admin: httpx.AsyncClient,
) -> None:
    created = await new_key(admin, "ci")
    assert set(created) == {"id", "name", "organization_id", "created_at", "key"}
    assert created["key"].startswith(f"berthprov_{created['id']}_")
    listed = (await admin.get("/provisioner-keys")).json()
    assert listed == [{k: v for k, v in created.items() if k != "key"}]
    taken = await admin.post("/provisioner-keys", json={"name": "ci"})
    assert taken.status_code == 409
    assert (await admin.delete("/provisioner-keys/ci")).status_code == 204
    assert (await admin.get("/provisioner-keys")).json() == []
    assert (await admin.delete("/provisioner-keys/ci")).status_code == 404


async def test_only_the_site_owner_manages_keys(server: Server, admin: httpx.AsyncClient) -> None:
    ok(await admin.post("/users", json={"username": "bob"}), 201)
    token = ok(await admin.post("/users/bob/tokens", json={"name": "t"}), 201)["token"]
    await new_key(admin, "owned")
    async with _client(server, token) as bob:
        assert (await bob.post("/provisioner-keys", json={"name": "mine"})).status_code == 404
        assert (await bob.get("/provisioner-keys")).json() == []
        assert (await bob.delete("/provisioner-keys/owned")).status_code == 404


async def test_a_provisioner_key_opens_only_the_job_endpoints(
    server: Server, admin: httpx.AsyncClient
) -> None:
    created = await new_key(admin, "edge")
    body = {"worker_id": "w", "wait_seconds": 0}
    async with _client(server, created["key"]) as prov:
        assert ok(await prov.get("/provisioner/key"))["id"] == created["id"]
        assert (await prov.post("/provisioner/jobs/acquire", json=body)).status_code == 204
        refused = await prov.get("/users/me")
        assert refused.status_code == 401
        assert (await prov.get("/workspaces")).status_code == 401
    user = await admin.post("/provisioner/jobs/acquire", json=body)
    assert user.status_code == 401
    assert user.json()["message"] == "Invalid provisioner key."
    async with _client(server, None) as anonymous:
        assert (await anonymous.post("/provisioner/jobs/acquire", json=body)).status_code == 401
    assert (await admin.delete(f"/provisioner-keys/{created['id']}")).status_code == 204
    async with _client(server, created["key"]) as prov:
        assert (await prov.post("/provisioner/jobs/acquire", json=body)).status_code == 401


async def test_a_deleted_key_stops_the_remote_provisioner(
    server: Server, admin: httpx.AsyncClient, tmp_path: Path
) -> None:
    created = await new_key(admin, "doomed")
    api = ProvisionerAPI(server.url, created["key"])
    try:
        provisioner = RemoteProvisioner(
            api,
            {"fake": FakeBackend()},
            data_dir=tmp_path / "p",
            workers=1,
            timing=WorkerTiming(acquire_wait=0.0),
        )
        with anyio.fail_after(WAIT):
            await provisioner.connect()
        assert (await admin.delete("/provisioner-keys/doomed")).status_code == 204
        with anyio.fail_after(WAIT), pytest.raises(KeyRefused, match="refused the provisioner key"):
            await provisioner.run()
    finally:
        await api.aclose()


async def test_job_endpoints_refuse_jobs_the_worker_does_not_own(
    server: Server, admin: httpx.AsyncClient
) -> None:
    created = await new_key(admin, "owner-check")
    await push(admin, "slow", backend={"type": "fake", "fake": {"hang": True}})
    await create(admin, "slow", "w7")
    async with _client(server, created["key"]) as prov:
        acquire = {"worker_id": "w-a", "wait_seconds": 5}
        job = ok(await prov.post("/provisioner/jobs/acquire", json=acquire))
        assert job["transition"] == "start"
        assert job["spec"]["template"]["backend"]["type"] == "fake"
        assert job["spec"]["agents"][0]["token"]
        path = f"/provisioner/jobs/{job['job_id']}"
        beat = await prov.post(f"{path}/heartbeat", json={"worker_id": "w-a"})
        assert ok(beat) == {"status": "running"}
        other = await prov.post(f"{path}/heartbeat", json={"worker_id": "w-b"})
        assert other.status_code == 409
        stolen = await prov.post(f"{path}/complete", json={"worker_id": "w-b", "status": "failed"})
        assert stolen.status_code == 409
        missing = f"/provisioner/jobs/{'0' * 8}-0000-4000-8000-{'0' * 12}/heartbeat"
        assert (await prov.post(missing, json={"worker_id": "w-a"})).status_code == 404
        ok(await admin.post("/workspaces/w7/cancel"))
        beat = await prov.post(f"{path}/heartbeat", json={"worker_id": "w-a", "wait_seconds": 5})
        assert ok(beat) == {"status": "canceling"}
        done = await prov.post(f"{path}/complete", json={"worker_id": "w-a", "status": "canceled"})
        assert ok(done) == {"status": "canceled"}
        again = await prov.post(f"{path}/complete", json={"worker_id": "w-a", "status": "failed"})
        assert again.status_code == 409
