"""Chats: a conversation with an owner and an organization, bound to at most one workspace.

Besides creating and listing chats, this is the state the chat tools keep on a chat:

- the **workspace lease** ([cw.serialize]): create, start and stop of one chat run one
  at a time across every server process, each holding ``chats.lock_holder`` for the
  whole call (:func:`hold_lease`) — a renewed lease rather than a transaction-long row
  lock, which would stall SQLite's single writer for the whole call;
- the **binding** ([cw.bind]): the chat's workspace, build and agent
  (:func:`bind_workspace`), announced with a chat-updated event;
- the **chat's workspace as it is now** (:func:`chat_workspace`), read in one
  transaction: what the existing-workspace check and every workspace tool start from.

The chat tools call these as the ``chat-tools`` system actor; the chat's owner is
checked at the edge (the MCP endpoint authenticates the owner for the chat).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from berth.errors import InvalidInput, Validation
from berth.events import listening, messages, pause
from berth.records import Chat, ProvisionerJob, Workspace, WorkspaceAgent, WorkspaceBuild
from berth.services.base import Ctx
from berth.services.refs import organization_in

log = logging.getLogger("berth.chats")

MAX_TITLE = 256


async def create_chat(ctx: Ctx, *, title: str = "", organization: str | None = None) -> Chat:
    if len(title) > MAX_TITLE:
        raise InvalidInput(
            "Invalid chat.", validations=[Validation("title", f"at most {MAX_TITLE} characters")]
        )
    owner = ctx.actor.user_id
    if owner is None:
        raise InvalidInput("Chats belong to users.")
    if not organization and len(ctx.actor.organizations) == 1:
        # A user of exactly one organization means that one, default or not.
        (only,) = ctx.actor.organizations
        organization = str(only)
    async with ctx.write() as store:
        org = await organization_in(store, organization)
        return await store.insert_chat(owner_id=owner, organization_id=org.id, title=title)


async def list_chats(ctx: Ctx) -> list[Chat]:
    if ctx.actor.user_id is None:
        return []
    async with ctx.read() as store:
        return await store.list_chats_by_owner(ctx.actor.user_id)


async def bound_chat(ctx: Ctx, workspace: Workspace) -> Chat | None:
    """The chat ``workspace`` is bound to, if any (a chat binds a workspace of the chat's
    owner), as the caller may see it: one row, however many chats the owner has."""
    async with ctx.read() as store:
        return await store.get_chat_by_owner_and_workspace(workspace.owner_id, workspace.id)


# --- the chat tools' state ------------------------------------------------------------


async def load_chat(ctx: Ctx, chat_id: uuid.UUID) -> Chat | None:
    async with ctx.read() as store:
        return await store.get_chat_by_id(chat_id)


@contextlib.asynccontextmanager
async def hold_lease(
    ctx: Ctx, chat_id: uuid.UUID, *, lease: dt.timedelta, retry: dt.timedelta
) -> AsyncGenerator[None]:
    """[cw.serialize] Hold the chat's workspace lease for the block, across processes.

    Waits for the lease (waking when its holder releases it, re-trying every ``retry``
    in any case), renews it every third of ``lease`` while the block runs, and releases
    it after. :class:`~berth.errors.NotFound` when the chat does not exist.
    """
    holder = uuid.uuid4().hex
    async with listening(ctx.bus, messages.chat_lock(chat_id)) as events:
        while not await _try_lock(ctx, chat_id, holder, lease):
            await pause(events, retry.total_seconds())
    renewer = asyncio.create_task(_renew(ctx, chat_id, holder, lease))
    try:
        yield
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        await _release(ctx, chat_id, holder)


async def _try_lock(ctx: Ctx, chat_id: uuid.UUID, holder: str, lease: dt.timedelta) -> bool:
    async with ctx.write() as store:
        return await store.try_lock_chat(chat_id, holder, ctx.clock.now() + lease)


async def _renew(ctx: Ctx, chat_id: uuid.UUID, holder: str, lease: dt.timedelta) -> None:
    while True:
        await asyncio.sleep(lease.total_seconds() / 3)
        try:
            if not await _try_lock(ctx, chat_id, holder, lease):
                log.error("chat %s: lost the workspace lease", chat_id)
        except Exception:
            log.warning("chat %s: could not renew the workspace lease", chat_id, exc_info=True)


async def _release(ctx: Ctx, chat_id: uuid.UUID, holder: str) -> None:
    """Give the lease up (if ``holder`` still has it) and wake the calls queued on it."""
    try:
        async with ctx.write() as store:
            await store.release_chat_lock(chat_id, holder)
    except Exception:
        log.warning("chat %s: could not release the workspace lease", chat_id, exc_info=True)
        return
    await ctx.publish(messages.chat_lock(chat_id), messages.ChatLockReleased())


async def bind_workspace(
    ctx: Ctx, chat_id: uuid.UUID, workspace_id: uuid.UUID, build_id: uuid.UUID | None
) -> Chat | None:
    """[cw.bind] Persist the chat's binding (agent unset) and announce it."""
    async with ctx.write() as store:
        chat = await store.update_chat_workspace_binding(
            chat_id, workspace_id=workspace_id, build_id=build_id, agent_id=None
        )
    if chat is not None:
        await announce_chat(ctx, chat)
    return chat


async def announce_chat(ctx: Ctx, chat: Chat) -> None:
    """Tell chat watchers (UIs streaming build logs) that the chat changed."""
    await ctx.publish(messages.chat(chat.id), messages.ChatUpdated())


@dataclass(frozen=True, slots=True)
class ChatWorkspace:
    """A chat and its workspace as far as they could be read, in one transaction.

    Read front to back: each part is ``None`` when it is missing, and then so is every
    part after it (``agents`` empty). The tools turn the first missing part into the
    reference's error text, or into "proceed to create".
    """

    chat: Chat | None
    workspace: Workspace | None = None
    build: WorkspaceBuild | None = None
    """The workspace's latest build."""
    job: ProvisionerJob | None = None
    agents: list[WorkspaceAgent] = field(default_factory=lambda: list[WorkspaceAgent]())
    """The latest build's agents."""


async def chat_workspace(ctx: Ctx, chat_id: uuid.UUID) -> ChatWorkspace:
    async with ctx.read() as store:
        chat = await store.get_chat_by_id(chat_id)
        if chat is None or chat.workspace_id is None:
            return ChatWorkspace(chat)
        latest = await store.get_workspace_with_latest_build(chat.workspace_id)
    if latest is None:
        return ChatWorkspace(chat)
    if latest.workspace.deleted:
        return ChatWorkspace(chat, latest.workspace)
    return ChatWorkspace(chat, latest.workspace, latest.build, latest.job, latest.agents)
