"""The chat pages: ``/chats`` and ``/chats/{id}`` (DESIGN §11, §14), and the chat page's
live stream ``/chats/{id}/live``.

A chat is read as the logged-in user (:mod:`berth.services.chat_views`), so another
user's chat is the same 404 page as a missing one, for the page and for its stream.

The stream is Server-Sent Events whose data is HTML: one event per part of the page
(``workspace``, ``build``, ``agents``), each the fragment the page itself includes, which
the htmx SSE extension swaps in (``sse-swap``). It follows what the API's
``/chats/{chat}/watch`` follows — the chat's channel, so a new binding shows — and also
the bound workspace's channel and its latest build's job, so the status, the build and
the agents move as they change. A part is sent again only when its HTML changed. Every
wait is bounded (:data:`RECHECK_SECONDS`: agents' connection states change with time
alone), and each wake re-reads the session: a logout, a suspension or an expiry ends
the stream at the next event or recheck at the latest, with a ``close`` event (the
page's ``sse-close``) so the browser does not reconnect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from berth.errors import NotFound, Unauthenticated
from berth.events import SubscriptionClosed, messages
from berth.services import chat_views, web_auth
from berth.services.chat_views import ChatView
from berth.web.render import fragment, page
from berth.web.session import SessionDep, runtime_of

router = APIRouter(include_in_schema=False)

RECHECK_SECONDS = 15.0
"""The longest the stream waits without an event before it reads the chat again."""

PARTS = {
    "workspace": "_chat_workspace.html.j2",
    "build": "_chat_build.html.j2",
    "agents": "_chat_agents.html.j2",
}
"""The live parts of the chat page: the SSE event name and the fragment it carries."""


async def _chat_view(chat_id: str, session: SessionDep) -> ChatView:
    return await chat_views.get_chat_view(session.ctx, chat_id)


ChatViewDep = Annotated[ChatView, Depends(_chat_view)]
"""The ``{chat_id}`` path parameter as the user sees it; resolved before a stream starts,
so another user's chat is a 404 page, not an empty stream."""


@router.get("/chats")
async def chat_list(session: SessionDep) -> Response:
    views = await chat_views.list_chat_views(session.ctx)
    return page("chats.html.j2", title="Chats", session=session, views=views)


@router.get("/chats/{chat_id}")
async def chat_page(cv: ChatViewDep, session: SessionDep) -> Response:
    return page("chat.html.j2", title=cv.chat.title or "Chat", session=session, cv=cv)


def _channels(cv: ChatView) -> frozenset[str]:
    channels = {messages.chat(cv.chat.id)}
    if cv.workspace is not None:
        channels.add(messages.workspace(cv.workspace.workspace.id))
        if cv.workspace.build is not None:
            channels.add(messages.job(cv.workspace.build.job_id))
    return frozenset(channels)


@router.get("/chats/{chat_id}/live", response_class=EventSourceResponse)
async def chat_live(
    cv: ChatViewDep, request: Request, session: SessionDep
) -> AsyncIterator[ServerSentEvent]:
    """The chat page's parts as HTML events: all of them first, then each as it changes."""
    runtime = runtime_of(request)
    sent: dict[str, str] = {}
    while True:
        channels = _channels(cv)
        async with runtime.follow(*channels) as events:
            while True:
                try:  # read after subscribing, so no change falls between the two
                    current = await web_auth.session_for(runtime.db, session.secret)
                    cv = await chat_views.get_chat_view(runtime.ctx(current.actor), cv.chat.id)
                except (Unauthenticated, NotFound):  # logged out, suspended, expired, or
                    yield ServerSentEvent(event="close", raw_data="")  # not theirs: stop
                    return
                for event, template in PARTS.items():
                    html = fragment(template, cv=cv)
                    if sent.get(event) != html:
                        sent[event] = html
                        yield ServerSentEvent(event=event, raw_data=html)
                if _channels(cv) != channels:
                    break  # bound to another workspace, or a new build: follow those
                try:
                    await events.get(timeout=RECHECK_SECONDS)
                except SubscriptionClosed:
                    return  # the server is stopping: the browser reconnects to the next
