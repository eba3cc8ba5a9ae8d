"""Two ``berth server`` processes on one Postgres: 20 parallel creates, one workspace.

The same check as ``test_mcp_replicas`` with real OS processes: separate interpreters,
engines, event buses (LISTEN/NOTIFY between them) and provisioner workers.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Generator
from pathlib import Path

import httpx
import pytest

from tests.conftest import destroy_sandboxes
from tests.mcp.test_mcp_replicas import TEMPLATE, create_via_url
from tests.support.processes import BERTH, start_server, stop_server

pytestmark = pytest.mark.anyio


@pytest.fixture
def processes(tmp_path: Path) -> Generator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        stop_server(proc)
    for data_dir in ("a", "b"):
        destroy_sandboxes(tmp_path / data_dir)


@pytest.mark.postgres
@pytest.mark.spec("cw.serialize")
@pytest.mark.skipif(not BERTH.exists(), reason=f"the berth console script is not at {BERTH}")
async def test_twenty_creates_across_two_server_processes_make_one_workspace(
    database_url: str, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("two server processes share a database only on Postgres")
    first, url_a = start_server(tmp_path / "a", database_url=database_url)
    processes.append(first)
    second, url_b = start_server(tmp_path / "b", database_url=database_url)
    processes.append(second)
    token = (tmp_path / "a" / "admin-token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    document = TEMPLATE.format(isolation="bwrap" if shutil.which("bwrap") else "none")
    async with httpx.AsyncClient(base_url=f"{url_a}/api/v1", headers=headers) as api:
        pushed = await api.post("/templates", json={"files": {"template.yaml": document}})
        template_id = pushed.json()["template"]["id"]
        chat_id = (await api.post("/chats", json={})).json()["id"]
        results = await asyncio.wait_for(
            asyncio.gather(
                *(
                    create_via_url(url_a if i % 2 else url_b, token, chat_id, template_id)
                    for i in range(20)
                )
            ),
            timeout=100,
        )
        workspaces = (await api.get("/workspaces")).json()
    assert len(workspaces) == 1, workspaces
    assert sum(1 for r in results if r["created"]) == 1
    assert {r["workspace_name"].split("/")[-1] for r in results} == {workspaces[0]["name"]}
