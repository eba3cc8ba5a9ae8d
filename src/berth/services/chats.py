"""Chats: a conversation with an owner and an organization, bound to at most one workspace."""

from __future__ import annotations

import uuid

from berth.db.authz import not_found
from berth.db.policy import Kind
from berth.errors import InvalidInput, Validation
from berth.records import Chat
from berth.services.base import Ctx, parse_uuid, resolve_organization

MAX_TITLE = 256


async def create_chat(ctx: Ctx, *, title: str = "", organization: str | None = None) -> Chat:
    if len(title) > MAX_TITLE:
        raise InvalidInput(
            "Invalid chat.", validations=[Validation("title", f"at most {MAX_TITLE} characters")]
        )
    owner = ctx.actor.user_id
    if owner is None:
        raise InvalidInput("Chats belong to users.")
    async with ctx.write() as store:
        org = await resolve_organization(store, organization)
        return await store.insert_chat(owner_id=owner, organization_id=org.id, title=title)


async def get_chat(ctx: Ctx, ref: str | uuid.UUID) -> Chat:
    chat_id = ref if isinstance(ref, uuid.UUID) else parse_uuid(ref)
    async with ctx.read() as store:
        chat = None if chat_id is None else await store.get_chat_by_id(chat_id)
    if chat is None:
        raise not_found(Kind.CHAT)
    return chat


async def list_chats(ctx: Ctx) -> list[Chat]:
    if ctx.actor.user_id is None:
        return []
    async with ctx.read() as store:
        return await store.list_chats_by_owner(ctx.actor.user_id)
