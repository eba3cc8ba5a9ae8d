"""End to end on the local backend: a real server, real bubblewrap sandboxes, real agents.

Everything goes through the HTTP API (httpx), as a user would: push templates, create
workspaces, wait on the ``watch`` stream until the agents are ready, exec, stop, start,
delete. The database is read directly only for what has no API yet (agent logs) and
to plant an agent token for the token test.

The server is the ``live_server`` fixture of ``tests/conftest.py`` (built-in workers,
the local, fake and docker backends). Sandboxes outlive their server on purpose (agents
reconnect to the next one), so every test deletes its workspaces through the API
before the server stops (the ``api`` fixture's teardown); the fixture destroys what
would still be left.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import anyio
import httpx
import pytest
import yaml
from websockets.asyncio.client import connect as ws_connect

from berth.agent.protocol import CONNECT_PATH
from berth.db.engine import Database, create_engine
from berth.domain.actors import as_provisioner, as_system
from berth.domain.credentials import hash_secret as hash_token
from berth.provisioner.backends import _proc as proc
from tests.support.waiting import until

pytestmark = pytest.mark.anyio

T = TypeVar("T")
API = "/api/v1"
READY_WITHIN = 60.0
"""Seconds one workspace may take to build and report its agents ready."""
BWRAP = shutil.which("bwrap")


@dataclass
class Api:
    """The server's URL, an admin HTTP client, a database handle of the test's own."""

    url: str
    http: httpx.AsyncClient
    db: Database
    data_dir: Path

    # --- requests -------------------------------------------------------------------

    async def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> dict[str, Any]:
        response = await self.http.request(method, path, **kw)
        assert response.status_code == status, f"{method} {path}: {response.text}"
        return cast("dict[str, Any]", response.json())

    async def push(self, doc: dict[str, Any]) -> None:
        files = {"template.yaml": yaml.safe_dump(doc, sort_keys=False)}
        response = await self.http.post("/templates", json={"files": files})
        assert response.status_code in (200, 201), response.text

    async def create(self, name: str, template: str = "python") -> dict[str, Any]:
        return await self.ok("POST", "/workspaces", 201, json={"template": template, "name": name})

    async def get(self, name: str) -> dict[str, Any]:
        return await self.ok("GET", f"/workspaces/{name}")

    async def build(self, name: str, transition: str) -> dict[str, Any]:
        return await self.ok(
            "POST", f"/workspaces/{name}/builds", 201, json={"transition": transition}
        )

    async def exec(self, name: str, command: str) -> dict[str, Any]:
        return await self.ok(
            "POST", f"/workspaces/{name}/exec", json={"command": command, "timeout": "60s"}
        )

    # --- waits ----------------------------------------------------------------------

    async def settle(self, name: str, within: float = READY_WITHIN) -> dict[str, Any]:
        """Follow the ``watch`` stream until the build is done and the agents have started.

        The stream ends by itself then (see the route); the last ``workspace`` event and
        a fresh GET describe the settled workspace.
        """
        with anyio.fail_after(within):
            async with self.http.stream(
                "GET", f"/workspaces/{name}/watch", timeout=httpx.Timeout(within)
            ) as response:
                assert response.status_code == 200, await response.aread()
                async for _ in response.aiter_lines():
                    pass
        return await self.get(name)

    async def wait_gone(self, name: str, within: float = READY_WITHIN) -> None:
        """Until the workspace is deleted (a deleted workspace is a 404; no stream to follow)."""
        await until(
            lambda: self.http.get(f"/workspaces/{name}"),
            lambda r: r.status_code == 404,
            within=within,
            every=0.05,
        )

    async def delete(self, name: str) -> None:
        build = await self.ok("DELETE", f"/workspaces/{name}", 202)
        assert build["transition"] == "delete"
        await self.wait_gone(name)

    async def cleanup(self) -> None:
        """Delete every workspace (sandboxes outlive the server otherwise)."""
        listed = await self.http.get("/workspaces", params={"all": "true"})
        assert listed.status_code == 200, listed.text
        names = [w["name"] for w in cast("list[dict[str, Any]]", listed.json())]

        async def remove(name: str) -> None:
            view = await self.get(name)
            if view["status"] in ("pending", "starting", "stopping", "deleting", "canceling"):
                await until(
                    lambda: self.get(name),
                    lambda v: v["status"] not in ("pending", "starting", "stopping", "deleting"),
                    within=READY_WITHIN,
                    every=0.05,
                )
            await self.delete(name)

        await asyncio.gather(*(remove(n) for n in names))


class LiveServer(Protocol):
    """The parts of ``tests/conftest.py``'s ``LiveServer`` these tests use."""

    @property
    def url(self) -> str: ...
    @property
    def admin_token(self) -> str: ...
    @property
    def data_dir(self) -> Path: ...


