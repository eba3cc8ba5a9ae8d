"""The template and workspace pages: ``/templates``, ``/templates/{name}`` here, the
workspaces' in :mod:`berth.web.workspace_pages` (list, page, buttons),
:mod:`berth.web.workspace_form` (``/workspaces/new``) and :mod:`berth.web.live` (their
live streams), all under this module's router (DESIGN §11, §14).

Each page calls the same services as the API, as the logged-in user, so it sees what
the API would show that user: a template or workspace they may not see is the same
404 page as a missing one.
"""

from __future__ import annotations

import urllib.parse
import uuid
from dataclasses import dataclass

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from berth.records import Template
from berth.services import refs, templates
from berth.services.templates import TemplateDetail
from berth.web import live, workspace_form, workspace_pages
from berth.web.render import page
from berth.web.session import SessionDep

router = APIRouter(include_in_schema=False)
router.include_router(workspace_form.router)  # /workspaces/new before /workspaces/{owner}/…
router.include_router(live.router)
router.include_router(workspace_pages.router)


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
    create = {"template": template.name} | ({"organization": organization} if organization else {})
    return page(
        "template.html.j2",
        title=template.display_name or template.name,
        session=session,
        detail=detail,
        versions=sorted(versions, key=lambda v: v.created_at, reverse=True),
        readme=detail.version.readme if detail.version else "",
        path=request.url.path,
        create_href="/workspaces/new?" + urllib.parse.urlencode(create),
    )
