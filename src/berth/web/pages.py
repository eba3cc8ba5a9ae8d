"""The pages of this step: ``/templates``, ``/templates/{name}``, ``/workspaces`` and
``/workspaces/{owner}/{name}`` (DESIGN §11, §14).

Each page calls the same services as the API, as the logged-in user, so it sees what
the API would show that user: a template or workspace they may not see is the same
404 page as a missing one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from berth.records import Template
from berth.services import refs, templates, workspace_views
from berth.services.templates import TemplateDetail
from berth.web.render import page
from berth.web.session import SessionDep

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class TemplateCard:
    """A template as the list shows it: its detail (presets) and its page's URL."""

    detail: TemplateDetail
    href: str


def _template_href(template: Template, default_org: uuid.UUID) -> str:
    if template.organization_id == default_org:
        return f"/templates/{template.name}"
    return f"/templates/{template.name}?organization={template.organization_id}"


@router.get("/templates")
async def template_list(session: SessionDep) -> Response:
    ctx = session.ctx
    default_org = (await refs.organization(ctx, None)).id
    cards = [
        TemplateCard(await templates.get_template(ctx, t), _template_href(t, default_org))
        for t in await templates.list_templates(ctx, None)
        if not t.deleted
    ]
    return page("templates.html.j2", title="Templates", session=session, cards=cards)


@router.get("/templates/{name}")
async def template_page(
    name: str, request: Request, session: SessionDep, organization: str | None = None
) -> Response:
    ctx = session.ctx
    template = await refs.template(ctx, name, organization)
    detail = await templates.get_template(ctx, template)
    versions = await templates.list_versions(ctx, template.id)
    return page(
        "template.html.j2",
        title=template.display_name or template.name,
        session=session,
        detail=detail,
        versions=sorted(versions, key=lambda v: v.created_at, reverse=True),
        readme=detail.version.readme if detail.version else "",
        path=request.url.path,
    )


@router.get("/workspaces")
async def workspace_list(session: SessionDep, owner: str | None = None) -> Response:
    """The user's workspaces; a site owner's shows everyone's, ``?owner=`` filters."""
    views = await workspace_views.list_workspaces(session.ctx, all_users=session.is_site_owner)
    if owner:
        views = [v for v in views if v.owner_name.lower() == owner.strip().lower()]
    views.sort(key=lambda v: (v.owner_name, v.workspace.name))
    return page(
        "workspaces.html.j2",
        title="Workspaces",
        session=session,
        views=views,
        owner_filter=owner or "",
        everyone=session.is_site_owner,
    )


@router.get("/workspaces/{owner}/{name}")
async def workspace_page(owner: str, name: str, session: SessionDep) -> Response:
    """A workspace's status and agents (its live logs and buttons come in a later step)."""
    ctx = session.ctx
    workspace = await refs.workspace(ctx, f"{owner}/{name}")
    view = await workspace_views.get_workspace(ctx, workspace.id)
    return page(
        "workspace.html.j2",
        title=f"{view.owner_name}/{workspace.name}",
        session=session,
        view=view,
    )
