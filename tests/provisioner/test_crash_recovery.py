"""SIGKILL the server mid-build, start it again: no job stays running, no sandbox stays.

A real ``berth server`` process builds a workspace whose ``prepare`` never ends; the
server is killed with SIGKILL (no shutdown code runs), restarted on the same data dir,
and its reaper must fail the job with a clear error. The prepare sandbox dies with its
parent, and nothing of the workspace is left running.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Generator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import BERTH, start_server, stop_server
from tests.support.waiting import until_sync

TEMPLATE = """\
name: crash
backend:
  type: local
  isolation: {isolation}
prepare: |
  echo preparing
  sleep 600
agents:
  - name: main
"""
WAIT = 60.0
STALE = {"BERTH_JOB_STALE_AFTER_SECONDS": "1"}


@pytest.fixture
def servers() -> Generator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        stop_server(proc, kill=True)


def processes_mentioning(text: str) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not BERTH.exists(), reason=f"the berth console script is not at {BERTH}")
def test_sigkill_during_a_build_leaves_no_running_job_and_no_sandbox(
    tmp_path: Path, servers: list[subprocess.Popen[str]]
) -> None:
    data_dir = tmp_path / "data"
    first, url = start_server(data_dir, env=STALE)
    servers.append(first)
    token = (data_dir / "admin-token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    api = httpx.Client(base_url=f"{url}/api/v1", headers=headers)
    isolation = "bwrap" if shutil.which("bwrap") else "none"
    pushed = api.post(
        "/templates", json={"files": {"template.yaml": TEMPLATE.format(isolation=isolation)}}
    )
    assert pushed.status_code == 201, pushed.text
    created = api.post("/workspaces", json={"template": "crash", "name": "doomed"})
    assert created.status_code == 201, created.text
    workspace_id = created.json()["id"]
    until_sync(
        lambda: any(
            log["output"] == "preparing" for log in api.get("/workspaces/doomed/logs").json()
        ),
        what="prepare to start",
        within=WAIT,
    )
    assert processes_mentioning(workspace_id), "the prepare sandbox runs"

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=WAIT)
    api.close()
    second, url = start_server(data_dir, env=STALE)
    servers.append(second)
    api = httpx.Client(base_url=f"{url}/api/v1", headers=headers)

    job = until_sync(
        lambda: (
            (j := api.get("/workspaces/doomed").json()["latest_build"]["job"])["status"] == "failed"
            and j
        ),
        what="the reaper to fail the abandoned job",
        within=WAIT,
    )
    assert "stopped responding" in job["error"]
    assert api.get("/workspaces/doomed").json()["status"] == "failed"
    until_sync(
        lambda: not processes_mentioning(workspace_id), what="the sandbox to be gone", within=WAIT
    )
    api.close()
