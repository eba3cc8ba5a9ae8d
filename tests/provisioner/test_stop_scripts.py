"""Stop scripts (DESIGN §7): a stop build lets the agent run them before the sandbox goes.

A real server, a real bubblewrap workspace, a real agent: the stop build asks the agent
to shut down, the agent runs the ``run_on: stop`` scripts (their output and result are
in the logs), and only then does the backend tear the sandbox down. A failing or
hanging stop script never holds the stop up beyond its timeout.
"""

from __future__ import annotations

import datetime as dt
import shutil
from typing import Any, cast

import httpx
import pytest

from tests.conftest import LiveServer, destroy_sandboxes
from tests.support.waiting import until_sync

pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not on PATH"),
]

TEMPLATE = """\
name: tidy
backend:
  type: local
agents:
  - name: main
    chat: true
    scripts:
      - display_name: goodbye
        run_on: stop
        timeout: 30s
        script: echo bye > ~/bye.txt
      - display_name: {second}
        run_on: stop
        timeout: 1s
        script: {script}
"""
WAIT = 60.0


def _api(live_server: LiveServer) -> httpx.Client:
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    return httpx.Client(base_url=f"{live_server.url}/api/v1", headers=headers, timeout=60)


def _settled(api: httpx.Client, name: str, status: str) -> dict[str, Any]:
    def settled(w: dict[str, Any]) -> bool:
        agents_ready = all(a["lifecycle_state"] == "ready" for a in w["agents"])
        return w["status"] == "failed" or (
            w["status"] == status and (status != "running" or agents_ready)
        )

    workspace = until_sync(
        lambda: cast("dict[str, Any]", api.get(f"/workspaces/{name}").json()),
        settled,
        within=WAIT,
        what=f"{name} to be {status}",
    )
    assert workspace["status"] == status, workspace["latest_build"]["job"]
    return workspace


def _logs(api: httpx.Client, name: str) -> list[str]:
    return [entry["output"] for entry in api.get(f"/workspaces/{name}/logs").json()]


def _start(api: httpx.Client, template: str, name: str) -> None:
    pushed = api.post("/templates", json={"files": {"template.yaml": template}})
    assert pushed.is_success, pushed.text
    created = api.post("/workspaces", json={"template": "tidy", "name": name})
    assert created.status_code == 201, created.text
    _settled(api, name, "running")


def test_stop_scripts_run_before_the_sandbox_stops(live_server: LiveServer) -> None:
    template = TEMPLATE.format(second="note", script="echo noted")
    with _api(live_server) as api:
        try:
            _start(api, template, "w")
            assert api.post("/workspaces/w/builds", json={"transition": "stop"}).is_success
            stopped = _settled(api, "w", "stopped")
            logs = _logs(api, "w")
            assert "agent main: running its stop scripts" in logs
            assert "agent main: stop scripts off" in logs
            assert stopped["agents"] == []
            started = api.post("/workspaces/w/builds", json={"transition": "start"})
            assert started.is_success, started.text
            _settled(api, "w", "running")
            ran = api.post("/workspaces/w/exec", json={"command": "cat ~/bye.txt"}).json()
            assert (ran["exit_code"], ran["stdout"]) == (0, "bye\n"), ran
        finally:
            destroy_sandboxes(live_server.data_dir)


def test_a_hanging_stop_script_holds_the_stop_up_only_for_its_timeout(
    live_server: LiveServer,
) -> None:
    template = TEMPLATE.format(second="hang", script="sleep 600")
    with _api(live_server) as api:
        try:
            _start(api, template, "w")
            assert api.post("/workspaces/w/builds", json={"transition": "stop"}).is_success
            stopped = _settled(api, "w", "stopped")
        finally:
            destroy_sandboxes(live_server.data_dir)
        logs = _logs(api, "w")
    assert "agent main: stop scripts shutdown_timeout" in logs, logs
    job = stopped["latest_build"]["job"]
    took = dt.datetime.fromisoformat(job["completed_at"]) - dt.datetime.fromisoformat(
        job["started_at"]
    )
    assert took < dt.timedelta(seconds=20), took  # the 1 s timeout and the stop itself