@pytest.fixture
async def api(live_server: LiveServer, database_url: str) -> AsyncGenerator[Api]:
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    db = Database(create_engine(database_url))
    url = live_server.url
    async with httpx.AsyncClient(base_url=url + API, headers=headers, timeout=90.0) as http:
        api = Api(url, http, db, live_server.data_dir)
        try:
            yield api
        finally:
            try:
                await api.cleanup()
            finally:
                await db.dispose()


def _home(api: Api, workspace_id: str) -> Path:
    return api.data_dir / "workspaces" / "homes" / workspace_id


async def _sandbox_handle(api: Api, workspace_id: str) -> dict[str, Any]:
    """The local backend's handle of the workspace's running sandbox (keeper and init)."""
    async with api.db.read(as_system()) as store:
        build = await store.get_latest_workspace_build_by_workspace_id(uuid.UUID(workspace_id))
        assert build is not None
        resources = await store.list_workspace_resources_by_job(build.job_id)
    for resource in resources:
        for record in resource.handle.get("records", []):
            if record["type"] == "local_sandbox":
                return cast("dict[str, Any]", record["handle"])
    raise AssertionError(f"no sandbox resource in {resources}")


def _sandbox_alive(handle: dict[str, Any]) -> list[str]:
    """Which of the sandbox's processes (same pid *and* start time) are still alive."""
    alive: list[str] = []
    for who in ("keeper", "init"):
        pid, start = handle.get(f"{who}_pid"), handle.get(f"{who}_start")
        if pid is not None and start is not None and proc.alive(proc.ProcessId(pid, start)):
            alive.append(who)
    return alive


def _local_template(name: str, *, script: str = "true", prepare: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "backend": {"type": "local", "isolation": "bwrap", "network": True},
        "prepare": prepare,
        "agents": [
            {
                "name": "main",
                "chat": True,
                "scripts": [
                    {
                        "display_name": "setup",
                        "run_on": "start",
                        "blocks_login": True,
                        "timeout": "2m",
                        "script": script,
                    }
                ],
            }
        ],
    }


# --- the shipped python template ------------------------------------------------------


