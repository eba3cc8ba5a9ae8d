"""Autostop end to end (DESIGN §10): a real server stops a real sandbox at its deadline.

The timer logic is proven with the test's clock in ``tests/services/test_autostop.py``;
here a bubblewrap workspace with a two-second TTL is left alone and the server's own
timer stops it, at its deadline.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from tests.conftest import LiveServer, destroy_sandboxes
from tests.support.processes import BERTH, start_server, stop_server
from tests.support.waiting import until_sync

TEMPLATE = """\
name: brief
default_ttl: 2s
backend:
  type: local
agents:
  - name: main
    chat: true
"""
WAIT = 60.0


def _workspace(api: httpx.Client, name: str) -> dict[str, Any]:
    return cast("dict[str, Any]", api.get(f"/workspaces/{name}").json())


@pytest.mark.bwrap
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not on PATH")
def test_a_workspace_left_alone_is_stopped_at_its_deadline(live_server: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers=headers, timeout=30) as api:
        try:
            pushed = api.post("/templates", json={"files": {"template.yaml": TEMPLATE}})
            assert pushed.status_code == 201, pushed.text
            created = api.post("/workspaces", json={"template": "brief", "name": "idle"})
            assert created.status_code == 201, created.text
            running = until_sync(
                lambda: _workspace(api, "idle"),
                lambda w: w["status"] == "running" and w["deadline"] is not None,
                within=WAIT,
                what="the workspace to run",
            )
            assert running["ttl"] == "2s"
            deadline = dt.datetime.fromisoformat(running["deadline"])
            stopped = until_sync(
                lambda: _workspace(api, "idle"),
                lambda w: w["status"] == "stopped",
                within=WAIT,
                what="the autostop",
            )
        finally:
            destroy_sandboxes(live_server.data_dir)
    build = stopped["latest_build"]
    assert (build["transition"], build["reason"]) == ("stop", "autostop")
    assert stopped["deadline"] is None
    late = dt.datetime.fromisoformat(build["created_at"]) - deadline
    assert dt.timedelta(0) <= late <= dt.timedelta(seconds=2), late


FAKE_TEMPLATE = """\
name: brief
default_ttl: 2s
backend:
  type: fake
agents:
  - name: main
    chat: true
"""


@pytest.mark.postgres
@pytest.mark.skipif(not BERTH.exists(), reason=f"the berth console script is not at {BERTH}")
def test_two_server_processes_make_one_autostop_build(database_url: str, tmp_path: Path) -> None:
    """Both replicas' timers see the deadline; exactly one stop build is made."""
    if not database_url.startswith("postgresql"):
        pytest.skip("two server processes share a database only on Postgres")
    env = {"BERTH_FAKE_BACKEND": "1"}
    servers = [start_server(tmp_path / name, database_url=database_url, env=env) for name in "ab"]
    try:
        token = (tmp_path / "a" / "admin-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"{servers[0][1]}/api/v1", headers=headers, timeout=30) as api:
            pushed = api.post("/templates", json={"files": {"template.yaml": FAKE_TEMPLATE}})
            assert pushed.status_code == 201, pushed.text
            assert api.post("/workspaces", json={"template": "brief", "name": "w"}).is_success
            stopped = until_sync(
                lambda: _workspace(api, "w"),
                lambda w: w["status"] == "stopped",
                within=WAIT,
                what="the autostop",
            )
    finally:
        for proc, _ in servers:
            stop_server(proc)
    build = stopped["latest_build"]
    assert (build["build_number"], build["transition"], build["reason"]) == (
        2,
        "stop",
        "autostop",
    )
