"""End to end on Docker: the shipped ``python-docker`` template through a real server.

Create → agent ready → ``exec`` → a file in the home volume survives stop/start →
delete removes container and volume. Skipped, with the reason, when the engine is not
reachable or the image ``berth-python:latest`` is missing (``scripts/build-test-image.sh``).
"""

from __future__ import annotations

import functools
import gc
import warnings
from typing import Any, cast

import docker
import docker.errors
import httpx
import pytest

from tests.conftest import LiveServer
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
