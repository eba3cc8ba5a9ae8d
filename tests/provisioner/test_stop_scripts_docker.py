"""Stop scripts (DESIGN §7, issue 9) on the docker backend: what ``test_stop_scripts`` shows
for bubblewrap, in containers.

A real server, a real container, a real agent in it: the stop build asks the agent to
shut down, the agent runs the ``run_on: stop`` scripts (their output is in the agent
log, their outcome in the build log: ``off``, ``shutdown_error``, ``shutdown_timeout``),
and only then does the backend remove the container. A failing or hanging stop script
never holds the stop up beyond its timeout. The mechanism is the server's, not the
backend's; these tests show that the Docker backend leaves the agent connected (through
its relay) until the scripts are done and that their effects land in the home volume.
Skipped, with the reason, when the engine or the image is missing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Generator
from typing import Any, cast

import docker
import docker.errors
import httpx
import pytest

from tests.conftest import LiveServer
from tests.provisioner.test_e2e_docker import IMAGE, engine_problem
from tests.provisioner.test_stop_scripts import TEMPLATE, WAIT, _api, _logs, _settled, _start  # pyright: ignore[reportPrivateUsage]  # the bwrap module's helpers, shared
from tests.support.waiting import until_sync

pytestmark = pytest.mark.docker

DOCKER_TEMPLATE = TEMPLATE.replace("  type: local\n", f"  type: docker\n  image: {IMAGE}\n")
assert DOCKER_TEMPLATE != TEMPLATE


@contextlib.contextmanager
def docker_api(live_server: LiveServer) -> Generator[httpx.Client]:
    """The API client; the workspace ``w`` deleted at the end, and nothing of it left."""
    if (problem := engine_problem()) is not None:
        pytest.skip(problem)
    with _api(live_server) as api:
        try:
            yield api
        finally:
            workspace = api.get("/workspaces/w")
            if workspace.is_success:
                api.delete("/workspaces/w")
                until_sync(
                    lambda: api.get("/workspaces/w").status_code == 404,
                    within=WAIT,
                    every=0.1,
                    what="w to be deleted",
                )
                _remove_leftovers(str(workspace.json()["id"]))


def _remove_leftovers(workspace_id: str) -> None:
    """Whatever a failed delete left of the workspace in the engine (nothing, normally)."""
    engine = docker.from_env()
    labels: dict[str, str | list[str] | bool] = {"label": f"berth.workspace_id={workspace_id}"}
    try:
        for container in engine.containers.list(all=True, filters=labels):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        for volume in engine.volumes.list(filters=labels):
            with contextlib.suppress(docker.errors.NotFound):
                volume.remove(force=True)
    finally:
        engine.close()


def _containers_of(workspace: dict[str, Any]) -> list[str]:
    engine = docker.from_env()
    labels: dict[str, str | list[str] | bool] = {"label": f"berth.workspace_id={workspace['id']}"}
    try:
        return [str(c.name) for c in engine.containers.list(all=True, filters=labels)]
    finally:
        engine.close()


def _script_output(api: httpx.Client, name: str, script: str) -> list[str]:
    lines = cast("list[dict[str, Any]]", api.get(f"/workspaces/{name}/agent-logs").json())
    return [line["output"] for line in lines if line["script"] == script]


def _stop(api: httpx.Client) -> dict[str, Any]:
    assert api.post("/workspaces/w/builds", json={"transition": "stop"}).is_success
    return _settled(api, "w", "stopped")


def _took(workspace: dict[str, Any]) -> dt.timedelta:
    job = workspace["latest_build"]["job"]
    completed = dt.datetime.fromisoformat(job["completed_at"])
    return completed - dt.datetime.fromisoformat(job["started_at"])


def test_stop_scripts_run_in_the_container_before_it_goes(live_server: LiveServer) -> None:
    template = DOCKER_TEMPLATE.format(second="note", script="echo noted")
    with docker_api(live_server) as api:
        _start(api, template, "w")
        stopped = _stop(api)
        logs = _logs(api, "w")
        assert "agent main: running its stop scripts" in logs, logs
        assert "agent main: stop scripts off" in logs, logs
        assert _script_output(api, "w", "note") == ["noted"]
        assert stopped["agents"] == []
        assert _containers_of(stopped) == []  # the container and its relay: gone
        started = api.post("/workspaces/w/builds", json={"transition": "start"})
        assert started.is_success, started.text
        _settled(api, "w", "running")
        ran = api.post("/workspaces/w/exec", json={"command": "cat ~/bye.txt"}).json()
        assert (ran["exit_code"], ran["stdout"]) == (0, "bye\n"), ran  # in the home volume


def test_a_failing_stop_script_does_not_block_the_stop(live_server: LiveServer) -> None:
    template = DOCKER_TEMPLATE.format(second="broken", script="'echo failing >&2; exit 3'")
    with docker_api(live_server) as api:
        _start(api, template, "w")
        stopped = _stop(api)
        logs = _logs(api, "w")
        assert "agent main: stop scripts shutdown_error" in logs, logs
        assert "failing" in _script_output(api, "w", "broken")
        assert _containers_of(stopped) == []
        assert _took(stopped) < dt.timedelta(seconds=20)


def test_a_hanging_stop_script_holds_the_stop_up_only_for_its_timeout(
    live_server: LiveServer,
) -> None:
    template = DOCKER_TEMPLATE.format(second="hang", script="sleep 600")
    with docker_api(live_server) as api:
        _start(api, template, "w")
        stopped = _stop(api)
        logs = _logs(api, "w")
        assert "agent main: stop scripts shutdown_timeout" in logs, logs
        assert _containers_of(stopped) == []
        assert _took(stopped) < dt.timedelta(seconds=20), _took(stopped)  # 1 s timeout + stop
