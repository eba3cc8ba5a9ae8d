"""``/api/v1/chats/{chat_id}/mcp``: the chat tools over MCP streamable HTTP.

Authenticated as the chat's owner: another user's token gets the same 404 as a chat
that does not exist. Before anything else, a request whose ``Host`` or ``Origin`` names
another server is refused with a 403 (DNS rebinding; :mod:`berth.api.hosts`). The
session manager is stateless, so any replica can answer any request of a chat;
per-chat serialization is the chat-row lease, not process state.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from berth.api.deps import Runtime
from berth.api.errors import error_response
from berth.api.hosts import AllowedHosts
from berth.domain.actors import as_chat_tools
from berth.errors import BerthError, Unauthenticated
from berth.mcp.server import SCOPE_KEY, build_server, chat_from_scope
from berth.services import siteconfig
from berth.services.accounts import authenticate_chat
from berth.tools.context import ChatContext
from berth.tools.files import MCP_REQUEST_MAX_BYTES

MCP_PATH = "/api/v1/chats/{chat_id}/mcp"


def session_manager() -> StreamableHTTPSessionManager:
    # The SDK's default request limit (4 MiB) would make a large write_file an HTTP 413;
    # this one fits any content the tool accepts, which refuses larger with a tool error.
    return StreamableHTTPSessionManager(
        app=build_server(chat_from_scope),
        stateless=True,
        json_response=False,
        max_request_body_size=MCP_REQUEST_MAX_BYTES,
    )


def allowlist_reader(runtime: Runtime) -> Callable[[], Awaitable[frozenset[uuid.UUID]]]:
    async def read() -> frozenset[uuid.UUID]:
        return await siteconfig.chat_template_allowlist(runtime.ctx(as_chat_tools()))

    return read


async def chat_context(runtime: Runtime, request: Request) -> ChatContext:
    """The tool context of the chat in the path, for the token's user; 401/404 otherwise."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "Authentication required.", detail="Send an API token as 'Authorization: Bearer …'."
        )
    try:
        chat_id = uuid.UUID(str(request.path_params.get("chat_id", "")))
    except ValueError:
        chat_id = None  # the token is checked first all the same: 401 before 404
    chat = await authenticate_chat(runtime.db, token.strip(), chat_id)
    return ChatContext(
        db=runtime.db,
        chat_id=chat.id,
        organization_id=chat.organization_id,
        owner_id=chat.owner_id,
        bus=runtime.bus,
        gateway=runtime.gateway,
        allowlist=allowlist_reader(runtime),
    )


class ChatMCPEndpoint:
    """ASGI app: check the Host and Origin, authenticate, attach the chat, hand over to
    the MCP session manager."""

    def __init__(self, manager: StreamableHTTPSessionManager, hosts: AllowedHosts) -> None:
        self.manager = manager
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        runtime: Runtime = request.app.state.runtime
        try:
            self.hosts.check(scope)
            scope[SCOPE_KEY] = await chat_context(runtime, request)
        except BerthError as exc:
            await error_response(exc)(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)