@pytest.mark.bwrap
@pytest.mark.skipif(BWRAP is None, reason="bubblewrap (bwrap) is not on PATH")
async def test_python_workspace_exec_stop_start_delete(api: Api) -> None:
    created = await api.create("w1")
    assert created["template_name"] == "python"
    workspace_id = created["id"]

    view = await api.settle("w1")
    assert view["status"] == "running", view
    (agent,) = view["agents"]
    assert agent["lifecycle_state"] == "ready", agent
    assert agent["status"] == "connected", agent

    result = await api.exec("w1", "python3 -c 'print(1)'")
    assert result == {
        "exit_code": 0,
        "stdout": "1\n",
        "stderr": "",
        "timed_out": False,
        "truncated": False,
        "wall_duration_ms": result["wall_duration_ms"],
    }
    whoami = await api.exec("w1", 'echo "$HOME $(pwd)"')
    assert whoami["stdout"] == "/home/admin /home/admin/project\n"

    marker = secrets.token_hex(8)
    wrote = await api.exec("w1", f"echo {marker} > ~/kept.txt")
    assert wrote["exit_code"] == 0, wrote
    assert (_home(api, workspace_id) / "kept.txt").read_text() == f"{marker}\n"
    first_sandbox = await _sandbox_handle(api, workspace_id)
    assert _sandbox_alive(first_sandbox) == ["keeper", "init"]

    await api.build("w1", "stop")
    stopped = await api.settle("w1")
    assert stopped["status"] == "stopped", stopped
    assert _sandbox_alive(first_sandbox) == [], "stop kills the sandbox"
    assert (_home(api, workspace_id) / "kept.txt").exists(), "stop keeps the home"

    await api.build("w1", "start")
    started = await api.settle("w1")
    assert started["status"] == "running", started
    assert started["agents"][0]["lifecycle_state"] == "ready", started
    read = await api.exec("w1", "cat ~/kept.txt")
    assert read["stdout"] == f"{marker}\n", read

    sandbox = await _sandbox_handle(api, workspace_id)
    assert _sandbox_alive(sandbox) == ["keeper", "init"]
    await api.delete("w1")
    assert _sandbox_alive(sandbox) == [], "delete kills the sandbox"
    assert not _home(api, workspace_id).exists(), "delete removes the home"
    left = [p for p in (api.data_dir / "workspaces").rglob("*") if workspace_id in p.name]
    assert left == [], f"delete leaves nothing of the workspace behind: {left}"


# --- failures -----------------------------------------------------------------------


@pytest.mark.bwrap
@pytest.mark.skipif(BWRAP is None, reason="bubblewrap (bwrap) is not on PATH")
async def test_a_failing_blocking_start_script_is_a_start_error_with_its_log(api: Api) -> None:
    await api.push(_local_template("broken-start", script="echo about to fail\nexit 1"))
    await api.create("w1", "broken-start")
    view = await api.settle("w1")
    assert view["status"] == "running", "the build succeeded; the agent's script failed"
    (agent,) = view["agents"]
    assert agent["lifecycle_state"] == "start_error", agent
    exec_ok = await api.exec("w1", "echo still-usable")
    assert exec_ok["stdout"] == "still-usable\n"

    async def logs() -> list[str]:
        async with api.db.read(as_system()) as raw:
            entries = await raw.list_workspace_agent_logs(uuid.UUID(agent["id"]))
        return [e.output for e in entries]

    # Script logs are flushed in batches; the lifecycle report may arrive first.
    outputs = await until(
        logs, lambda lines: "about to fail" in lines, within=READY_WITHIN, every=0.05
    )
    assert "about to fail" in outputs


@pytest.mark.bwrap
@pytest.mark.skipif(BWRAP is None, reason="bubblewrap (bwrap) is not on PATH")
async def test_a_failing_prepare_fails_the_build_with_its_output(api: Api) -> None:
    await api.push(
        _local_template("broken-prepare", prepare="echo preparing the thing\necho oops >&2\nexit 1")
    )
    await api.create("w1", "broken-prepare")
    view = await api.settle("w1")
    assert view["status"] == "failed", view
    job = view["latest_build"]["job"]
    assert job["status"] == "failed"
    assert job["error_code"] == "PREPARE_FAILED"
    assert job["error"].startswith("prepare exited with status 1:")
    assert "preparing the thing" in job["error"]
    assert "oops" in job["error"]
    logs = await api.http.get("/workspaces/w1/logs")
    prepared = [e["output"] for e in logs.json() if e["stage"] == "prepare"]
    assert prepared == ["preparing the thing", "oops"]


# --- isolation and scale ----------------------------------------------------------


