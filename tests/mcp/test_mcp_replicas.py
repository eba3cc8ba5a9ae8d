"""Two server processes on one Postgres: 20 parallel create_workspace calls, one workspace.

The template has a real agent (bubblewrap where installed, else ``isolation: none``):
with no agent, the spec has every call create anew ([cw.existing.dead-agent]).
Each replica is a full berth server (its own engine, event bus, provisioner workers)
on the same database, as two processes would be; the chat lease on the chat row is
what serializes the calls, and Postgres LISTEN/NOTIFY carries the events between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Generator
from pathlib import Path
from typing import Any, cast

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from berth.api.server import RunningServer, running_server
from berth.settings import Settings
from tests.conftest import destroy_sandboxes

pytestmark = pytest.mark.anyio

TEMPLATE = """\
name: replicas
backend:
  type: local
  isolation: {isolation}
agents:
  - name: main
    chat: true
"""


@contextlib.contextmanager
def two_replicas(
    database_url: str, tmp_path: Path
) -> Generator[tuple[RunningServer, RunningServer]]:
    first = Settings(data_dir=tmp_path / "a", database_url=database_url, address="127.0.0.1:0")
    second = Settings(data_dir=tmp_path / "b", database_url=database_url, address="127.0.0.1:0")
    try:
        with running_server(first) as a, running_server(second) as b:
            yield a, b
    finally:
        for data_dir in (first.data_dir, second.data_dir):
            destroy_sandboxes(data_dir)


async def create_via_url(url: str, token: str, chat_id: str, template_id: str) -> dict[str, Any]:
    """One create_workspace call through its own MCP session to the server at ``url``."""
    endpoint = f"{url}/api/v1/chats/{chat_id}/mcp"
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120) as http,
        Client(streamable_http_client(endpoint, http_client=http)) as client,
    ):
        result = await client.call_tool("create_workspace", {"template_id": template_id})
    assert not result.is_error, result.content
    structured: Any = result.structured_content
    assert isinstance(structured, dict)
    return cast(dict[str, Any], structured)


@pytest.mark.postgres
@pytest.mark.spec("cw.serialize")
async def test_parallel_creates_across_two_replicas_make_one_workspace(
    database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("two server processes share a database only on Postgres")
    with two_replicas(database_url, tmp_path) as (a, b):
        bootstrapped = a.runtime.bootstrapped or b.runtime.bootstrapped
        assert bootstrapped is not None, "exactly one replica bootstrapped the database"
        token = bootstrapped.token
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=f"{a.url}/api/v1", headers=headers) as api:
            document = TEMPLATE.format(isolation="bwrap" if shutil.which("bwrap") else "none")
            pushed = await api.post("/templates", json={"files": {"template.yaml": document}})
            template_id = pushed.json()["template"]["id"]
            chat_id = (await api.post("/chats", json={})).json()["id"]
            results = await asyncio.wait_for(
                asyncio.gather(
                    *(
                        create_via_url((a if i % 2 else b).url, token, chat_id, template_id)
                        for i in range(20)
                    )
                ),
                timeout=120,
            )
            workspaces = (await api.get("/workspaces")).json()
            chat = (await api.get(f"/chats/{chat_id}")).json()
    assert len(workspaces) == 1, workspaces
    (workspace,) = workspaces
    assert chat["workspace_id"] == workspace["id"]
    created = [r for r in results if r["created"]]
    assert len(created) == 1
    assert created[0]["workspace_name"] == f"admin/{workspace['name']}"
    others = [r for r in results if not r["created"]]
    assert all(r["workspace_name"] == workspace["name"] for r in others)
    assert all(r["status"] == "already_exists" for r in others)
