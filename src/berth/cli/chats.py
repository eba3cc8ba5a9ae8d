"""``berth chats create|list|show``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from berth.cli.common import (
    JSON,
    OrganizationOption,
    OutputOption,
    TokenOption,
    UrlOption,
    connect,
    new_app,
)
from berth.cli.output import fmt_time, print_fields, print_listing, print_models_json

if TYPE_CHECKING:
    from berth.client import Chat

__all__ = ["app"]

app = new_app("Chats: each has its own workspace and MCP endpoint.")


def _fields(chat: Chat) -> list[tuple[str, str]]:
    return [
        ("id", str(chat.id)),
        ("title", chat.title or "-"),
        ("workspace", str(chat.workspace_id or "-")),
        ("build", str(chat.build_id or "-")),
        ("MCP path", chat.mcp_path),
        ("created", fmt_time(chat.created_at)),
    ]


@app.command("create")
def create(
    title: Annotated[str, typer.Option(help="A title for the chat.")] = "",
    organization: OrganizationOption = None,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Create a chat; connect an MCP client to its MCP path."""
    with connect(url, token) as client:
        chat = client.create_chat(title=title, organization=organization)
    if output == JSON:
        print_models_json(chat)
        return
    print_fields(_fields(chat), title="Created chat")


@app.command("list")
def list_chats(
    output: OutputOption = "table", url: UrlOption = None, token: TokenOption = None
) -> None:
    """List your chats, newest first."""
    with connect(url, token) as client:
        chats = client.list_chats()
    print_listing(chats, output, ["ID", "TITLE", "WORKSPACE", "CREATED"], _row)


def _row(chat: Chat) -> list[str]:
    return [
        str(chat.id),
        chat.title or "-",
        str(chat.workspace_id or "-"),
        fmt_time(chat.created_at),
    ]


@app.command("show")
def show(
    chat: Annotated[str, typer.Argument(help="The chat id.")],
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Show a chat and its workspace binding."""
    with connect(url, token) as client:
        found = client.get_chat(chat)
    if output == JSON:
        print_models_json(found)
        return
    print_fields(_fields(found), title=f"Chat {found.id}")
