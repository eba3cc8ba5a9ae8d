"""The live parts of the workspace pages: Server-Sent Events of HTML fragments that the
htmx SSE extension swaps in (``sse-swap="<event>"``).

``/workspaces/{owner}/{name}/live`` sends ``status`` (the element holding
``data-status``), ``summary``, ``agents`` when they change, and appends lines to the
build log (``build-log``) and the script output (``script-log``). It follows the
workspace across builds — after Stop the stop build's log and ``stopped``, after Start
the new build's — until the client leaves; when the workspace is deleted it sends
``deleted`` and ``close`` (the page's ``sse-close``) and ends. ``/workspaces/live``
sends the list's ``rows`` when they change.

Both wake on the event bus and re-read through the services (messages are hints);
every wait is bounded (:data:`RECHECK_SECONDS`), so agents' time-derived statuses and
anything a lost message announced show up anyway. Each event's ``id`` is the stream's
cursor (build, last log line, last script line): a browser that reconnects sends it
back as ``Last-Event-ID`` and gets only what it has not seen.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.requests import Request

from berth.errors import NotFound, Unauthenticated
from berth.events import messages
from berth.events.core import Subscription, SubscriptionClosed
from berth.records import Workspace
from berth.services import Database, web_auth
from berth.services.base import parse_uuid
from berth.services.runtime import Runtime
from berth.services.workspace_views import WorkspaceView
from berth.web import workspace_pages as wp
from berth.web.session import PageSession, SessionDep, runtime_of

router = APIRouter(include_in_schema=False)

RECHECK_SECONDS = 10.0
"""The longest a stream waits for an event before it reads again."""
MAX_FOLLOWED = 50
"""The list's stream subscribes to this many workspaces' channels at most; the rest
show their changes at the next re-check."""
SESSION_CHECK_SECONDS = 30.0
"""How often a stream checks that its session is still valid."""
RETRY_MS = 2000
"""How long a browser waits before it reconnects a dropped stream."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a workspace page's stream is: its build and the last lines it has."""

    build: uuid.UUID | None
    log: int
    agent_log: int

    def __str__(self) -> str:
        return f"{self.build or ''}.{self.log}.{self.agent_log}"

    @classmethod
    def parse(cls, text: str) -> Cursor | None:
        """A cursor from a ``Last-Event-ID``; ``None`` if it is not one."""
        parts = text.split(".")
        if len(parts) != 3 or not all(p.isdigit() for p in parts[1:]):
            return None
        build = parse_uuid(parts[0]) if parts[0] else None
        if parts[0] and build is None:
            return None
        return cls(build, int(parts[1]), int(parts[2]))


class Waiter:
    """A stream's waits: bounded, a burst of events taken as one, and the session
    checked again now and then, so a stream ends with its session (logout, expiry)."""

    def __init__(self, session: PageSession, db: Database) -> None:
        self.session = session
        self.db = db
        self.checked = asyncio.get_running_loop().time()
        self.session_over = False

    async def settle(self, events: Subscription) -> bool:
        """Wait for an event (or the re-check); ``False`` when the stream must end: the
        server is stopping (:meth:`Runtime.follow`) or the session is over."""
        try:
            if await events.get(timeout=RECHECK_SECONDS) is not None:
                while await events.get(timeout=0) is not None:
                    pass
        except SubscriptionClosed:
            return False
        now = asyncio.get_running_loop().time()
        if now - self.checked >= SESSION_CHECK_SECONDS:
            self.checked = now
            try:
                await web_auth.session_for(self.db, self.session.secret)
            except Unauthenticated:
                self.session_over = True
                return False
        return True

    def last(self) -> list[ServerSentEvent]:
        """The events a stream ends with: ``close`` when its session is over (the page
        stops reconnecting), none when the server stops (it reconnects to the next)."""
        return [ServerSentEvent(event="close", raw_data="")] if self.session_over else []


def _channels(view: WorkspaceView) -> list[str]:
    channels = [messages.workspace(view.workspace.id)]
    if view.build:
        channels += [messages.job(view.build.job_id), messages.job_logs(view.build.job_id)]
    return channels


