"""``berth mcp``: the chat tools over stdio, for local coding agents.

``berth mcp --chat ID`` bridges one chat; without ``--chat`` it creates a chat first
and says which on stderr (stdout belongs to the MCP protocol).
"""

from __future__ import annotations

from typing import Annotated

import typer

from berth.cli.common import TokenOption, UrlOption, connect
from berth.cli.credentials import resolve


def mcp(
    chat: Annotated[
        str | None,
        typer.Option(help="The chat to serve; a new chat when omitted.", show_default=False),
    ] = None,
    title: Annotated[str, typer.Option(help="Title of a new chat.")] = "berth mcp",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Serve the chat tools over MCP on stdin/stdout, forwarding to the server."""
    import anyio

    from berth.mcp.bridge import run_bridge

    target = resolve(url, token)
    if chat is None:
        with connect(target.url, target.token) as client:
            created = client.create_chat(title=title)
        chat = str(created.id)
        typer.echo(f"berth mcp: created chat {chat}", err=True)
    else:
        with connect(target.url, target.token) as client:
            client.get_chat(chat)  # a clear error now, rather than a failed handshake later
    anyio.run(run_bridge, target.url, target.token, chat)
