"""The chat side of the workspace tools: the per-chat lock and the workspace binding.

[cw.serialize] create, start and stop of one chat run one at a time, across every
server process: each holds a lease on the chat row (``chats.lock_holder``) for the
whole call, renewed while it runs. A waiting call wakes when the lease is released
(``chat-lock:<id>`` event) and re-tries at ``chat_lock_retry`` in any case.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator

from berth.db.authz import AuthzStore
from berth.domain.actors import as_chat_tools
from berth.events import publish_quietly
from berth.records import Chat
from berth.tools.context import ChatContext

log = logging.getLogger("berth.tools")


async def _try_lock(ctx: ChatContext, holder: str) -> bool:
    expires = ctx.clock.now() + ctx.timings.chat_lock_lease
    async with ctx.db.write() as raw:
        return await AuthzStore(raw, as_chat_tools()).try_lock_chat(ctx.chat_id, holder, expires)


async def _renew(ctx: ChatContext, holder: str) -> None:
    while True:
        await asyncio.sleep(ctx.timings.chat_lock_lease.total_seconds() / 3)
        try:
            if not await _try_lock(ctx, holder):
                log.error("chat %s: lost the workspace lease", ctx.chat_id)
        except Exception:
            log.warning("chat %s: could not renew the workspace lease", ctx.chat_id, exc_info=True)


@contextlib.asynccontextmanager
async def chat_lock(ctx: ChatContext) -> AsyncGenerator[None]:
    """Hold the chat's workspace lease for the duration of the block."""
    holder = uuid.uuid4().hex
    channel = f"chat-lock:{ctx.chat_id}"
    subscription = ctx.bus.subscribe(channel) if ctx.bus is not None else None
    async with subscription or contextlib.nullcontext() as events:
        while not await _try_lock(ctx, holder):
            retry = ctx.timings.chat_lock_retry.total_seconds()
            if events is None:
                await asyncio.sleep(retry)
            else:
                await events.get(timeout=retry)
    renewer = asyncio.create_task(_renew(ctx, holder))
    try:
        yield
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        await _release(ctx, holder, channel)


async def _release(ctx: ChatContext, holder: str, channel: str) -> None:
    try:
        async with ctx.db.write() as raw:
            await AuthzStore(raw, as_chat_tools()).release_chat_lock(ctx.chat_id, holder)
    except Exception:
        log.warning("chat %s: could not release the workspace lease", ctx.chat_id, exc_info=True)
        return
    await publish_quietly(ctx.bus, channel, {"type": "released"})


async def load_chat(ctx: ChatContext) -> Chat | None:
    async with ctx.db.read() as raw:
        return await AuthzStore(raw, as_chat_tools()).get_chat_by_id(ctx.chat_id)


async def bind_workspace(
    ctx: ChatContext, workspace_id: uuid.UUID, build_id: uuid.UUID | None
) -> None:
    """[cw.bind] Persist the chat's binding (agent unset) and fire chat-updated.

    A failure is logged and the call goes on, as in the reference.
    """
    try:
        async with ctx.db.write() as raw:
            chat = await AuthzStore(raw, as_chat_tools()).update_chat_workspace_binding(
                ctx.chat_id, workspace_id=workspace_id, build_id=build_id, agent_id=None
            )
    except Exception:
        log.exception("chat %s: failed to persist the workspace binding", ctx.chat_id)
        return
    if chat is not None:
        await chat_updated(ctx, chat)


async def chat_updated(ctx: ChatContext, chat: Chat) -> None:
    """Tell listeners (UIs streaming build logs) that the chat changed."""
    await publish_quietly(ctx.bus, f"chat:{chat.id}", {"type": "chat-updated"})
    if ctx.on_chat_updated is not None:
        await ctx.on_chat_updated(chat)


async def refire_chat_updated(ctx: ChatContext) -> None:
    """[cw.refire] Fire chat-updated with the re-read chat, once the agent is ready."""
    chat = await load_chat(ctx)
    if chat is not None:
        await chat_updated(ctx, chat)
