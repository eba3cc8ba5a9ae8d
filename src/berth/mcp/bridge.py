"""``berth mcp``: a stdio MCP server that forwards to a running berth server's chat.

Local coding agents (Claude Code, Cursor, …) speak MCP over stdio; berth serves MCP
over streamable HTTP per chat. The bridge lists the remote tools and forwards each call
unchanged, so the tools, their strings and their results are the server's own; the
server's progress notifications are passed on to the local client that asked for them.
"""

from __future__ import annotations

from typing import Any

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.stdio import stdio_server

import berth

TOOL_CALL_TIMEOUT_SECONDS = 30 * 60.0
"""Long enough for create_workspace's longest wait (a 10-minute build, then scripts)."""


def chat_mcp_url(server_url: str, chat_id: str) -> str:
    return f"{server_url.rstrip('/')}/api/v1/chats/{chat_id}/mcp"


def forwarding_server(remote: Client) -> Server[Any]:
    """An MCP server whose tools are ``remote``'s."""

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        del ctx
        return await remote.list_tools(cursor=params.cursor if params else None)

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        wants_progress = ctx.meta is not None and ctx.meta.get("progress_token") is not None

        async def forward(progress: float, total: float | None, message: str | None) -> None:
            await ctx.session.report_progress(progress, total, message)

        return await remote.call_tool(
            params.name,
            params.arguments,
            read_timeout_seconds=TOOL_CALL_TIMEOUT_SECONDS,
            progress_callback=forward if wants_progress else None,
        )

    return Server(
        "berth", version=berth.__version__, on_list_tools=list_tools, on_call_tool=call_tool
    )


def http_client(token: str) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx2.Timeout(30.0, read=TOOL_CALL_TIMEOUT_SECONDS),
    )


async def run_bridge(server_url: str, token: str, chat_id: str) -> None:
    """Serve MCP on stdin/stdout until the client closes stdin."""
    url = chat_mcp_url(server_url, chat_id)
    async with (
        http_client(token) as http,
        Client(streamable_http_client(url, http_client=http)) as remote,
    ):
        server = forwarding_server(remote)
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