@pytest.mark.bwrap
@pytest.mark.skipif(BWRAP is None, reason="bubblewrap (bwrap) is not on PATH")
async def test_a_workspace_cannot_read_another_workspaces_home(api: Api) -> None:
    first, second = await asyncio.gather(api.create("alpha"), api.create("beta"))
    await asyncio.gather(api.settle("alpha"), api.settle("beta"))
    secret = secrets.token_hex(16)
    wrote = await api.exec("alpha", f"echo {secret} > ~/secret-{secret}.txt && echo done")
    assert wrote["stdout"] == "done\n", wrote
    alpha_home = _home(api, first["id"])
    assert (alpha_home / f"secret-{secret}.txt").exists()

    places = "/home /root /tmp /run /opt /var /srv /mnt /etc /dev/shm"
    probe = await api.exec(
        "beta",
        f"cat {alpha_home}/secret-{secret}.txt; "
        f"cat ~/secret-{secret}.txt; "
        f"ls {api.data_dir}; "
        f"find {places} -name 'secret-{secret}.txt' 2>/dev/null; "
        f"grep -rl {secret} {places} 2>/dev/null; "
        "ls -A /home; "
        "echo end",
    )
    assert secret not in probe["stdout"], probe
    assert probe["stdout"].splitlines()[-2:] == ["admin", "end"], probe
    assert "No such file or directory" in probe["stderr"], probe
    assert str(second["id"]) != str(first["id"])


@pytest.mark.bwrap
@pytest.mark.skipif(BWRAP is None, reason="bubblewrap (bwrap) is not on PATH")
async def test_twenty_workspaces_created_in_parallel_all_become_ready(api: Api) -> None:
    names = [f"par-{i:02d}" for i in range(20)]
    with anyio.fail_after(120):
        await asyncio.gather(*(api.create(n) for n in names))
        views = await asyncio.gather(*(api.settle(n, within=120) for n in names))
    for view in views:
        assert view["status"] == "running", view
        assert [a["lifecycle_state"] for a in view["agents"]] == ["ready"], view
    results = await asyncio.gather(*(api.exec(n, "uname -n") for n in names))
    assert sorted(r["stdout"].strip() for r in results) == names


# --- agent tokens -------------------------------------------------------------------


async def test_an_agent_token_opens_only_the_agent_endpoint(api: Api) -> None:
    await api.push({"name": "fake-one", "backend": {"type": "fake"}, "agents": [{"name": "main"}]})
    created = await api.create("w1", "fake-one")
    view = await until(
        lambda: api.get("w1"), lambda v: v["status"] == "running", within=READY_WITHIN, every=0.05
    )
    job_id = uuid.UUID(view["latest_build"]["job"]["id"])
    token = secrets.token_urlsafe(32)
    async with api.db.write(as_system()) as raw:
        store = raw.acting_as(as_provisioner())
        (resource,) = await store.list_workspace_resources_by_job(job_id)
        agent = await store.insert_workspace_agent(
            resource_id=resource.id,
            name="planted",
            display_order=9,
            chat=False,
            external=True,
            directory="",
            env={},
            auth_token_hash=hash_token(token),
            connection_timeout_seconds=120,
        )

    # Refused on every non-agent endpoint, in the one error envelope.
    bearer = {"Authorization": f"Bearer {token}"}
    for path in ("/users/me", "/workspaces", f"/workspaces/{created['id']}", "/templates"):
        response = await api.http.get(path, headers=bearer)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["message"] == "Invalid API token."

    # Accepted where it belongs: the agent WebSocket answers ``hello`` with a manifest.
    url = api.url.replace("http://", "ws://") + CONNECT_PATH
    with anyio.fail_after(30):
        async with ws_connect(url, additional_headers=bearer) as ws:
            await ws.send('{"type": "hello", "version": 1}')
            manifest = yaml.safe_load(await ws.recv())
    assert manifest["type"] == "manifest"
    assert manifest["agent_id"] == str(agent.id)
    assert manifest["name"] == "planted"
