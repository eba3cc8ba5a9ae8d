"""End to end: the official MCP client over real HTTP against a running berth server.

The whole chat flow of issue 4 on the local backend (bubblewrap where installed,
``isolation: none`` otherwise): list → read → create → execute → write → edit → read
back → stop → create (says stopped) → start. Plus authentication: another user's
token gets 404, and a bad argument is a tool error, not a protocol error.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncGenerator
from typing import Any, cast

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import LiveServer

pytestmark = pytest.mark.anyio

TEMPLATE = """\
name: e2e
display_name: End to end
description: A sandboxed Python workspace for the end-to-end test.
backend:
  type: local
  isolation: {isolation}
agents:
  - name: main
    chat: true
    directory: ~/project
    scripts:
      - display_name: setup
        blocks_login: true
        script: mkdir -p ~/project && echo ready
"""


def api(server: LiveServer, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token or server.admin_token}"}
    return httpx.AsyncClient(base_url=f"{server.url}/api/v1", headers=headers, timeout=60)


async def mcp_client(server: LiveServer, chat_id: str, token: str) -> AsyncGenerator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120) as http,
        Client(
            streamable_http_client(f"{server.url}/api/v1/chats/{chat_id}/mcp", http_client=http)
        ) as client,
    ):
        yield client


async def call(
    client: Client, name: str, arguments: dict[str, Any] | None = None
) -> dict[str, Any]:
    result = await client.call_tool(name, arguments or {})
    assert not result.is_error, result.content
    structured: Any = result.structured_content
    assert isinstance(structured, dict)
    return cast(dict[str, Any], structured)


@pytest.mark.spec("cw.result", "sw.flow", "stw.flow", "cw.existing.stopped")
async def test_chat_flow_over_streamable_http(live_server: LiveServer) -> None:
    isolation = "bwrap" if shutil.which("bwrap") else "none"
    async with api(live_server) as http:
        pushed = await http.post(
            "/templates", json={"files": {"template.yaml": TEMPLATE.format(isolation=isolation)}}
        )
        assert pushed.status_code == 201, pushed.text
        template_id = pushed.json()["template"]["id"]
        chat = (await http.post("/chats", json={"title": "e2e"})).json()
    async for client in mcp_client(live_server, chat["id"], live_server.admin_token):
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"create_workspace", "execute", "read_file", "write_file", "edit_files"} <= names

        listed = await call(client, "list_templates", {"query": "e2e"})
        assert [t["id"] for t in listed["templates"]] == [template_id]
        read = await call(client, "read_template", {"template_id": template_id})
        assert read["template"]["name"] == "e2e"

        created = await call(
            client, "create_workspace", {"template_id": template_id, "name": "flow"}
        )
        assert created["created"] is True
        assert created["workspace_name"] == "admin/flow"
        assert "agent_status" not in created
        assert "startup_scripts" not in created

        ran = await call(client, "execute", {"command": "python3 -c 'print(6*7)'"})
        assert ran["success"] is True
        assert ran["exit_code"] == 0
        assert ran["output"].strip() == "42"

        assert await call(
            client, "write_file", {"path": "notes.txt", "content": "alpha\nbeta\n"}
        ) == {"ok": True}
        edited = await call(
            client,
            "edit_files",
            {"edits": [{"path": "notes.txt", "old_text": "beta", "new_text": "gamma"}]},
        )
        assert edited["ok"] is True
        assert "+gamma" in edited["files"][0]["diff"]
        back = await call(client, "read_file", {"path": "notes.txt"})
        assert back["content"] == "1\talpha\n2\tgamma"

        stopped = await call(client, "stop_workspace")
        assert stopped["stopped"] is True
        again = await call(client, "create_workspace", {"template_id": template_id})
        assert again == {
            "created": False,
            "workspace_name": "flow",
            "status": "stopped",
            "message": "workspace is stopped; use start_workspace to start it",
        }
        started = await call(client, "start_workspace")
        assert started["started"] is True
        assert "build_id" in started
        survived = await call(client, "read_file", {"path": "notes.txt"})
        assert survived["content"] == "1\talpha\n2\tgamma"


async def test_another_users_token_gets_404_and_bad_arguments_are_tool_errors(
    live_server: LiveServer,
) -> None:
    async with api(live_server) as http:
        chat = (await http.post("/chats", json={})).json()
        assert (await http.post("/users", json={"username": "eve"})).status_code == 201
        eve_token = (await http.post("/users/eve/tokens", json={"name": "t"})).json()["token"]
    url = f"{live_server.url}/api/v1/chats/{chat['id']}/mcp"
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=30) as raw:
        eve = await raw.post(
            url, json=body, headers={**headers, "Authorization": f"Bearer {eve_token}"}
        )
        missing = await raw.post(
            f"{live_server.url}/api/v1/chats/00000000-0000-4000-8000-000000000000/mcp",
            json=body,
            headers={**headers, "Authorization": f"Bearer {live_server.admin_token}"},
        )
        anonymous = await raw.post(url, json=body, headers=headers)
    assert eve.status_code == 404
    assert eve.json() == missing.json() == {"message": "chat not found"}
    assert anonymous.status_code == 401
    async for client in mcp_client(live_server, chat["id"], live_server.admin_token):
        result = await client.call_tool("create_workspace", {"template_id": 7, "surprise": True})
        assert result.is_error
        text = result.content[0]
        assert getattr(text, "text", "").startswith("invalid arguments:")
        unknown = await client.call_tool("no_such_tool", {})
        assert unknown.is_error