class _WorkspaceStream:
    """The events of one workspace page, from ``cursor`` on."""

    def __init__(self, session: PageSession, workspace: Workspace, cursor: Cursor) -> None:
        self.session = session
        self.workspace = workspace
        self.cursor = cursor
        self.sent: dict[str, str] = {}

    def _event(self, name: str, html: str) -> ServerSentEvent:
        return ServerSentEvent(event=name, raw_data=html, id=str(self.cursor), retry=RETRY_MS)

    def _changed(self, name: str, html: str) -> list[ServerSentEvent]:
        if self.sent.get(name) == html:
            return []
        self.sent[name] = html
        return [self._event(name, html)]

    async def step(self) -> tuple[list[ServerSentEvent], WorkspaceView | None]:
        """What changed since the last step, and the view it read (``None``: deleted)."""
        try:
            parts = await wp.read_parts(
                self.session,
                self.workspace,
                after=self.cursor.log,
                after_agent=self.cursor.agent_log,
            )
        except NotFound:
            return [
                self._event("status", wp.status_html("deleted")),
                self._event("close", ""),
            ], None
        view, out = parts.view, list[ServerSentEvent]()
        build = view.build.id if view.build else None
        new_build = self.cursor.build is not None and build != self.cursor.build
        last_log = parts.logs[-1].id if parts.logs else self.cursor.log
        last_line = parts.lines[-1].log.id if parts.lines else self.cursor.agent_log
        self.cursor = Cursor(build, last_log, last_line)
        # The lines first: they were written before the state the view shows.
        if parts.logs or new_build:
            heading = view if new_build else None
            out.append(self._event("build-log", wp.log_html(parts.logs, heading=heading)))
        if parts.lines:
            out.append(self._event("script-log", wp.script_log_html(parts.lines)))
        out += self._changed("status", wp.status_html(view.status))
        out += self._changed("summary", wp.summary_html(view, parts.chat))
        out += self._changed("agents", wp.agents_html(view))
        return out, view

    async def events(self, runtime: Runtime, waiter: Waiter) -> AsyncIterator[ServerSentEvent]:
        out, view = await self.step()
        while True:
            for event in out:
                yield event
            if view is None:
                return
            channels = _channels(view)
            async with runtime.follow(*channels) as events:
                # Once more now that the subscription is on: nothing between the last
                # read and the subscription is missed.
                out, view = await self.step()
                while view is not None and _channels(view) == channels:
                    for event in out:
                        yield event
                    if not await waiter.settle(events):
                        for event in waiter.last():
                            yield event
                        return
                    out, view = await self.step()
            # deleted, or a new build: follow its job's channels


@router.get("/workspaces/{owner}/{name}/live", response_class=EventSourceResponse)
async def workspace_live(
    workspace: wp.PageWorkspace,
    session: SessionDep,
    request: Request,
    build: str = "",
    after: int = 0,
    after_agent: int = 0,
) -> AsyncIterator[ServerSentEvent]:
    """The workspace page's live stream, from the page's cursors or a reconnecting
    browser's ``Last-Event-ID``."""
    given = Cursor(parse_uuid(build) if build else None, max(after, 0), max(after_agent, 0))
    cursor = Cursor.parse(request.headers.get("last-event-id", "")) or given
    runtime = runtime_of(request)
    stream = _WorkspaceStream(session, workspace, cursor)
    async for event in stream.events(runtime, Waiter(session, runtime.db)):
        yield event


def _list_channels(views: list[WorkspaceView]) -> list[str]:
    channels = [messages.DEADLINES]  # any build settling, whoever's: a cheap catch-all
    for view in views[:MAX_FOLLOWED]:
        channels += _channels(view)[:2]  # the workspace and its build's job, not its logs
    return channels


@router.get("/workspaces/live", response_class=EventSourceResponse)
async def workspace_list_live(
    session: SessionDep, request: Request, owner: str | None = None
) -> AsyncIterator[ServerSentEvent]:
    """The list's rows whenever they change (statuses, deadlines, workspaces come and go)."""
    runtime = runtime_of(request)
    waiter = Waiter(session, runtime.db)
    everyone, sent = session.is_site_owner, ""
    views = await wp.listed(session, owner)
    while True:
        channels = _list_channels(views)
        async with runtime.follow(*channels) as events:
            while True:
                views = await wp.listed(session, owner)
                html = wp.rows_html(views, everyone=everyone, owner_filter=owner or "")
                if html != sent:
                    sent = html
                    yield ServerSentEvent(event="rows", raw_data=html, retry=RETRY_MS)
                if _list_channels(views) != channels:
                    break
                if not await waiter.settle(events):
                    for event in waiter.last():
                        yield event
                    return
