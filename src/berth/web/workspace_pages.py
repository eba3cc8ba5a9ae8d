"""``/workspaces`` and ``/workspaces/{owner}/{name}`` with its Start, Stop and Delete
buttons (DESIGN §11, §14).

A workspace is looked up as the logged-in user (:data:`PageWorkspace`), before anything
else: another user's workspace is the same 404 page as a missing one, for the page,
its live stream (:mod:`berth.web.live`) and its buttons alike. The buttons are forms
(a POST with the CSRF token) that htmx sends in place, so the page and its live stream
stay; without script they post and come back. A transition the service refuses (a Start
while a build runs) shows the service's message.

The parts of the workspace page that change — status, summary, agents, log lines —
are fragments (``_workspace_*.html.j2``) rendered here for the page and again by the
live stream for each change, so both show the same markup.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from berth.api.errors import status_of
from berth.domain.enums import Transition
from berth.domain.gocompat import format_duration
from berth.errors import BerthError
from berth.records import Chat, JobLog, Workspace
from berth.services import chats, refs, workspace_views, workspaces
from berth.services.workspace_views import ScriptLog, WorkspaceView
from berth.web.render import fragment, page
from berth.web.session import PageSession, SessionDep, check_csrf, read_form

router = APIRouter(include_in_schema=False)


async def _page_workspace(owner: str, name: str, session: SessionDep) -> Workspace:
    return await refs.workspace(session.ctx, f"{owner}/{name}")


PageWorkspace = Annotated[Workspace, Depends(_page_workspace)]
"""The workspace of a ``/workspaces/{owner}/{name}…`` path as the logged-in user may see
it; a 404 page otherwise, before the handler runs (and before a stream starts)."""


def workspace_path(owner: str, name: str) -> str:
    return f"/workspaces/{urllib.parse.quote(owner, safe='')}/{urllib.parse.quote(name, safe='')}"


# --- the list ---------------------------------------------------------------------------


async def listed(session: PageSession, owner: str | None) -> list[WorkspaceView]:
    """The workspaces ``/workspaces`` shows: the user's; a site owner's everyone's,
    ``owner`` filtering them by username."""
    views = await workspace_views.list_workspaces(session.ctx, all_users=session.is_site_owner)
    if owner:
        views = [v for v in views if v.owner_name.lower() == owner.strip().lower()]
    return sorted(views, key=lambda v: (v.owner_name, v.workspace.name))


def rows_html(views: list[WorkspaceView], *, everyone: bool, owner_filter: str) -> Markup:
    """The list's table rows (the page's and the live stream's)."""
    return fragment(
        "_workspace_rows.html.j2", views=views, everyone=everyone, owner_filter=owner_filter
    )


@router.get("/workspaces")
async def workspace_list(session: SessionDep, owner: str | None = None) -> Response:
    """The user's workspaces; a site owner's shows everyone's, ``?owner=`` filters."""
    everyone = session.is_site_owner
    views = await listed(session, owner)
    query = urllib.parse.urlencode({"owner": owner}) if owner else ""
    return page(
        "workspaces.html.j2",
        title="Workspaces",
        session=session,
        rows=rows_html(views, everyone=everyone, owner_filter=owner or ""),
        owner_filter=owner or "",
        everyone=everyone,
        live_url="/workspaces/live" + (f"?{query}" if query else ""),
    )


# --- one workspace ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Parts:
    """What the workspace page shows: the view, the latest build's log lines, the
    agents' script output and the chat the workspace is bound to."""

    view: WorkspaceView
    logs: list[JobLog]
    lines: list[ScriptLog]
    chat: Chat | None


async def read_parts(
    session: PageSession, workspace: Workspace, *, after: int = 0, after_agent: int = 0
) -> Parts:
    """The page's parts, the log lines after the cursors; :class:`NotFound` once the
    workspace is deleted."""
    view, logs = await workspace_views.build_logs(session.ctx, workspace.id, after_id=after)
    lines = await workspace_views.script_logs(session.ctx, workspace.id, after_id=after_agent)
    return Parts(view, logs, lines, await chats.bound_chat(session.ctx, workspace))


def _ttl(view: WorkspaceView) -> str:
    ttl_ms = view.workspace.ttl_ms
    return format_duration(dt.timedelta(milliseconds=ttl_ms)) if ttl_ms else ""


