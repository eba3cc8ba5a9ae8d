"""``berth mcp`` over stdio, and ``berth chats``, against a running server.

The bridge is started as a real subprocess by the official MCP client (stdio
transport); it must list the server's tools and forward calls unchanged.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from typer.testing import CliRunner

from berth.cli.app import app
from tests.conftest import LiveServer

pytestmark = pytest.mark.anyio

BERTH = Path(sys.executable).with_name("berth")


def berth_cli(server: LiveServer, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--url", server.url, "--token", server.admin_token])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_chats_create_list_show(live_server: LiveServer) -> None:
    created = json.loads(
        berth_cli(live_server, "chats", "create", "--title", "hello", "-o", "json")
    )
    assert created["title"] == "hello"
    assert created["mcp_path"] == f"/api/v1/chats/{created['id']}/mcp"
    listed = json.loads(berth_cli(live_server, "chats", "list", "-o", "json"))
    assert [c["id"] for c in listed] == [created["id"]]
    shown = json.loads(berth_cli(live_server, "chats", "show", created["id"], "-o", "json"))
    assert shown == created
    missing = CliRunner().invoke(
        app, ["chats", "show", "nope", "--url", live_server.url, "--token", live_server.admin_token]
    )
    assert missing.exit_code == 1
    assert "chat not found" in missing.stderr


@pytest.mark.skipif(not BERTH.exists(), reason=f"the berth console script is not at {BERTH}")
async def test_the_stdio_bridge_forwards_to_the_chat(live_server: LiveServer) -> None:
    chat = json.loads(berth_cli(live_server, "chats", "create", "-o", "json"))
    params = StdioServerParameters(
        command=str(BERTH),
        args=[
            "mcp",
            "--chat",
            chat["id"],
            "--url",
            live_server.url,
            "--token",
            live_server.admin_token,
        ],
    )
    async with Client(params) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "create_workspace" in tools
        assert tools["create_workspace"].annotations is not None
        assert tools["create_workspace"].annotations.idempotent_hint is True
        result = await client.call_tool("create_workspace", {"template_id": "not-a-uuid"})
    assert result.is_error
    assert getattr(result.content[0], "text", "") == "invalid template_id: invalid UUID length: 10"
