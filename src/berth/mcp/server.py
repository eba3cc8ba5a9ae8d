"""The chat tools as an MCP server (lowlevel ``mcp`` SDK ``Server``), transport-neutral.

Tool results become MCP results exactly as DESIGN §11 says: the JSON as text content
plus the same object as structured content; tool errors are results with
``isError: true``. The chat a call belongs to comes from the transport: the HTTP
endpoint puts a :class:`~berth.tools.context.ChatContext` into the request scope, the
stdio bridge passes one at construction. A call that carries a progress token gets
``notifications/progress`` on its own response stream while a long tool waits
(:mod:`berth.tools.progress`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server

import berth
from berth.tools.context import ChatContext
from berth.tools.progress import SendProgress, reporting
from berth.tools.registry import TOOLS, ToolSpec, call_tool
from berth.tools.result import ToolResult

SCOPE_KEY = "berth.chat"


def mcp_tool(spec: ToolSpec) -> types.Tool:
    return types.Tool(
        name=spec.name,
        description=spec.description,
        input_schema=spec.input_schema(),
        annotations=types.ToolAnnotations(
            read_only_hint=spec.hints.read_only,
            destructive_hint=spec.hints.destructive,
            idempotent_hint=spec.hints.idempotent,
            open_world_hint=False,
        ),
    )


@functools.cache
def tool_list() -> types.ListToolsResult:
    """Every tool, built once: the tools never change while the server runs (building
    the twelve JSON schemas on each listing cost ~14% of the server's loop under load)."""
    return types.ListToolsResult(tools=[mcp_tool(spec) for spec in TOOLS])


@functools.cache
def _input_schemas() -> dict[str, dict[str, Any]]:
    return {tool.name: tool.input_schema for tool in tool_list().tools}


def tool_input_schema(name: str) -> Mapping[str, Any] | None:
    """A tool's input schema by name, for the SDK's check of a call's ``Mcp-Param-*``
    headers; without it the SDK runs a whole ``tools/list`` request per call to find it."""
    return _input_schemas().get(name)


def mcp_result(result: ToolResult) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=result.text)],
        structured_content=result.structured,
        is_error=result.is_error,
    )


def chat_from_scope(ctx: ServerRequestContext[Any, Any]) -> ChatContext:
    request: Any = ctx.request
    chat: Any = None if request is None else request.scope.get(SCOPE_KEY)
    if not isinstance(chat, ChatContext):
        raise RuntimeError("no chat is attached to this MCP request")
    return chat


def progress_sender(ctx: ServerRequestContext[Any, Any]) -> SendProgress | None:
    """Progress notifications for this request, if its client asked for them."""
    if ctx.meta is None or ctx.meta.get("progress_token") is None:
        return None

    async def send(progress: float, message: str) -> None:
        await ctx.session.report_progress(progress, None, message)

    return send


def build_server(
    resolve_chat: Callable[[ServerRequestContext[Any, Any]], ChatContext],
) -> Server[Any]:
    """An MCP server exposing every chat tool for the chat ``resolve_chat`` returns."""

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        del ctx, params
        return tool_list()

    async def call(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        chat = resolve_chat(ctx)
        arguments: dict[str, Any] = dict(params.arguments or {})
        async with reporting(chat, params.name, progress_sender(ctx)):
            result = await call_tool(chat, params.name, arguments)
        return mcp_result(result)

    return Server(
        "berth",
        version=berth.__version__,
        instructions="berth gives this chat a development workspace: list_templates, "
        "read_template, create_workspace, then execute and the file tools.",
        on_list_tools=list_tools,
        on_call_tool=call,
        get_tool_input_schema=tool_input_schema,
    )
