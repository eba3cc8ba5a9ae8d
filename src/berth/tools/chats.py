"""The chat side of the workspace tools: the per-chat lease, the binding, chat-updated.

The state is :mod:`berth.services.chats`'; what is the tools' is the reference's
control flow around it: a failed binding is logged and the call goes on [cw.bind], and
chat-updated also reaches the context's callback [cw.refire].
"""

from __future__ import annotations

import contextlib
import logging
import uuid

from berth.records import Chat
from berth.services import chats
from berth.tools.context import ChatContext

log = logging.getLogger("berth.tools")


def chat_lock(ctx: ChatContext) -> contextlib.AbstractAsyncContextManager[None]:
    """[cw.serialize] The chat's workspace lease, held for the block."""
    timings = ctx.timings
    return chats.hold_lease(
        ctx.services, ctx.chat_id, lease=timings.chat_lock_lease, retry=timings.chat_lock_retry
    )


async def bind_workspace(
    ctx: ChatContext, workspace_id: uuid.UUID, build_id: uuid.UUID | None
) -> None:
    """[cw.bind] Persist the chat's binding (agent unset) and fire chat-updated.

    A failure is logged and the call goes on, as in the reference.
    """
    try:
        chat = await chats.bind_workspace(ctx.services, ctx.chat_id, workspace_id, build_id)
    except Exception:
        log.exception("chat %s: failed to persist the workspace binding", ctx.chat_id)
        return
    if chat is not None and ctx.on_chat_updated is not None:
        await ctx.on_chat_updated(chat)


async def chat_updated(ctx: ChatContext, chat: Chat) -> None:
    """Tell listeners (UIs streaming build logs) that the chat changed."""
    await chats.announce_chat(ctx.services, chat)
    if ctx.on_chat_updated is not None:
        await ctx.on_chat_updated(chat)


async def refire_chat_updated(ctx: ChatContext) -> None:
    """[cw.refire] Fire chat-updated with the re-read chat, once the agent is ready."""
    chat = await chats.load_chat(ctx.services, ctx.chat_id)
    if chat is not None:
        await chat_updated(ctx, chat)
