"""Read models of chats for the web UI: a chat with the workspace bound to it, as it is now.

The binding is the chat tools' ([cw.bind], :mod:`berth.services.chats`); this module only
reads it back, as the page's user, with the workspace's status, latest build and agents
(:class:`~berth.services.workspace_views.WorkspaceView`). A bound workspace that has since
been deleted is told apart from a chat that never had one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from berth.errors import NotFound
from berth.records import Chat
from berth.services import chats, refs, workspace_views
from berth.services.base import Ctx
from berth.services.workspace_views import WorkspaceView


@dataclass(frozen=True, slots=True)
class ChatView:
    chat: Chat
    workspace: WorkspaceView | None
    """The bound workspace, unless there is none or it is deleted."""

    @property
    def workspace_gone(self) -> bool:
        """Bound to a workspace that is deleted now."""
        return self.chat.workspace_id is not None and self.workspace is None


async def list_chat_views(ctx: Ctx) -> list[ChatView]:
    """The actor's chats, newest first (as the store lists them), each with its bound workspace.

    The workspaces come from one listing of the actor's own (a chat's workspace is its
    owner's), not one read per chat.
    """
    own = await chats.list_chats(ctx)
    bound = {c.workspace_id for c in own if c.workspace_id is not None}
    views: dict[uuid.UUID, WorkspaceView] = {}
    if bound:
        views = {
            v.workspace.id: v
            for v in await workspace_views.list_workspaces(ctx)
            if v.workspace.id in bound
        }
    return [ChatView(c, views.get(c.workspace_id) if c.workspace_id else None) for c in own]


async def get_chat_view(ctx: Ctx, ref: str | uuid.UUID) -> ChatView:
    """One chat (by id) and its bound workspace; NotFound when the actor may not see it."""
    chat = await refs.chat(ctx, ref)
    if chat.workspace_id is None:
        return ChatView(chat, None)
    try:
        view = await workspace_views.get_workspace(ctx, chat.workspace_id)
    except NotFound:  # deleted since it was bound
        return ChatView(chat, None)
    return ChatView(chat, view)
