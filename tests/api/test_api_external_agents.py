"""External agents: the owner gets a token and runs ``berth agent`` on their own host."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
from typer.testing import CliRunner

from berth.cli.app import app
from tests.conftest import LiveServer
from tests.support.waiting import until_sync

TEMPLATE = """\
name: byo
backend:
  type: fake
agents:
  - name: laptop
    chat: true
    external: true
"""
WAIT = 60.0


def wait_running(api: httpx.Client, name: str) -> None:
    until_sync(
        lambda: api.get(f"/workspaces/{name}").json()["status"],
        lambda status: status == "running",
        within=WAIT,
        what=f"the build of {name}",
    )


def test_an_external_agent_connects_with_the_issued_token(live_server: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers=headers, timeout=30) as api:
        assert (
            api.post("/templates", json={"files": {"template.yaml": TEMPLATE}}).status_code == 201
        )
        assert api.post("/workspaces", json={"template": "byo", "name": "mine"}).status_code == 201
        wait_running(api, "mine")
        refused = api.post("/workspaces/mine/agents/nope/token")
        assert refused.status_code == 404
        issued = api.post("/workspaces/mine/agents/laptop/token").json()
        assert issued["command"] == f"berth agent --url {live_server.url} --token {issued['token']}"
        zipapp = live_server.runtime.agent_zipapp
        agent = subprocess.Popen(
            [sys.executable, str(zipapp), "--url", live_server.url, "--token", issued["token"]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            until_sync(
                lambda: api.get("/workspaces/mine").json()["agents"][0],
                lambda a: a["status"] == "connected" and a["lifecycle_state"] == "ready",
                within=WAIT,
                what="the external agent to connect",
            )
        finally:
            agent.terminate()
            agent.wait(timeout=30)


def test_only_external_agents_take_a_token(live_server: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    template = TEMPLATE.replace("external: true", "external: false").replace("byo", "own")
    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers=headers, timeout=30) as api:
        api.post("/templates", json={"files": {"template.yaml": template}})
        api.post("/workspaces", json={"template": "own", "name": "ours"})
        wait_running(api, "ours")
        answer = api.post("/workspaces/ours/agents/laptop/token")
    assert answer.status_code == 409
    assert "only external agents take a token" in answer.json()["message"]


def test_the_cli_prints_how_to_run_the_external_agent(live_server: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers=headers, timeout=30) as api:
        api.post("/templates", json={"files": {"template.yaml": TEMPLATE}})
        api.post("/workspaces", json={"template": "byo", "name": "cli"})
        wait_running(api, "cli")
    auth = ["--url", live_server.url, "--token", live_server.admin_token]
    shown = CliRunner().invoke(app, ["workspaces", "agent-token", "cli", "laptop", *auth])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith(f"berth agent --url {live_server.url} --token ")
    as_json = CliRunner().invoke(
        app, ["workspaces", "agent-token", "cli", "laptop", "-o", "json", *auth]
    )
    assert json.loads(as_json.stdout)["agent_name"] == "laptop"
    missing = CliRunner().invoke(app, ["workspaces", "agent-token", "cli", "nope", *auth])
    assert missing.exit_code == 1
