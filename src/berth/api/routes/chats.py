"""Chats: create, list, show, and a stream of chat-updated events for UIs."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, status
from fastapi.sse import EventSourceResponse, ServerSentEvent

from berth.api.deps import ChatDep, CtxDep, RuntimeDep
from berth.api.schemas import ChatOut, CreateChatRequest
from berth.events import SubscriptionClosed, messages
from berth.services import chats, refs

router = APIRouter(tags=["chats"])

WATCH_RECHECK_SECONDS = 15.0


@router.post("/chats", status_code=status.HTTP_201_CREATED)
async def create_chat(body: CreateChatRequest, ctx: CtxDep) -> ChatOut:
    return ChatOut.of(
        await chats.create_chat(ctx, title=body.title, organization=body.organization)
    )


@router.get("/chats")
async def list_chats(ctx: CtxDep) -> list[ChatOut]:
    return [ChatOut.of(c) for c in await chats.list_chats(ctx)]


@router.get("/chats/{chat}")
async def get_chat(chat: ChatDep) -> ChatOut:
    return ChatOut.of(chat)


@router.get("/chats/{chat}/watch", response_class=EventSourceResponse)
async def watch_chat(
    chat: ChatDep, ctx: CtxDep, runtime: RuntimeDep
) -> AsyncIterator[ServerSentEvent]:
    """Server-Sent Events: ``chat`` with the chat's current state, then on every update."""
    current = chat
    async with runtime.follow(messages.chat(current.id)) as events:
        while True:
            current = await refs.chat(ctx, current.id)
            yield ServerSentEvent(event="chat", data=ChatOut.of(current).model_dump(mode="json"))
            try:
                await events.get(timeout=WATCH_RECHECK_SECONDS)
            except SubscriptionClosed:
                return  # the server is stopping
