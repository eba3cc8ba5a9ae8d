"""End to end on Docker: real servers on a loopback address, real agents in containers.

The shipped ``python-docker`` template: create → agent ready → ``exec`` → a file in
the home volume survives stop/start → delete removes containers and volumes. Then what
a workspace cannot do, asked through the server as a user would: reach the host's
Postgres, the server's port or any address of the host (``network: true``), reach
anything at all (``network: false``), outgrow ``memory``/``pids``/``tmp_size``. The
agents reach the server, whose URL is loopback, through the relay. Skipped, with the
reason, when the engine is not reachable or the image ``berth-python:latest`` is
missing (``scripts/build-test-image.sh``).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import shlex
import socket
import warnings
from collections.abc import Generator
from typing import Any, cast
from urllib.parse import urlsplit

import docker
import docker.errors
import httpx
import pytest
import yaml

from tests.conftest import LiveServer
from tests.provisioner.test_docker_isolation import CONNECT, GATEWAY, SPAWN, host_addresses
from tests.support.waiting import until_sync

IMAGE = "berth-python:latest"
WAIT = 90.0


@functools.cache
def engine_problem() -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            probe = docker.from_env()
        except docker.errors.DockerException as err:
            return f"the Docker engine is not reachable: {err}"
        try:
            probe.images.get(IMAGE)
        except docker.errors.ImageNotFound:
            return f"the image {IMAGE} is missing: run scripts/build-test-image.sh"
        finally:
            probe.close()
            gc.collect()
    return None


def wait_ready(api: httpx.Client, name: str) -> dict[str, Any]:
    def ready(workspace: dict[str, Any]) -> bool:
        assert workspace["status"] in ("pending", "starting", "running"), workspace
        agents = workspace["agents"]
        return (
            workspace["status"] == "running"
            and bool(agents)
            and (agents[0]["lifecycle_state"] == "ready")
        )

    return until_sync(
        lambda: cast("dict[str, Any]", api.get(f"/workspaces/{name}").json()),
        ready,
        within=WAIT,
        every=0.1,
        what=f"{name} to be ready",
    )


@pytest.mark.docker
def test_docker_workspace_exec_stop_start_delete(live_server: LiveServer) -> None:
    if (problem := engine_problem()) is not None:
        pytest.skip(problem)
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    engine = docker.from_env()
    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers=headers, timeout=120) as api:
        created = api.post("/workspaces", json={"template": "python-docker", "name": "dock"})
        assert created.status_code == 201, created.text
        workspace_id = created.json()["id"]
        try:
            wait_ready(api, "dock")
            ran = api.post(
                "/workspaces/dock/exec", json={"command": "python3 -c 'print(1)'"}
            ).json()
            assert (ran["exit_code"], ran["stdout"]) == (0, "1\n")
            wrote = api.post("/workspaces/dock/exec", json={"command": "echo kept > ~/kept.txt"})
            assert wrote.json()["exit_code"] == 0
            assert (
                api.post("/workspaces/dock/builds", json={"transition": "stop"}).status_code == 201
            )
            until_sync(
                lambda: api.get("/workspaces/dock").json()["status"] == "stopped",
                within=WAIT,
                every=0.1,
                what="the stop build",
            )
            labels: dict[str, str | list[str] | bool] = {
                "label": f"berth.workspace_id={workspace_id}"
            }
            assert engine.containers.list(all=True, filters=labels) == []
            assert len(engine.volumes.list(filters=labels)) == 1
            assert (
                api.post("/workspaces/dock/builds", json={"transition": "start"}).status_code == 201
            )
            wait_ready(api, "dock")
            back = api.post("/workspaces/dock/exec", json={"command": "cat ~/kept.txt"}).json()
            assert back["stdout"] == "kept\n"
        finally:
            api.delete("/workspaces/dock")
            labels: dict[str, str | list[str] | bool] = {
                "label": f"berth.workspace_id={workspace_id}"
            }

            def gone() -> bool:
                try:  # list() inspects each container; one may vanish in between
                    containers = engine.containers.list(all=True, filters=labels)
                except docker.errors.NotFound:
                    return False
                return not containers and not engine.volumes.list(filters=labels)

            until_sync(gone, within=WAIT, every=0.1, what="the container and volume to go")
            engine.close()


# --- what a workspace cannot do ------------------------------------------------------


def isolated_template(name: str, **backend: Any) -> dict[str, Any]:
    return {
        "name": name,
        "backend": {"type": "docker", "image": IMAGE, **backend},
        "agents": [{"name": "main", "chat": True}],
    }


@contextlib.contextmanager
def workspace(live_server: LiveServer, doc: dict[str, Any]) -> Generator[httpx.Client]:
    """A ready workspace named after the template; its client; deleted at the end."""
    if (problem := engine_problem()) is not None:
        pytest.skip(problem)
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    name = doc["name"]
    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers=headers, timeout=120) as api:
        pushed = api.post("/templates", json={"files": {"template.yaml": yaml.safe_dump(doc)}})
        assert pushed.status_code in (200, 201), pushed.text
        created = api.post("/workspaces", json={"template": name, "name": name})
        assert created.status_code == 201, created.text
        try:
            wait_ready(api, name)
            yield api
        finally:
            api.delete(f"/workspaces/{name}")
            until_sync(
                lambda: api.get(f"/workspaces/{name}").status_code == 404,
                within=WAIT,
                every=0.1,
                what=f"{name} to be deleted",
            )


def run(api: httpx.Client, name: str, command: str) -> dict[str, Any]:
    ran = api.post(f"/workspaces/{name}/exec", json={"command": command, "timeout": "60s"})
    assert ran.status_code == 200, ran.text
    return cast("dict[str, Any]", ran.json())


def python(script: str, *args: str) -> str:
    return shlex.join(["python3", "-c", script, *args])


@pytest.mark.docker
def test_a_network_true_workspace_reaches_nothing_of_the_host_and_its_limits_hold(
    live_server: LiveServer,
) -> None:
    doc = isolated_template("fenced", memory="256m", pids=200, tmp_size="64m")
    server_port = urlsplit(live_server.url).port or 80
    with (
        socket.create_server(("0.0.0.0", 0)) as listener,  # noqa: S104 - the point
        workspace(live_server, doc) as api,
    ):
        listener.setblocking(False)
        gateway = run(api, "fenced", python(GATEWAY))["stdout"].strip()
        assert gateway, "a bridge network has a default route"
        hosts = list(dict.fromkeys(["127.0.0.1", gateway, *host_addresses()]))
        ports = (5432, server_port, listener.getsockname()[1])
        targets = json.dumps([[h, p] for h in hosts for p in ports])
        probed = run(api, "fenced", python(CONNECT, targets))
        assert probed["exit_code"] == 0, probed
        results = json.loads(probed["stdout"])
        assert len(results) == len(hosts) * len(ports)
        # The one way to the host: the relay to the server, at the server's own port on
        # the container's loopback. Postgres, the gateway, the host's addresses: refused.
        assert results.pop(f"127.0.0.1:{server_port}") == "open"
        refused = ("ConnectionRefusedError", "TimeoutError")
        assert all(r in refused for r in results.values()), results
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing came through

        assert run(api, "fenced", "id -u")["stdout"] != "0\n"
        wrote = run(api, "fenced", "echo mine > ~/mine && cat ~/mine && stat -c %u ~")
        assert (wrote["exit_code"], wrote["stdout"]) == (0, "mine\n1000\n")

        hog = run(api, "fenced", python("b = b'x' * (700 << 20)"))
        assert hog["exit_code"] != 0, hog
        assert run(api, "fenced", "echo alive")["stdout"] == "alive\n"
        storm = run(api, "fenced", python(SPAWN))
        assert storm["exit_code"] == 0, storm
        counted = json.loads(storm["stdout"])
        assert counted["started"] < 400, counted
        assert counted["processes"] <= 200, counted
        full = run(api, "fenced", "dd if=/dev/zero of=/tmp/big bs=1M count=200; rm -f /tmp/big")
        assert "No space left on device" in full["stderr"] + full["stdout"]
        assert run(api, "fenced", "echo alive")["stdout"] == "alive\n"


@pytest.mark.docker
def test_a_network_false_workspace_has_no_network_and_its_agent_works(
    live_server: LiveServer,
) -> None:
    interfaces = (
        "print(sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]))"
    )
    with workspace(live_server, isolated_template("offline", network=False)) as api:
        assert run(api, "offline", python(interfaces))["stdout"] == "['lo']\n"
        targets = json.dumps([["192.0.2.1", 80], *([a, 5432] for a in host_addresses())])
        probed = run(api, "offline", python(CONNECT, targets))
        assert probed["exit_code"] == 0, probed
        assert set(json.loads(probed["stdout"]).values()) == {"OSError"}