def status_html(value: str) -> Markup:
    return fragment("_workspace_status.html.j2", value=value)


def summary_html(view: WorkspaceView, chat: Chat | None) -> Markup:
    return fragment("_workspace_summary.html.j2", view=view, chat=chat, ttl=_ttl(view))


def agents_html(view: WorkspaceView) -> Markup:
    return fragment("_workspace_agents.html.j2", view=view)


def log_html(logs: list[JobLog], *, heading: WorkspaceView | None = None) -> Markup:
    """Build log lines; with ``heading``, first a line that names its (new) build."""
    return fragment("_workspace_log.html.j2", logs=logs, heading=heading)


def script_log_html(lines: list[ScriptLog]) -> Markup:
    return fragment("_workspace_script_log.html.j2", lines=lines)


@router.get("/workspaces/{owner}/{name}")
async def workspace_page(workspace: PageWorkspace, session: SessionDep) -> Response:
    """The workspace, kept current by its live stream from the cursors the page ends at."""
    parts = await read_parts(session, workspace)
    view = parts.view
    path = workspace_path(view.owner_name, workspace.name)
    cursor: dict[str, Any] = {
        "build": str(view.build.id) if view.build else "",
        "after": parts.logs[-1].id if parts.logs else 0,
        "after_agent": parts.lines[-1].log.id if parts.lines else 0,
    }
    return page(
        "workspace.html.j2",
        title=f"{view.owner_name}/{workspace.name}",
        session=session,
        view=view,
        path=path,
        live_url=f"{path}/live?{urllib.parse.urlencode(cursor)}",
        status_part=status_html(view.status),
        summary=summary_html(view, parts.chat),
        agents=agents_html(view),
        build_log=log_html(parts.logs),
        script_log=script_log_html(parts.lines),
    )


_DONE = {
    Transition.START: "Starting: build {n} is queued.",
    Transition.STOP: "Stopping: build {n} is queued.",
    Transition.DELETE: "Deleting: build {n} is queued.",
}
_ALREADY = {
    Transition.START: "The workspace is running already.",
    Transition.STOP: "The workspace is stopped already.",
}


@router.post("/workspaces/{owner}/{name}/start")
async def start(
    owner: str, name: str, workspace: PageWorkspace, session: SessionDep, request: Request
) -> Response:
    return await _act(Transition.START, workspace_path(owner, name), workspace, session, request)


@router.post("/workspaces/{owner}/{name}/stop")
async def stop(
    owner: str, name: str, workspace: PageWorkspace, session: SessionDep, request: Request
) -> Response:
    return await _act(Transition.STOP, workspace_path(owner, name), workspace, session, request)


@router.post("/workspaces/{owner}/{name}/delete")
async def delete(workspace: PageWorkspace, session: SessionDep, request: Request) -> Response:
    return await _act(Transition.DELETE, "/workspaces", workspace, session, request)


async def _act(
    transition: Transition,
    then: str,
    workspace: Workspace,
    session: PageSession,
    request: Request,
) -> Response:
    """A button: a build through the same service as the API's. From htmx the answer is
    a message for the page; from a plain form, a redirect to ``then``."""
    check_csrf(session.csrf, await read_form(request))
    in_place = request.headers.get("HX-Request") == "true"
    try:
        started = await workspaces.transition_workspace(session.ctx, workspace.id, transition)
    except BerthError as exc:
        if not in_place:
            raise
        return _message(exc.message, exc.detail or "", error=True, status=status_of(exc))
    if started.new_build:
        text = _DONE[transition].format(n=started.build.build_number)
    else:
        text = _ALREADY.get(transition, "")
    return _message(text) if in_place else RedirectResponse(then, status_code=303)


def _message(text: str, detail: str = "", *, error: bool = False, status: int = 200) -> Response:
    """A button's result for htmx to show. htmx swaps only 2xx answers, so a refusal is
    a 200 whose ``X-Berth-Status`` header keeps the service's status."""
    html = fragment("_workspace_message.html.j2", text=text, detail=detail, error=error)
    return HTMLResponse(html, headers={"X-Berth-Status": str(status), "Cache-Control": "no-store"})
